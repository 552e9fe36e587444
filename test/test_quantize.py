"""Int8 ONNX export (``mos export --format onnx-int8``, ``mos_ros.quantize``)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("scipy")

import onnx  # noqa: E402

from mos_ros.backends.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from mos_ros.core.errors import ExportError  # noqa: E402
from mos_ros.export import export_model  # noqa: E402
from mos_ros.quantize import (
    CALIBRATION_IMAGES, CHECK_IMAGES, MIN_AGREEMENT, detection_agreement, image_files,
    quantize_ncnn, quantize_onnx)  # noqa: E402
from mos_ros.resources import find_shared_file  # noqa: E402
from mos_ros.scenes.composer import write_synthetic_set  # noqa: E402

#: The synthetic scenes of the shipped synthetic model: faces it finds, to calibrate on.
SCENE_SEED = 321


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    write_synthetic_set(folder, CALIBRATION_IMAGES + CHECK_IMAGES, SCENE_SEED)
    return folder


@pytest.fixture(scope="module")
def int8_model(scenes, tmp_path_factory):
    fp32 = find_shared_file("models/mos-s-synthetic.onnx")
    out = tmp_path_factory.mktemp("int8") / "model.int8.onnx"
    path, agreement = quantize_onnx(fp32, out, scenes)
    return fp32, path, agreement


def test_int8_model_is_qdq_carries_the_metadata_and_agrees_with_fp32(int8_model):
    fp32, path, agreement = int8_model
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert OnnxRuntimeBackend(path).meta == OnnxRuntimeBackend(fp32).meta
    assert agreement >= MIN_AGREEMENT
    assert path.stat().st_size < 0.4 * fp32.stat().st_size


def test_int8_faces_and_poses_stay_near_fp32(int8_model, scenes):
    from mos_ros.core.image_io import read_image
    from mos_ros.core.nms import iou_matrix
    from mos_ros.detector import FaceDetector

    fp32, path, _ = int8_model
    reference, quantized = FaceDetector.open(fp32), FaceDetector.open(path)
    found, yaw_errors = [], []
    for image in map(read_image, image_files(scenes, 6)):
        # Faces near the 0.5 threshold may fall either side of it after quantization.
        want = [f for f in reference.detect(image) if f.score > 0.7]
        got = quantized.detect(image)
        if not want or not got:
            found += [False] * len(want)
            continue
        overlap = iou_matrix(np.array([f.box for f in want]), np.array([f.box for f in got]))
        for w, row in zip(want, overlap):
            found.append(row.max() >= 0.5)
            if found[-1]:
                yaw_errors.append(abs(got[int(row.argmax())].pose.yaw - w.pose.yaw))
    assert len(found) >= 6, "the synthetic model finds faces in its own scenes"
    assert np.mean(found) >= MIN_AGREEMENT
    assert np.median(yaw_errors) < 5.0


def test_detection_agreement_counts_reference_faces_found():
    box = np.array([0, 0, 10, 10], float)
    shifted = box + [1, 0, 1, 0]          # IoU 9/11
    far = box + 50
    assert detection_agreement([[box, far]], [[shifted]]) == 0.5
    assert detection_agreement([[box], []], [[], [box]]) == 0.0
    assert detection_agreement([[]], [[box]]) == 1.0
    with pytest.raises(ValueError):
        detection_agreement([[box]], [])


def test_too_few_or_no_calibration_images_is_a_clear_error(tmp_path, scenes):
    with pytest.raises(ExportError, match="holds 0 images, 32 are needed"):
        quantize_onnx(find_shared_file("models/mos-s-synthetic.onnx"), tmp_path / "x.onnx",
                      tmp_path)
    with pytest.raises(ExportError, match="not a folder"):
        image_files(tmp_path / "absent", 1)
    for fmt in ("onnx-int8", "ncnn-int8"):
        with pytest.raises(ExportError, match="calibration images"):
            export_model(find_shared_file("models/mos-s-synthetic.pt"), fmt, tmp_path / "y")
    assert not list(tmp_path.glob("*.onnx")) and not (tmp_path / "y").exists()


def test_cli_export_onnx_int8_without_calibration_says_what_is_missing(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mos_ros.cli", "export", "--format", "onnx-int8",
         str(find_shared_file("models/mos-s-synthetic.pt")), "-o", str(tmp_path / "m.onnx")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "calibration images" in result.stderr
    assert "Traceback" not in result.stderr


# --- ncnn -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def int8_ncnn(scenes, tmp_path_factory):
    base = tmp_path_factory.mktemp("ncnn")
    fp32 = export_model(find_shared_file("models/mos-s-synthetic.pt"), "ncnn",
                        base / "model.ncnn")
    path, agreement = quantize_ncnn(fp32, base / "model.int8.ncnn", scenes)
    return fp32, path, agreement


def test_int8_ncnn_has_int8_convolutions_and_finds_the_fp32_faces(int8_ncnn):
    from mos_ros.backends.ncnn_backend import NcnnBackend

    fp32, path, agreement = int8_ncnn
    lines = (path / "model.ncnn.param").read_text().splitlines()
    kinds = ("Convolution", "ConvolutionDepthWise")
    convs = [line for line in lines if line.split()[0] in kinds]
    assert convs and all(" 8=" in line for line in convs)
    assert any(" 8=10" in line for line in convs), "consecutive convolutions pass int8 on"
    size = {folder: (folder / "model.ncnn.bin").stat().st_size for folder in (fp32, path)}
    assert size[path] < 0.4 * size[fp32]
    assert NcnnBackend(path).meta == NcnnBackend(fp32).meta
    assert agreement >= MIN_AGREEMENT


def test_an_int8_ncnn_model_is_not_quantized_twice(int8_ncnn, scenes, tmp_path):
    _, path, _ = int8_ncnn
    with pytest.raises(ExportError, match="already quantized"):
        quantize_ncnn(path, tmp_path / "again.ncnn", scenes)
