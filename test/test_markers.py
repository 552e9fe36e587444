"""Head axes in 3D (mos_ros.core.markers): intrinsics, depth from face size, arrow poses."""
import numpy as np
import pytest

from mos_ros.core.head3d import MEAN_FACE_WIDTH_M, Head3D
from mos_ros.core.markers import (AXIS_RGBA, DEFAULT_HFOV_DEG, Intrinsics, back_project,
                                  face_distance, face_position, head_axis_arrows,
                                  intrinsics_from_hfov, intrinsics_from_k, placed_head_arrows,
                                  project)
from mos_ros.core.pose import (euler_to_matrix, euler_to_quaternion, matrix_to_quaternion,
                               quaternion_to_matrix)
from mos_ros.core.types import Face, HeadPose


def make_face(box=(100.0, 80.0, 160.0, 150.0), pose=HeadPose(0.0, 0.0, 0.0)) -> Face:
    return Face(box=box, score=0.9, landmarks=np.zeros((5, 2), np.float32), pose=pose)


def test_hfov_intrinsics_put_the_image_edge_at_half_the_field_of_view():
    intr = intrinsics_from_hfov(640, 480, 90.0)
    assert (intr.cx, intr.cy) == (320.0, 240.0)
    assert intr.fx == pytest.approx(320.0) and intr.fy == intr.fx
    edge = back_project(640.0, 240.0, 1.0, intr)
    assert np.degrees(np.arctan2(edge[0], edge[2])) == pytest.approx(45.0)
    assert intrinsics_from_hfov(640, 480).fx == pytest.approx(
        320.0 / np.tan(np.radians(DEFAULT_HFOV_DEG / 2)))


@pytest.mark.parametrize("hfov", [0.0, 180.0, -5.0])
def test_impossible_field_of_view_is_rejected(hfov):
    with pytest.raises(ValueError, match="field of view"):
        intrinsics_from_hfov(640, 480, hfov)


def test_camera_matrix_is_rescaled_to_the_image_size_and_zeros_mean_uncalibrated():
    k = [600.0, 0.0, 330.0, 0.0, 610.0, 250.0, 0.0, 0.0, 1.0]
    half = intrinsics_from_k(k, (640, 480), (320, 240))
    assert half == Intrinsics(300.0, 305.0, 165.0, 125.0)
    assert intrinsics_from_k([0.0] * 9, (640, 480), (640, 480)) is None
    assert intrinsics_from_k(k, (0, 0), (640, 480)) is None


def test_depth_follows_from_the_average_face_width():
    # A mean face 2 m away, seen with fx = 500 px, is 500 * width / 2 px wide.
    width_px = 500.0 * MEAN_FACE_WIDTH_M / 2.0
    assert face_distance(width_px, 500.0) == pytest.approx(2.0)
    assert face_distance(2 * width_px, 500.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        face_distance(0.0, 500.0)


def test_face_position_projects_back_onto_the_box_centre():
    intr = Intrinsics(500.0, 510.0, 320.0, 240.0)
    face = make_face(box=(400.0, 100.0, 450.0, 170.0))
    position = face_position(face, intr)
    assert position[2] == pytest.approx(500.0 * MEAN_FACE_WIDTH_M / 50.0)
    np.testing.assert_allclose(project(position, intr), [425.0, 135.0])
    assert position[0] > 0 and position[1] < 0  # right of and above the optical axis


@pytest.mark.parametrize("pose", [HeadPose(0, 0, 0), HeadPose(30, -10, 5), HeadPose(-60, 25, -40)])
def test_axis_arrows_point_along_the_head_axes(pose):
    intr = intrinsics_from_hfov(640, 480)
    arrows = head_axis_arrows(make_face(pose=pose), intr, length_m=0.2)
    rotation = euler_to_matrix(pose.yaw, pose.pitch, pose.roll)
    assert [a.axis for a in arrows] == [0, 1, 2]
    np.testing.assert_allclose(arrows[0].orientation,
                               euler_to_quaternion(pose.yaw, pose.pitch, pose.roll), atol=1e-12)
    for arrow in arrows:
        np.testing.assert_allclose(quaternion_to_matrix(arrow.orientation)[:, 0],
                                   rotation[:, arrow.axis], atol=1e-12)
        np.testing.assert_allclose(arrow.end - arrow.position, 0.2 * rotation[:, arrow.axis],
                                   atol=1e-12)
        assert arrow.rgba == AXIS_RGBA[arrow.axis] and arrow.scale[0] == 0.2
    assert [a.rgba[:3] for a in arrows] == [(1.0, 0.0, 0.0), (0.0, 0.8, 0.0), (0.0, 0.0, 1.0)]


def test_frontal_face_gazes_back_at_the_camera_with_its_head_up():
    arrows = head_axis_arrows(make_face(), intrinsics_from_hfov(640, 480), length_m=1.0)
    np.testing.assert_allclose(arrows[0].end - arrows[0].position, [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(arrows[2].end - arrows[2].position, [0, -1, 0], atol=1e-12)


def test_degenerate_face_gives_no_arrows_and_bad_length_is_rejected():
    intr = intrinsics_from_hfov(640, 480)
    assert head_axis_arrows(make_face(box=(10.0, 10.0, 10.0, 40.0)), intr, 0.1) == []
    with pytest.raises(ValueError, match="length"):
        head_axis_arrows(make_face(), intr, 0.0)


def test_a_placed_head_gets_its_arrows_at_its_sellion_along_its_orientation():
    rotation = euler_to_matrix(20.0, -10.0, 5.0)
    head = Head3D((0.1, -0.05, 1.4), tuple(matrix_to_quaternion(rotation)), "landmarks")
    arrows = placed_head_arrows(head, 0.15)
    assert [a.axis for a in arrows] == [0, 1, 2]
    for arrow in arrows:
        np.testing.assert_allclose(arrow.position, head.position)
        np.testing.assert_allclose(arrow.end - arrow.position, 0.15 * rotation[:, arrow.axis],
                                   atol=1e-12)
    np.testing.assert_allclose(arrows[0].orientation, head.orientation, atol=1e-12)
