"""Specification of in-plane rotation and mirroring of images and their face labels
(core.pose.rotate_in_plane, rotate_pose, mirror_pose): checked against what OpenCV does to
the pixels, and against the head rotation written in core.pose."""
import cv2
import numpy as np
import pytest

from mos_ros.core.nms import iou_matrix
from mos_ros.core.pose import (euler_to_matrix, expanded_rotation, in_plane_matrix,
                               mirror_pose, mirror_poses, rotate_in_plane, rotate_pose,
                               rotated_box,
                               split_in_plane, transform_points, turn_in_plane)

POSES = [(0, 0, 0), (25, -10, 5), (-40, 20, -15), (60, 30, 10), (-5, -35, 25)]


def test_positive_theta_turns_the_picture_counter_clockwise_on_screen():
    image = np.zeros((101, 101), np.uint8)
    image[50, 90] = 255                                   # a dot right of the centre
    matrix = in_plane_matrix(90, (50, 50))
    turned = cv2.warpAffine(image, matrix, (101, 101))
    assert tuple(np.argwhere(turned == turned.max())[0]) == (10, 50)   # now above: row 10
    assert transform_points([90, 50], matrix) == pytest.approx([50, 10], abs=1e-9)


def test_landmarks_follow_the_pixels_they_were_drawn_on():
    image = np.zeros((240, 320), np.uint8)
    landmarks = np.array([[120, 100], [180, 96], [150, 130], [128, 160], [175, 158.0]])
    for index, (x, y) in enumerate(landmarks):
        cv2.circle(image, (int(x), int(y)), 4, 50 * (index + 1), -1)
    for theta in (-60, -15, 30, 45, 90):
        matrix = in_plane_matrix(theta, (160, 120))
        turned = cv2.warpAffine(image, matrix, (320, 240), flags=cv2.INTER_NEAREST)
        moved = rotate_in_plane(theta, (160, 120), [[100, 80, 200, 180]], landmarks[None],
                                [(0, 0, 0)]).landmarks[0]
        for index, point in enumerate(moved):
            ys, xs = np.nonzero(turned == 50 * (index + 1))
            assert [xs.mean(), ys.mean()] == pytest.approx(point, abs=0.6)


@pytest.mark.parametrize("theta", [-90, -45, -15, 15, 30, 45, 90])
def test_frontal_roll_changes_by_minus_theta(theta):
    for roll in (-20.0, 0.0, 8.0):
        pose = rotate_pose(0, 0, roll, theta)
        assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((0, 0, roll - theta), abs=1e-9)


@pytest.mark.parametrize("pose", POSES)
@pytest.mark.parametrize("theta", [-45, 20, 70])
def test_head_axes_seen_in_the_image_turn_with_the_picture(pose, theta):
    # Every head axis projected into the image (its x, y in the optical frame) is turned by
    # the same 2-D map as the pixels; depth is unchanged.
    linear = in_plane_matrix(theta, (0, 0))[:, :2]
    before = euler_to_matrix(*pose)
    after = euler_to_matrix(*rotate_pose(*pose, theta).as_tuple())
    assert after[:2] == pytest.approx(linear @ before[:2], abs=1e-9)
    assert after[2] == pytest.approx(before[2], abs=1e-9)


def test_a_turned_face_trades_yaw_for_pitch_as_its_nose_turns():
    pose = rotate_pose(30, 0, 0, 90)       # nose pointed to image left now points down
    assert pose.pitch == pytest.approx(-30, abs=1e-9) and pose.roll == pytest.approx(-90)
    assert abs(pose.yaw) < 1e-9


@pytest.mark.parametrize("pose", POSES)
def test_mirror_is_the_reflected_head_rotation(pose):
    # Reflect the camera x axis and the head's left-right axis: the rotation written in
    # core.pose maps onto the one of (-yaw, pitch, -roll).
    flip = np.diag([-1.0, 1.0, 1.0])
    mirrored = mirror_pose(*pose)
    assert euler_to_matrix(*mirrored.as_tuple()) == pytest.approx(
        flip @ euler_to_matrix(*pose) @ np.diag([1.0, -1.0, 1.0]), abs=1e-12)
    assert mirrored.as_tuple() == pytest.approx((-pose[0], pose[1], -pose[2]))


def test_the_box_of_mesh_points_is_their_rotated_extent():
    points = np.array([[10, 20], [50, 20], [30, 80.0]])
    box = np.array([10, 20, 50, 80.0])
    matrix = in_plane_matrix(90, (0, 0))
    assert rotated_box(box, matrix, points) == pytest.approx([20, -50, 80, -10])


def test_the_inscribed_ellipse_box_fits_a_rotated_face_mesh():
    from mos_ros.scenes.face_mesh import load_face_mesh
    vertices = load_face_mesh().vertices
    for pose in POSES:
        camera = vertices @ euler_to_matrix(*pose).T * 4 + [200, 200, 0]
        points = camera[:, :2]
        box = np.concatenate([points.min(axis=0), points.max(axis=0)])
        for theta in (30, 45, -60):
            matrix = in_plane_matrix(theta, (200, 200))
            truth = rotated_box(box, matrix, points)
            ellipse = rotated_box(box, matrix)
            corners = transform_points(box[[0, 1, 2, 1, 2, 3, 0, 3]].reshape(4, 2), matrix)
            loose = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
            # Tight for a face outline (a turned face's box is off-centre, hence not 1),
            # and far tighter than the turned corners.
            assert iou_matrix(ellipse[None], truth[None])[0, 0] > 0.7
            assert (iou_matrix(ellipse[None], truth[None])[0, 0]
                    > iou_matrix(loose[None], truth[None])[0, 0] + 0.1)


def test_rotate_in_plane_moves_every_label_through_one_rotation():
    boxes = np.array([[100, 100, 160, 180], [10, 10, 30, 30.0]])
    landmarks = np.stack([np.full((5, 2), 130.0), np.full((5, 2), 20.0)])
    poses = np.array([[20, -10, 5], [0, 0, 0.0]])
    mesh = np.array([[100, 100], [160, 100], [130, 180.0]])
    out = rotate_in_plane(30, (64, 64), boxes, landmarks, poses, [mesh, None])
    matrix = in_plane_matrix(30, (64, 64))
    assert out.boxes[0] == pytest.approx(rotated_box(boxes[0], matrix, mesh))
    assert out.boxes[1] == pytest.approx(rotated_box(boxes[1], matrix))
    assert out.landmarks == pytest.approx(transform_points(landmarks, matrix))
    assert out.poses[0] == pytest.approx(rotate_pose(20, -10, 5, 30).as_tuple())
    with pytest.raises(ValueError, match="1 outlines for 2 faces"):
        rotate_in_plane(30, (64, 64), boxes, landmarks, poses, [mesh])


def test_expanded_rotation_keeps_every_corner_in_view():
    for theta in (15, 45, -90, 135):
        matrix, (width, height) = expanded_rotation(theta, 320, 200)
        corners = transform_points([[0, 0], [320, 0], [0, 200], [320, 200]], matrix)
        assert corners.min() >= -1e-6
        assert corners[:, 0].max() <= width + 1e-6 and corners[:, 1].max() <= height + 1e-6
        assert corners[:, 0].max() >= width - 1 and corners[:, 1].max() >= height - 1


def turn_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation taking ``a`` to ``b``."""
    return float(np.degrees(np.arccos(np.clip((np.trace(b @ a.T) - 1) / 2, -1, 1))))


@pytest.mark.parametrize("source, wanted", [((0, 0, 0), (20, 10, 35)),
                                            ((15, -5, 3), (-30, 20, -60)),
                                            ((-40, 10, 0), (50, -30, 80))])
def test_split_in_plane_takes_out_the_turn_that_brings_a_pose_nearest_its_source(
        source, wanted):
    reference, rotation = euler_to_matrix(*source), euler_to_matrix(*wanted)
    theta, rest = split_in_plane(rotation, reference)
    assert turn_in_plane(rest, theta) == pytest.approx(rotation, abs=1e-12)
    best = turn_angle_deg(reference, rest)
    for other in np.linspace(-180, 180, 721):           # no other turn gets nearer
        assert turn_angle_deg(reference, turn_in_plane(rotation, -other)) >= best - 1e-6
    assert best <= turn_angle_deg(reference, rotation) + 1e-9


def test_split_in_plane_of_a_rolled_frontal_face_is_its_roll():
    theta, rest = split_in_plane(euler_to_matrix(0, 0, 25), euler_to_matrix(0, 0, 0))
    assert theta == pytest.approx(-25) and rest == pytest.approx(np.eye(3) @ euler_to_matrix(
        0, 0, 0), abs=1e-12)


def test_mirror_poses_is_mirror_pose_over_arrays_and_keeps_the_dtype():
    poses = np.array([[20, -5, 3], [-40, 10, -12]], np.float32)
    mirrored = mirror_poses(poses)
    assert mirrored.dtype == np.float32
    assert mirrored.tolist() == [list(mirror_pose(*p).as_tuple()) for p in poses.tolist()]
