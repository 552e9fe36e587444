"""Specification of the shipped default model ``models/mos-mbv2-faces.*``: it finds real faces
it has never seen, with landmarks and head pose, in its int8 (CPU) and fp32 forms, and its
files agree.

The held-out photos (never used for training or model selection) come from the project's
photo cache; their ground truth is the teachers' consensus (see mos_ros.evaluate.real_photos).
The bounds are the acceptance figures of the default model (models/README.md has the table).
"""
import numpy as np
import pytest

from conftest import skip_without_runtime
from mos_ros.core.image_io import read_image
from mos_ros.detector import FaceDetector, backend_for_path
from mos_ros.data.sources import CATALOGUE, photo_path
from mos_ros.evaluate.real_photos import evaluate_real_photos
from mos_ros.quantize import detection_agreement
from mos_ros.resources import DEFAULT_MODEL, default_model_path, find_shared_file

MIN_RECALL_LARGE = 0.9
MAX_FP_PER_IMAGE = 0.5
MAX_YAW_MAE_DEG = 8.0
#: The files held to the figures: int8 (the CPU default), fp32 (the accelerator default) and
#: the int8 ncnn folder shipped for ARM boards.
DEFAULT_FILES = {"int8": default_model_path("cpu"), "fp32": default_model_path("cuda"),
                 "ncnn-int8": find_shared_file(f"models/{DEFAULT_MODEL}.int8.ncnn")}


def shipped(suffix: str):
    return find_shared_file(f"models/{DEFAULT_MODEL}{suffix}")


@pytest.fixture(scope="module", params=sorted(DEFAULT_FILES))
def report(request):
    skip_without_runtime(backend_for_path(DEFAULT_FILES[request.param]))
    return evaluate_real_photos(DEFAULT_FILES[request.param], contestants=("mos",))


def test_the_default_model_is_the_real_face_model_and_says_so():
    assert default_model_path().name == "mos-mbv2-faces.int8.onnx"
    for device in ("", "cpu", "CPUExecutionProvider"):
        assert default_model_path(device) == shipped(".int8.onnx")
    for device in ("cuda", "tensorrt,cuda,cpu"):
        assert default_model_path(device) == shipped(".onnx")
    assert default_model_path(backend="onnxruntime") == shipped(".int8.onnx")
    assert default_model_path(backend="torch") == shipped(".pt")
    assert default_model_path(backend="ncnn") == shipped(".ncnn")
    assert default_model_path("vulkan", backend="ncnn") == shipped(".ncnn")
    with pytest.raises(ValueError, match="no default model for backend 'tflite'"):
        default_model_path(backend="tflite")


@pytest.mark.parametrize("form", sorted(DEFAULT_FILES))
def test_each_default_file_says_it_is_the_real_face_model(form):
    skip_without_runtime(backend_for_path(DEFAULT_FILES[form]))
    meta = FaceDetector.open(DEFAULT_FILES[form]).meta
    assert meta.variant == "mos-mbv2" and "real faces" in meta.description


def test_mos_model_overrides_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("MOS_MODEL", str(tmp_path / "mine.onnx"))
    assert default_model_path("cuda") == tmp_path / "mine.onnx"


def test_held_out_real_faces_are_found_with_few_false_alarms(report):
    total = report.results[0].total
    print(report.markdown())
    assert total.large_faces >= 18
    assert total.recall_large >= MIN_RECALL_LARGE
    assert total.fp_per_image <= MAX_FP_PER_IMAGE


def test_head_pose_of_held_out_faces_agrees_with_the_facemesh_teacher(report):
    mae = report.results[0].total.pose_mae()
    assert mae["yaw"] <= MAX_YAW_MAE_DEG


def _group_photo():
    (photo,) = [p for p in CATALOGUE if p.name == "insightface/t1.jpg"]
    return read_image(photo_path(photo))


@pytest.mark.parametrize("other", [".pt", ".ncnn"])
def test_every_fp32_file_of_the_model_finds_the_same_faces(other):
    skip_without_runtime(backend_for_path(shipped(other)))
    image = _group_photo()
    reference = FaceDetector.open(shipped(".onnx")).detect(image)
    faces = FaceDetector.open(shipped(other)).detect(image)
    assert len(faces) == len(reference) >= 5
    for a, b in zip(sorted(faces, key=lambda f: f.box[0]),
                    sorted(reference, key=lambda f: f.box[0])):
        assert np.allclose(a.box, b.box, atol=0.5) and abs(a.pose.yaw - b.pose.yaw) < 0.5


@pytest.mark.parametrize("int8, fp32", [(".int8.onnx", ".onnx"), (".int8.ncnn", ".ncnn")])
def test_each_int8_file_finds_the_faces_of_its_fp32_file(int8, fp32):
    skip_without_runtime(backend_for_path(shipped(fp32)))
    image = _group_photo()
    # Detections near the 0.5 threshold may fall either side of it after quantization.
    reference = [f for f in FaceDetector.open(shipped(fp32)).detect(image) if f.score > 0.6]
    faces = FaceDetector.open(shipped(int8)).detect(image)
    assert len(reference) >= 5
    assert detection_agreement([[f.box for f in reference]], [[f.box for f in faces]]) == 1.0


def test_the_demo_images_are_sourced_and_show_faces_to_the_default_model():
    demo = find_shared_file("models/demo")
    images = sorted(demo.glob("*.jpg"))
    sources = (demo / "SOURCES.md").read_text()
    photos = [path for path in images if not path.name.startswith("synthetic")]
    assert len(photos) >= 5 and len(images) - len(photos) <= 1
    assert all(f"`{path.name}`" in sources for path in images)
    detector = FaceDetector.open(default_model_path())
    assert all(detector.detect(read_image(path)) for path in images)
