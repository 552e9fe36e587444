"""Specification of pre-processing, image normalisation and raw-output decoding."""
import cv2
import numpy as np
import pytest

from mos_ros.core.anchors import generate_anchors
from mos_ros.core.codec import encode_boxes, encode_landmarks
from mos_ros.core.config import BGR_MEAN, ModelMeta
from mos_ros.core.errors import ImageError
from mos_ros.core.image_io import read_image, to_bgr
from mos_ros.core.nms import iou_matrix
from mos_ros.core.postprocess import DecodeSettings, decode_faces
from mos_ros.core.preprocess import letterbox_for, prepare
from mos_ros.core.types import RawOutputs

META = ModelMeta()


def test_prepare_subtracts_the_bgr_mean_without_scaling():
    image = np.full((32, 64, 3), (104, 117, 123), dtype=np.uint8)
    image[0, 0] = (200, 0, 50)
    batch, box = prepare(image, None, BGR_MEAN)
    assert batch.shape == (1, 3, 32, 64) and batch.dtype == np.float32
    assert batch[0, :, 0, 0] == pytest.approx([96, -117, -73])
    assert np.count_nonzero(batch) == 3 and box.scale == 1.0


def test_letterbox_pads_bottom_right_with_zero_after_mean():
    image = np.full((100, 200, 3), 255, dtype=np.uint8)
    batch, box = prepare(image, (160, 160), BGR_MEAN)
    assert box.scale == pytest.approx(0.8)
    assert batch[0, :, 80:, :].max() == 0 and batch[0, :, :80, :].min() > 0


def test_long_side_input_keeps_aspect_and_rounds_to_stride():
    box = letterbox_for((1080, 1920), 640)
    assert (box.input_height, box.input_width) == (384, 640)
    assert letterbox_for((480, 640), 640).scale == 1.0


def test_letterbox_inverse_maps_back_to_image_pixels():
    box = letterbox_for((300, 500), (256, 256))
    points = np.array([[10.0, 20.0, 499.0, 299.0]])
    assert box.to_image(box.to_input(points)) == pytest.approx(points)


@pytest.mark.parametrize("shape,channels", [((20, 30), None), ((20, 30, 1), None),
                                            ((20, 30, 4), None)])
def test_grayscale_and_alpha_images_become_bgr(shape, channels):
    out = to_bgr(np.full(shape, 7, dtype=np.uint8))
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8 and out[0, 0, 0] == 7


@pytest.mark.parametrize("array,message", [
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((5, 5, 2), np.uint8), "shape"),
    (np.zeros((5, 5, 3), np.float32), "uint8"),
    ("not an image", "numpy"),
])
def test_unusable_arrays_are_rejected_with_the_reason(array, message):
    with pytest.raises(ImageError, match=message):
        to_bgr(array)


def test_unreadable_files_are_rejected_with_the_path(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a JPEG")
    with pytest.raises(ImageError, match="notes.jpg: not a readable image"):
        read_image(text)
    with pytest.raises(ImageError, match="no such image file"):
        read_image(tmp_path / "missing.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        read_image(empty)


def test_read_image_round_trips_a_png(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (12, 9, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "x.png"), image)
    assert np.array_equal(read_image(tmp_path / "x.png"), image)


def synthetic_raw(faces, height, width, yaw_bin=40):
    """Raw outputs that say: exactly these (box, landmarks) faces, each at its best anchor."""
    anchors = generate_anchors(META.priors, height, width)
    n = len(anchors)
    conf = np.tile([[4.0, -4.0]], (n, 1))
    loc, landms = np.zeros((n, 4)), np.zeros((n, 10))
    pose = np.full((n, 66), -20.0)
    pose[:, yaw_bin] = 20.0
    scale = np.array([width, height] * 2)
    for box, points in faces:
        norm = np.asarray(box) / scale
        corners = np.concatenate([anchors[:, :2] - anchors[:, 2:] / 2,
                                  anchors[:, :2] + anchors[:, 2:] / 2], axis=1)
        best = int(np.argmax(iou_matrix(norm[None], corners)[0]))
        conf[best] = (-4.0, 4.0)
        loc[best] = encode_boxes(norm[None], anchors[best:best + 1], META.priors.variances)
        landms[best] = encode_landmarks((np.asarray(points) / scale[:2]).reshape(1, 10),
                                        anchors[best:best + 1], META.priors.variances)
    arrays = [loc, conf, landms, pose, pose, pose]
    return RawOutputs.from_sequence([a[None] for a in arrays])


def test_decode_recovers_faces_in_image_pixels_through_the_letterbox():
    box = letterbox_for((480, 960), (320, 320))  # scale 1/3, bottom padded
    faces_in = [((30, 40, 90, 110), [(45, 65), (75, 65), (60, 80), (48, 95), (72, 95)]),
                ((150, 60, 200, 120), [(160, 80), (190, 80), (175, 95), (165, 105), (185, 105)])]
    raw = synthetic_raw(faces_in, 320, 320)
    faces = decode_faces(raw, META, box, DecodeSettings(score_threshold=0.5))
    assert len(faces) == 2
    by_x = sorted(faces, key=lambda f: f.box[0])
    for face, (box_in, points_in) in zip(by_x, faces_in):
        assert face.box == pytest.approx(np.array(box_in) * 3, abs=1e-3)
        assert face.landmarks == pytest.approx(np.array(points_in) * 3, abs=1e-3)
        assert face.pose.yaw == pytest.approx(21.0) and face.score == pytest.approx(
            1 / (1 + np.exp(-8)))


def test_decode_thresholds_and_min_size():
    raw = synthetic_raw([((30, 40, 90, 110), [(50, 60)] * 5), ((5, 5, 15, 15), [(8, 8)] * 5)],
                        160, 160)
    box = letterbox_for((160, 160), None)
    assert len(decode_faces(raw, META, box, DecodeSettings(score_threshold=0.5))) == 2
    assert decode_faces(raw, META, box, DecodeSettings(score_threshold=0.9999999)) == []
    assert len(decode_faces(raw, META, box, DecodeSettings(min_face_size=20))) == 1


def test_decode_refuses_outputs_that_do_not_match_the_input_size():
    raw = synthetic_raw([], 160, 160)
    with pytest.raises(ValueError, match="does not match"):
        decode_faces(raw, META, letterbox_for((320, 320), None))


def test_invalid_settings_name_the_field():
    with pytest.raises(ValueError, match="nms_threshold must be in"):
        DecodeSettings(nms_threshold=0.0)


def test_proposed_settings_are_judged_without_being_made():
    assert DecodeSettings.problems_for(score_threshold=0.3) == []
    assert DecodeSettings.problems_for(score_threshold=3, top_k=0) == [
        "score_threshold must be in [0, 1] (got 3)", "top_k must be at least 1 (got 0)"]
