"""Specification of the shipped synthetic-only model ``models/mos-s-synthetic.*``: present,
self-describing, and really trained (the default model has its own tests in
test_default_model.py)."""
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")


from mos_ros.core.postprocess import DecodeSettings  # noqa: E402
from mos_ros.detector import FaceDetector  # noqa: E402
from mos_ros.resources import find_shared_file  # noqa: E402
from mos_ros.train.scorecard import held_out_scenes, score  # noqa: E402

#: Figures the shipped model must keep on 30 held-out scenes (models/mos-s-synthetic.md states the
#: 200-scene figures; these bounds leave room for the smaller sample).
MIN_AP50 = 0.85
MIN_RECALL = 0.9
MAX_YAW_MAE_DEG = 12.0


def synthetic_model_path():
    return find_shared_file("models/mos-s-synthetic.onnx")


@pytest.fixture(scope="module")
def onnx_detector():
    return FaceDetector.open(synthetic_model_path(),
                             settings=DecodeSettings(score_threshold=0.02))


def test_the_synthetic_model_says_what_it_was_trained_on():
    meta = FaceDetector.open(synthetic_model_path()).meta
    assert meta.variant == "mos-s" and "synthetic" in meta.description


def test_checkpoint_and_onnx_file_find_the_same_faces():
    image = held_out_scenes(1)[0][0]
    onnx = FaceDetector.open(synthetic_model_path()).detect(image)
    torch = FaceDetector.open(synthetic_model_path().with_suffix(".pt")).detect(image)
    assert len(onnx) == len(torch) > 0
    for a, b in zip(onnx, torch):
        assert np.allclose(a.box, b.box, atol=0.05) and abs(a.pose.yaw - b.pose.yaw) < 0.05


def test_held_out_scenes_are_found_with_their_pose(onnx_detector):
    card = score(onnx_detector.detect, held_out_scenes(30))
    print(card)
    assert card.ap50 >= MIN_AP50
    assert card.recall >= MIN_RECALL
    assert card.yaw_mae <= MAX_YAW_MAE_DEG
