"""Specification of faces in 3-D: camera intrinsics and the head placement of core.head3d."""
import numpy as np
import pytest

from mos_ros.core.camera import CameraError, PinholeCamera
from mos_ros.core.head3d import (MEAN_FACE_M, MEAN_FACE_WIDTH_M, PIXEL_CORNER_TO_CENTRE,
                                 fit_translation, place_head, place_heads, viewing_rotation)
from mos_ros.core.pose import euler_to_matrix, quaternion_to_matrix
from mos_ros.core.types import Face, HeadPose
from mos_ros.scenes.face_mesh import load_face_mesh

CAMERA = PinholeCamera(600.0, 600.0, 319.5, 239.5, 640, 480)
SELLION_VERTEX = 168


def test_mean_face_is_the_shipped_mesh_in_metres_about_its_sellion():
    mesh = load_face_mesh()
    expected = (mesh.landmarks - mesh.vertices[SELLION_VERTEX]) / 100.0
    assert MEAN_FACE_M == pytest.approx(expected, abs=2e-5)
    eye_distance = np.linalg.norm(MEAN_FACE_M[0] - MEAN_FACE_M[1])
    assert eye_distance == pytest.approx(0.063, abs=0.001)   # adult mean interpupillary


def test_mean_face_width_is_the_mesh_extent():
    width = np.ptp(load_face_mesh().frontal_xy[:, 0]) / 100.0
    assert MEAN_FACE_WIDTH_M == pytest.approx(width, abs=0.001)


def test_camera_from_k_from_p_and_without_intrinsics():
    k = [500, 0, 320, 0, 510, 240, 0, 0, 1]
    p = [400, 0, 300, 0, 0, 410, 200, 0, 0, 0, 1, 0]
    assert PinholeCamera.from_matrices(k, p) == PinholeCamera(500, 510, 320, 240)
    assert PinholeCamera.from_matrices([0] * 9, p) == PinholeCamera(400, 410, 300, 200)
    with pytest.raises(CameraError, match="K and P are both zero"):
        PinholeCamera.from_matrices([0] * 9, [0] * 12)
    with pytest.raises(CameraError, match="equidistant"):
        PinholeCamera.from_matrices(k, p, [0.1, 0, 0, 0], "equidistant")
    with pytest.raises(CameraError, match="positive"):
        PinholeCamera(-1.0, 500.0, 0.0, 0.0)


def test_distorted_pixels_come_back_to_their_rays():
    camera = PinholeCamera.from_matrices([500, 0, 320, 0, 500, 240, 0, 0, 1], (),
                                         [-0.2, 0.05, 0.001, -0.001, 0.0], "plumb_bob")
    points = np.array([[0.3, -0.2, 1.5], [-0.1, 0.25, 0.8], [0.0, 0.0, 2.0]])
    pixels = camera.project(points)
    undistorted = camera.normalized(pixels)
    assert undistorted == pytest.approx(points[:, :2] / points[:, 2:], abs=1e-5)
    assert not np.allclose(pixels, CAMERA.project(points))


def test_a_downscaled_image_halves_the_intrinsics():
    half = CAMERA.scaled_to(320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (300.0, 300.0, 159.5, 119.5)
    assert CAMERA.scaled_to(640, 480) is CAMERA


def test_viewing_rotation_turns_the_optical_axis_onto_the_ray():
    for ray in ([0.3, -0.2, 1.0], [-0.5, 0.1, 0.7], [0.0, 0.0, 1.0]):
        unit = np.asarray(ray) / np.linalg.norm(ray)
        rotation = viewing_rotation(unit)
        assert rotation @ [0, 0, 1] == pytest.approx(unit)
        assert rotation @ rotation.T == pytest.approx(np.eye(3))
    assert viewing_rotation([0, 0, 1]) == pytest.approx(np.eye(3))


def synthetic_face(position, yaw, pitch, roll, camera=CAMERA, box_width=None):
    """A face as a perfect detector would see the mean face at ``position``, with the MOS
    angles (relative to the ray through the box centre) ``yaw, pitch, roll``."""
    position = np.asarray(position, np.float64)
    centre = camera.project(position[None])[0] + PIXEL_CORNER_TO_CENTRE
    ray = camera.rays(centre[None] - PIXEL_CORNER_TO_CENTRE)[0]
    rotation = viewing_rotation(ray) @ euler_to_matrix(yaw, pitch, roll)
    landmarks = camera.project(position + MEAN_FACE_M @ rotation.T) + PIXEL_CORNER_TO_CENTRE
    width = box_width or camera.fx * MEAN_FACE_WIDTH_M / position[2]
    box = (centre[0] - width / 2, centre[1] - width / 2, centre[0] + width / 2,
           centre[1] + width / 2)
    return Face(box, 0.9, landmarks, HeadPose(yaw, pitch, roll)), rotation


@pytest.mark.parametrize("position, angles", [
    ((0.0, 0.0, 1.0), (0.0, 0.0, 0.0)),
    ((0.4, -0.2, 0.6), (30.0, -10.0, 5.0)),
    ((-1.0, 0.5, 3.5), (-60.0, 20.0, -15.0)),
    ((0.2, 0.3, 0.5), (75.0, 5.0, 25.0)),
])
def test_a_projected_mean_face_is_placed_back_where_it_was(position, angles):
    face, rotation = synthetic_face(position, *angles)
    head = place_head(face, CAMERA)
    assert head.method == "landmarks"
    assert head.position == pytest.approx(position, abs=1e-9)
    assert head.reprojection_px == pytest.approx(0.0, abs=1e-6)
    assert np.linalg.norm(head.orientation) == pytest.approx(1.0)
    assert quaternion_to_matrix(head.orientation) == pytest.approx(rotation, abs=1e-9)


def test_landmark_noise_of_a_pixel_moves_a_two_metre_face_by_a_few_percent():
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(50):
        face, rotation = synthetic_face((0.1, 0.05, 2.0), 10.0, 0.0, 0.0)
        noisy = face.landmarks + rng.normal(0.0, 1.0, face.landmarks.shape)
        translation, _ = fit_translation(noisy, rotation, CAMERA)
        errors.append(abs(translation[2] - 2.0) / 2.0)
    assert 0.0 < np.median(errors) < 0.06


def test_landmarks_that_miss_the_mean_face_fall_back_on_the_box():
    face, _ = synthetic_face((0.2, 0.0, 1.5), 0.0, 0.0, 0.0)
    scrambled = Face(face.box, face.score, face.landmarks[[4, 2, 0, 1, 3]], face.pose)
    head = place_head(scrambled, CAMERA)
    assert head.method == "box"
    assert head.position[2] == pytest.approx(1.5, rel=1e-6)
    assert head.position[0] == pytest.approx(0.2, abs=0.01)


def test_every_face_is_placed_in_order():
    faces = [synthetic_face((x, 0.0, 1.0 + x), 0.0, 0.0, 0.0)[0] for x in (0.0, 0.5, 1.0)]
    depths = [head.position[2] for head in place_heads(faces, CAMERA)]
    assert depths == pytest.approx([1.0, 1.5, 2.0])
