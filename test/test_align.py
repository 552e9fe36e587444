"""Specification of five-point alignment to the ArcFace 112x112 template."""
import cv2
import numpy as np
import pytest

from mos_ros.core.align import (ARCFACE_TEMPLATE_112, align_face, apply_transform,
                                landmark_problem, similarity_transform, template_for)
from mos_ros.core.errors import ImageError

#: Sub-pixel bits for cv2 drawing: centres are given in 1/16 pixel.
SHIFT = 4


def similarity(scale, angle_deg, tx, ty):
    """2x3 similarity matrix: rotate by ``angle_deg``, scale, then translate."""
    a = np.radians(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


def draw_dots(shape, points, radius):
    """White anti-aliased discs on black, centred (to 1/16 px) on ``points``."""
    image = np.zeros(shape, dtype=np.uint8)
    for x, y in points:
        centre = (int(round(x * 2 ** SHIFT)), int(round(y * 2 ** SHIFT)))
        cv2.circle(image, centre, int(round(radius * 2 ** SHIFT)), (255, 255, 255), -1,
                   cv2.LINE_AA, SHIFT)
    return image


def blob_centre(gray, near, window=8):
    """Intensity-weighted centroid of the pixels within ``window`` of ``near``."""
    x0, y0 = int(round(near[0])) - window, int(round(near[1])) - window
    patch = gray[y0:y0 + 2 * window + 1, x0:x0 + 2 * window + 1].astype(np.float64)
    ys, xs = np.mgrid[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]]
    weight = patch.sum()
    assert weight > 0, f"no dot found near {near}"
    return np.array([(xs * patch).sum() / weight, (ys * patch).sum() / weight])


def test_template_is_the_common_arcface_five_points_in_retinaface_order():
    assert ARCFACE_TEMPLATE_112.shape == (5, 2)
    left_eye, right_eye, nose, left_mouth, right_mouth = ARCFACE_TEMPLATE_112
    assert left_eye == pytest.approx([38.2946, 51.6963])
    assert left_eye[0] < nose[0] < right_eye[0] and left_mouth[0] < right_mouth[0]
    assert left_eye[1] < nose[1] < left_mouth[1]
    with pytest.raises(ValueError):
        ARCFACE_TEMPLATE_112[0, 0] = 0.0
    assert template_for(224) == pytest.approx(2 * ARCFACE_TEMPLATE_112)


def test_similarity_transform_recovers_a_known_similarity_exactly():
    truth = similarity(1.7, -33.0, 12.5, -4.0)
    src = np.array([[0.0, 0.0], [10.0, 1.0], [3.0, 8.0], [-5.0, 12.0], [7.0, -6.0]])
    matrix = similarity_transform(src, apply_transform(truth, src))
    assert matrix.shape == (2, 3)
    assert matrix == pytest.approx(truth, abs=1e-9)


def test_mirrored_points_get_a_rotation_never_a_reflection():
    mirrored = ARCFACE_TEMPLATE_112 * [-1.0, 1.0]
    matrix = similarity_transform(mirrored, ARCFACE_TEMPLATE_112)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_fit_is_least_squares_no_nearby_similarity_fits_noisy_points_better():
    rng = np.random.default_rng(3)
    src = ARCFACE_TEMPLATE_112 * 2.0
    dst = apply_transform(similarity(0.6, 12.0, 5.0, 9.0), src) + rng.normal(0, 1.5, (5, 2))
    matrix = similarity_transform(src, dst)
    best = np.sum((apply_transform(matrix, src) - dst) ** 2)
    a, b, tx, ty = matrix[0, 0], matrix[1, 0], matrix[0, 2], matrix[1, 2]
    for delta in np.eye(4) * 1e-3:
        for sign in (-1, 1):
            da, db, dx, dy = sign * delta
            other = np.array([[a + da, -(b + db), tx + dx], [b + db, a + da, ty + dy]])
            assert np.sum((apply_transform(other, src) - dst) ** 2) > best


@pytest.mark.parametrize("scale,angle", [(0.8, 25.0), (2.5, -15.0), (1.0, 0.0)])
def test_aligned_crop_puts_the_five_landmarks_within_one_pixel_of_the_template(scale, angle):
    to_image = similarity(scale, angle, 140.0, 90.0)
    landmarks = apply_transform(to_image, ARCFACE_TEMPLATE_112)
    image = draw_dots((400, 480, 3), landmarks, radius=2.5 * scale)
    crop, matrix = align_face(image, landmarks)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    for expected in ARCFACE_TEMPLATE_112:
        assert np.hypot(*(blob_centre(gray, expected) - expected)) < 1.0
    assert apply_transform(matrix, landmarks) == pytest.approx(ARCFACE_TEMPLATE_112, abs=1e-6)


def test_crop_size_scales_the_template():
    landmarks = apply_transform(similarity(1.0, 10.0, 50.0, 40.0), ARCFACE_TEMPLATE_112)
    image = draw_dots((240, 240, 3), landmarks, radius=3.0)
    crop, matrix = align_face(image, landmarks, size=224)
    assert crop.shape == (224, 224, 3)
    assert apply_transform(matrix, landmarks) == pytest.approx(template_for(224), abs=1e-6)


def test_an_ordinary_face_has_no_landmark_problem():
    assert landmark_problem(ARCFACE_TEMPLATE_112, (112, 112, 3)) is None


@pytest.mark.parametrize("landmarks,message", [
    (np.full((5, 2), 50.0), "identical"),
    (np.stack([np.linspace(10, 90, 5), np.linspace(20, 60, 5)], axis=1), "collinear"),
    (np.where(np.eye(5, 2, dtype=bool), np.nan, ARCFACE_TEMPLATE_112), "NaN"),
    (ARCFACE_TEMPLATE_112 + [1000.0, 0.0], "outside"),
    (ARCFACE_TEMPLATE_112 - [0.0, 500.0], "outside"),
    (ARCFACE_TEMPLATE_112[:4], "shape"),
])
def test_unusable_landmarks_are_refused_with_the_reason(landmarks, message):
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    assert message in landmark_problem(landmarks, image.shape)
    with pytest.raises(ValueError, match=message):
        align_face(image, landmarks)


def test_identical_source_points_cannot_define_a_transform():
    with pytest.raises(ValueError, match="identical"):
        similarity_transform(np.ones((5, 2)), ARCFACE_TEMPLATE_112)
    with pytest.raises(ValueError, match="shape"):
        similarity_transform(np.ones((5, 2)), np.ones((4, 2)))


@pytest.mark.parametrize("image", [np.zeros((50, 50, 3), np.float32), np.zeros((50, 50), np.uint8),
                                   np.zeros((0, 50, 3), np.uint8), "image"])
def test_unusable_images_raise_image_error(image):
    with pytest.raises(ImageError):
        align_face(image, ARCFACE_TEMPLATE_112 * 0.4)
