"""Specification of FaceDetector and the mos command line on real model files: the shipped
default model (fp32 ONNX, and its checkpoint beside it), read by onnxruntime as on a robot."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mos_ros.cli import main
from mos_ros.core.errors import ImageError, ModelFileError
from mos_ros.core.image_io import MAX_IMAGE_SIDE
from mos_ros.core.postprocess import DecodeSettings
from mos_ros.detector import FaceDetector
from mos_ros.resources import default_model_path

ALL_ANCHORS = DecodeSettings(score_threshold=0.0, keep_top_k=5)


@pytest.fixture(scope="module")
def model_path():
    return default_model_path("cuda")  # the fp32 ONNX file


@pytest.fixture(scope="module")
def detector(model_path):
    return FaceDetector.open(model_path, settings=ALL_ANCHORS, input_size=160)


def textured(height, width, channels=3, seed=0):
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_faces_are_reported_in_image_pixels(detector):
    image = textured(300, 500)
    faces = detector.detect(image)
    assert len(faces) == 5
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 <= x2 <= 500 and 0 <= y1 <= y2 <= 300
        assert face.landmarks.shape == (5, 2)
        assert -99 <= face.pose.yaw <= 96


def test_stage_times_are_measured(detector):
    _, times = detector.detect_timed(textured(120, 160))
    assert times.preprocess_ms > 0 and times.network_ms > 0 and times.postprocess_ms > 0
    assert times.total_ms == pytest.approx(
        times.preprocess_ms + times.network_ms + times.postprocess_ms)


@pytest.mark.parametrize("image", [textured(64, 80, 1), textured(64, 80, 4), textured(1, 1),
                                   textured(3000, 4000)],
                         ids=["grayscale", "bgra", "1x1", "4000x3000"])
def test_unusual_but_valid_images_are_accepted(detector, image):
    assert isinstance(detector.detect(image), list)


@pytest.mark.parametrize("image,reason", [
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((10, 10, 3), np.float64), "uint8"),
    (np.zeros((10, 10, 2), np.uint8), "shape"),
    (np.zeros((MAX_IMAGE_SIDE + 1, 1), np.uint8), "largest side"),
])
def test_unusable_images_raise_a_clear_error(detector, image, reason):
    with pytest.raises(ImageError, match=reason):
        detector.detect(image)


def test_invalid_threshold_change_is_refused_and_changes_nothing(detector):
    before = detector.settings
    with pytest.raises(ValueError, match="score_threshold"):
        detector.update_settings(score_threshold=1.5)
    assert detector.settings == before
    assert detector.update_settings(score_threshold=0.99999).score_threshold == 0.99999
    assert detector.detect(textured(120, 160)) == []
    detector.update_settings(score_threshold=0.0)


@pytest.mark.parametrize("name,content,reason", [
    ("missing.onnx", None, "no such|not found|does not exist"),
    ("truncated.onnx", "truncate", "truncated.onnx"),
    ("notes.txt", b"hello", "suffix"),
])
def test_bad_model_files_raise_model_file_error(tmp_path, model_path, name, content, reason):
    path = tmp_path / name
    if content == "truncate":
        path.write_bytes(model_path.read_bytes()[:2000])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=reason):
        FaceDetector.open(path)


def test_a_checkpoint_named_like_onnx_is_rejected(tmp_path, model_path):
    wrong = tmp_path / "model.onnx"
    wrong.write_bytes(model_path.with_suffix(".pt").read_bytes())
    with pytest.raises(ModelFileError, match="model.onnx"):
        FaceDetector.open(wrong)


def test_cli_detect_writes_drawings_and_json(tmp_path, model_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), textured(120, 160))
    cv2.imwrite(str(images / "b.jpg"), textured(90, 90, 1))
    (images / "c.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    code = main(["detect", str(images), "-o", str(out), "--model", str(model_path),
                 "--score", "0.0", "--input-size", "160"])
    assert code == 0
    results = json.loads((out / "detections.json").read_text())
    assert sorted(results["frames"]) == ["a", "b"] and "c" in results["errors"]
    assert all(len(faces) > 0 for faces in results["frames"].values())
    assert cv2.imread(str(out / "a.jpg")).shape == (120, 160, 3)
    assert "skipped c" in capsys.readouterr().out


def test_cli_reports_a_bad_input_file_in_one_line(tmp_path, model_path, capsys):
    bad = tmp_path / "x.png"
    bad.write_text("no pixels here")
    assert main(["detect", str(bad), "--model", str(model_path), "-o", str(tmp_path)]) == 2
    assert "x.png: not a readable image" in capsys.readouterr().err


def test_cli_export_to_onnx_gives_a_loadable_model(tmp_path, model_path):
    pytest.importorskip("torch", reason="mos export runs the checkpoint in torch")
    out = tmp_path / "again.onnx"
    assert main(["export", str(model_path.with_suffix(".pt")), "--format", "onnx",
                 "-o", str(out)]) == 0
    assert FaceDetector.open(out).meta == FaceDetector.open(model_path).meta


def test_mos_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "mos_ros.cli", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "detect" in result.stdout and "bench" in result.stdout
