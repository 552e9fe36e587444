"""Specification of the face quality terms, measured on synthetic drawn faces."""
import math

import cv2
import numpy as np
import pytest

from mos_ros.core.quality import (QualityConfig, QualityTerms, assess, exposure_term,
                                  inter_eye_distance, pose_term, sharpness_term, size_term,
                                  validate_face)
from mos_ros.core.types import Face, HeadPose

#: Frontal landmark layout in units of the inter-eye distance, relative to the eye midpoint:
#: (x, y, depth towards the camera), in RetinaFace order.
FACE_POINTS = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.57, 0.6],
                        [-0.41, 1.16, 0.2], [0.41, 1.16, 0.2]])


def face_landmarks(centre, eye_px, yaw_deg=0.0):
    """Image landmarks of a face turned by ``yaw_deg`` (positive: towards the image left)."""
    yaw = math.radians(yaw_deg)
    x = FACE_POINTS[:, 0] * math.cos(yaw) - FACE_POINTS[:, 2] * math.sin(yaw)
    return np.stack([x, FACE_POINTS[:, 1]], axis=1) * eye_px + centre


def draw_face(image, centre, eye_px, yaw_deg=0.0, seed=0, grain_px=1.0):
    """Draw a textured head with eyes, nose and mouth; return its :class:`Face`.

    The skin is noise smoothed over ``grain_px`` pixels, a stand-in for skin and hair detail.
    """
    rng = np.random.default_rng(seed)
    landmarks = face_landmarks(np.asarray(centre, dtype=np.float64), eye_px, yaw_deg)
    head_centre = (landmarks[0] + landmarks[1]) / 2 + [0.0, 0.45 * eye_px]
    axes = (int(1.1 * eye_px), int(1.5 * eye_px))
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.ellipse(mask, tuple(int(v) for v in head_centre), axes, 0, 0, 360, 255, -1)
    noise = cv2.GaussianBlur(rng.normal(0.0, 25.0 * (1 + grain_px), image.shape), (0, 0), grain_px)
    skin = np.clip(150 + noise, 0, 255).astype(np.uint8)
    image[mask > 0] = skin[mask > 0]
    radius = max(2, int(0.12 * eye_px))
    for x, y in landmarks[:2]:
        cv2.circle(image, (int(x), int(y)), radius, (40, 30, 30), -1)
    cv2.circle(image, tuple(int(v) for v in landmarks[2]), radius // 2 + 1, (90, 90, 140), -1)
    cv2.line(image, tuple(int(v) for v in landmarks[3]), tuple(int(v) for v in landmarks[4]),
             (60, 60, 160), max(1, radius // 2))
    x1, y1 = head_centre - axes
    x2, y2 = head_centre + axes
    return Face(box=(float(x1), float(y1), float(x2), float(y2)), score=0.95,
                landmarks=landmarks.astype(np.float32), pose=HeadPose(yaw_deg, 0.0, 0.0))


def canvas(height=240, width=320, level=90):
    return np.full((height, width, 3), level, dtype=np.uint8)


@pytest.mark.parametrize("yaw,pitch,expected", [
    (0.0, 0.0, 1.0), (30.0, 0.0, 0.75), (-30.0, 0.0, 0.75), (0.0, 30.0, 0.75),
    (30.0, 30.0, 0.5625), (60.0, 0.0, 0.25), (90.0, 0.0, 0.0), (150.0, 0.0, 0.0),
])
def test_pose_term_is_cos_squared_of_yaw_times_cos_squared_of_pitch(yaw, pitch, expected):
    assert pose_term(yaw, pitch) == pytest.approx(expected, abs=1e-12)


def test_size_term_is_a_sigmoid_of_the_eye_distance_centred_where_configured():
    config = QualityConfig(size_centre_px=30.0, size_slope_px=5.0)
    assert size_term(30.0, config) == pytest.approx(0.5)
    values = [size_term(d, config) for d in (5, 20, 30, 40, 80)]
    assert values == sorted(values) and values[0] < 0.01 and values[-1] > 0.99
    assert size_term(40.0, QualityConfig(size_centre_px=40.0)) == pytest.approx(0.5)
    assert size_term(-1e9, config) == 0.0 and size_term(1e9, config) == 1.0


def test_inter_eye_distance_is_measured_in_image_pixels():
    landmarks = face_landmarks(np.array([100.0, 100.0]), 42.0)
    assert inter_eye_distance(landmarks) == pytest.approx(42.0)


def test_sharpness_term_saturates_monotonically_in_zero_one():
    config = QualityConfig(sharpness_half_variance=20.0)
    assert sharpness_term(0.0, config) == 0.0
    assert sharpness_term(20.0, config) == pytest.approx(0.5)
    values = [sharpness_term(v, config) for v in (1, 10, 100, 1000, 1e6)]
    assert values == sorted(values) and values[-1] < 1.0


def test_blurred_face_scores_lower_sharpness_than_the_same_face_sharp():
    image = canvas()
    face = draw_face(image, (160, 100), 50)
    sharp = assess(face, image)
    blurred = assess(face, cv2.GaussianBlur(image, (0, 0), 2.5))
    assert blurred.laplacian_variance < 0.5 * sharp.laplacian_variance
    assert sharp.terms.sharpness > 0.5
    assert blurred.terms.sharpness < sharp.terms.sharpness
    assert blurred.terms.total < sharp.terms.total
    assert blurred.terms.pose == sharp.terms.pose and blurred.terms.size == sharp.terms.size


@pytest.mark.parametrize("factor", [2, 4])
def test_sharpness_does_not_depend_on_how_large_the_face_appears(factor):
    big = canvas(480, 640)
    face = draw_face(big, (320, 190), 120, grain_px=2.5)
    small = cv2.resize(big, (640 // factor, 480 // factor), interpolation=cv2.INTER_AREA)
    # Area resizing maps pixel centre x to (x + 0.5) / factor - 0.5.
    reduced = Face(box=tuple(v / factor for v in face.box), score=face.score,
                   landmarks=(face.landmarks + 0.5) / factor - 0.5, pose=face.pose)
    large, smaller = assess(face, big), assess(reduced, small)
    assert smaller.inter_eye_px == pytest.approx(large.inter_eye_px / factor, rel=1e-6)
    assert smaller.terms.size < large.terms.size
    assert smaller.laplacian_variance == pytest.approx(large.laplacian_variance, rel=0.25)
    blurred = assess(reduced, cv2.GaussianBlur(small, (0, 0), 4.0 / factor))
    assert blurred.laplacian_variance < 0.6 * smaller.laplacian_variance


def test_frontal_face_beats_the_same_face_turned_away():
    image = canvas(240, 640)
    frontal = assess(draw_face(image, (160, 100), 50, 0.0), image)
    turned = assess(draw_face(image, (480, 100), 50, 50.0), image)
    assert frontal.terms.pose == 1.0 and turned.terms.pose == pytest.approx(pose_term(50, 0))
    assert frontal.terms.total > turned.terms.total


def test_total_is_the_product_of_the_terms_and_every_term_lies_in_zero_one():
    image = canvas()
    result = assess(draw_face(image, (160, 100), 36, 20.0), image)
    t = result.terms
    assert t.total == pytest.approx(t.detector * t.pose * t.size * t.sharpness)
    assert t.exposure is None
    assert all(0.0 <= v <= 1.0 for v in (t.detector, t.pose, t.size, t.sharpness, t.total))
    assert result.crop.shape == (112, 112, 3) and result.matrix.shape == (2, 3)
    assert QualityTerms(0.5, 0.5, 0.5, 0.5, 0.5).total == pytest.approx(0.5 ** 5)


def test_exposure_when_enabled_penalises_dark_and_clipped_faces():
    config = QualityConfig(use_exposure=True)
    image = canvas()
    face = draw_face(image, (160, 100), 50)
    normal = assess(face, image, config)
    dark = assess(face, (image * 0.15).astype(np.uint8), config)
    assert normal.terms.exposure > 0.5 > dark.terms.exposure
    assert normal.terms.total == pytest.approx(
        normal.terms.detector * normal.terms.pose * normal.terms.size * normal.terms.sharpness
        * normal.terms.exposure)
    assert exposure_term(np.full((20, 20), 255, np.uint8), config) == 0.0
    assert exposure_term(np.full((20, 20), 128, np.uint8), config) == 1.0


def good_face():
    return draw_face(canvas(), (160, 100), 40)


@pytest.mark.parametrize("change,reason", [
    (dict(pose=HeadPose(float("nan"), 0.0, 0.0)), "pose"),
    (dict(pose=HeadPose(0.0, float("inf"), 0.0)), "pose"),
    (dict(box=(50.0, 50.0, 50.0, 90.0)), "zero-size"),
    (dict(box=(50.0, 50.0, 90.0, float("nan"))), "box"),
    (dict(score=float("nan")), "score"),
    (dict(score=1.5), "score"),
    (dict(landmarks=np.full((5, 2), np.nan)), "NaN"),
    (dict(landmarks=face_landmarks(np.array([5000.0, 100.0]), 40)), "outside"),
    (dict(landmarks=np.full((5, 2), 100.0)), "identical"),
])
def test_faces_that_cannot_be_assessed_get_a_reason_and_assess_refuses_them(change, reason):
    base = good_face()
    fields = dict(box=base.box, score=base.score, landmarks=base.landmarks, pose=base.pose)
    fields.update(change)
    bad = Face(**fields)
    assert validate_face(base, (240, 320, 3)) is None
    assert reason in validate_face(bad, (240, 320, 3))
    with pytest.raises(ValueError, match=reason):
        assess(bad, canvas())


@pytest.mark.parametrize("garbage", [None, "face", Face((0, 0, 1, 1), "high", None, None)])
def test_malformed_input_is_reported_not_raised(garbage):
    assert "not a face" in validate_face(garbage, (240, 320, 3))


def test_invalid_quality_config_names_the_field():
    with pytest.raises(ValueError, match="size_slope_px"):
        QualityConfig(size_slope_px=0.0)
    with pytest.raises(ValueError, match="sharpness_half_variance"):
        QualityConfig(sharpness_half_variance=-1.0)
    with pytest.raises(ValueError, match="crop_size"):
        QualityConfig(crop_size=8)
    assert QualityConfig().problems() == []
