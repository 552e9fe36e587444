"""Head pose: bins to angles, and yaw/pitch/roll <-> rotation matrix <-> quaternion.

Convention (written once, used everywhere)
------------------------------------------
Angles are in degrees. The reference frame is the camera's optical frame (REP 103:
x right, y down, z forward into the scene). The head frame follows REP 103 body axes:
x out of the face along the gaze, y towards the subject's left ear, z up out of the crown.

    R_cam_head = Rx(-pitch) @ Ry(yaw) @ Rz(roll) @ M

where Rx, Ry, Rz are right-handed rotations about the camera axes and M maps the head's body
axes to the camera axes of a frontal face (x_head = -z_cam, y_head = +x_cam, z_head = -y_cam).
So for a face looking straight into the camera all angles are 0 and, seen in the image:

* yaw > 0: the face turns towards the image's left (the subject's right);
* pitch > 0: the face tilts up;
* roll > 0: the face rotates clockwise in the image.

These are the signs of the common head-pose data sets and of the axes drawn by Hopenet-style
visualisers (nose axis projected to (-sin yaw, -sin pitch cos yaw) in image x/y).
Quaternions are (x, y, z, w), the geometry_msgs order.

Bins: the network predicts, per angle, logits over ``PoseBins.num_bins`` bins of
``width_deg``; the angle is the softmax expectation sum_k p_k * (width * k + offset). Bin k
stands for the angle width * k + offset, and training teaches an angle as the bin that stands
nearest to it (:func:`degrees_to_bins`), so that the classification and the expectation agree.
(Teaching the bin whose lower edge lies below the angle, as Hopenet-style training does, pulls
the expectation half a bin low: a face and its mirror image then read yaw and roll half a
bin apart in opposite directions.)

Image transforms and the pose label
-----------------------------------
An in-plane rotation of the image by theta degrees follows OpenCV's sign
(``cv2.getRotationMatrix2D``): theta > 0 turns the picture counter-clockwise on screen. Seen
from the camera that is a rotation about the optical axis by -theta, so the head becomes
``Rz(-theta) @ R_cam_head`` (:func:`rotate_pose`): a frontal face's roll changes by exactly
-theta, and a turned face's yaw and pitch trade places as its nose axis turns with the
picture. A left-right mirror negates yaw and roll and keeps pitch (:func:`mirror_pose`).
:func:`rotate_in_plane` moves boxes, landmarks and poses through one rotation together.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mos_ros.core.config import PoseBins
from mos_ros.core.types import HeadPose

#: Head body axes (columns: x forward, y left, z up) expressed in a frontal face's camera axes.
HEAD_AXES_IN_CAMERA = np.array([[0.0, 1.0, 0.0],
                                [0.0, 0.0, -1.0],
                                [-1.0, 0.0, 0.0]])


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    shifted = logits - np.max(logits, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=axis, keepdims=True)


def bin_centres(bins: PoseBins) -> np.ndarray:
    """Angle (degrees) that each bin index stands for in the expectation."""
    return np.arange(bins.num_bins, dtype=np.float64) * bins.width_deg + bins.offset_deg


def bins_to_degrees(logits: np.ndarray, bins: PoseBins) -> np.ndarray:
    """Expected angle in degrees from bin logits of shape (..., num_bins)."""
    if logits.shape[-1] != bins.num_bins:
        raise ValueError(f"expected {bins.num_bins} pose bins, got {logits.shape[-1]}")
    return softmax(np.asarray(logits, dtype=np.float64)) @ bin_centres(bins)


def degrees_to_bins(angles: np.ndarray, bins: PoseBins) -> np.ndarray:
    """Index of the bin whose angle (:func:`bin_centres`) is nearest to each angle (degrees),
    clipped to the valid range: the classification target that agrees with the expectation."""
    index = np.floor((np.asarray(angles, dtype=np.float64) - bins.offset_deg) / bins.width_deg
                     + 0.5)
    return np.clip(index, 0, bins.num_bins - 1).astype(np.int64)


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def euler_to_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation R_cam_head (3x3) for angles in degrees; see the module docstring."""
    y, p, r = np.radians([yaw, pitch, roll])
    return _rot_x(-p) @ _rot_y(y) @ _rot_z(r) @ HEAD_AXES_IN_CAMERA


def matrix_to_euler(rotation: np.ndarray) -> HeadPose:
    """Angles in degrees of a rotation R_cam_head; inverse of :func:`euler_to_matrix`.

    At |yaw| = 90 degrees pitch and roll are not separable; roll is then reported as 0.
    """
    a = np.asarray(rotation, dtype=np.float64) @ HEAD_AXES_IN_CAMERA.T
    sin_yaw = np.clip(a[0, 2], -1.0, 1.0)
    yaw = np.arcsin(sin_yaw)
    if abs(sin_yaw) < 1.0 - 1e-9:
        minus_pitch = np.arctan2(-a[1, 2], a[2, 2])
        roll = np.arctan2(-a[0, 1], a[0, 0])
    else:
        minus_pitch = np.arctan2(a[2, 1], a[1, 1])
        roll = 0.0
    return HeadPose(yaw=float(np.degrees(yaw)), pitch=float(-np.degrees(minus_pitch)),
                    roll=float(np.degrees(roll)))


def matrix_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 for a 3x3 rotation matrix."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    candidates = np.array([trace, m[0, 0], m[1, 1], m[2, 2]])
    k = int(np.argmax(candidates))
    if k == 0:
        w = np.sqrt(1.0 + trace) / 2.0
        q = np.array([(m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w),
                      (m[1, 0] - m[0, 1]) / (4 * w), w])
    else:
        i, j, n = k - 1, k % 3, (k + 1) % 3
        s = np.sqrt(1.0 + m[i, i] - m[j, j] - m[n, n]) * 2.0
        q = np.zeros(4)
        q[i] = s / 4.0
        q[j] = (m[j, i] + m[i, j]) / s
        q[n] = (m[n, i] + m[i, n]) / s
        q[3] = (m[n, j] - m[j, n]) / s
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def quaternion_to_matrix(quaternion) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (x, y, z, w); it need not be normalised."""
    x, y, z, w = np.asarray(quaternion, dtype=np.float64) / np.linalg.norm(quaternion)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def euler_to_quaternion(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Quaternion (x, y, z, w) of the head in the camera optical frame."""
    return matrix_to_quaternion(euler_to_matrix(yaw, pitch, roll))


def quaternion_to_euler(quaternion) -> HeadPose:
    """Yaw, pitch, roll in degrees of a head quaternion (x, y, z, w)."""
    return matrix_to_euler(quaternion_to_matrix(quaternion))


# --------------------------------------------------------------------------------------------
# Image transforms and what they do to the labels


def rotate_pose(yaw: float, pitch: float, roll: float, theta_deg: float) -> HeadPose:
    """Pose of a head after the image is rotated by ``theta_deg`` (OpenCV sign, see the module
    docstring): ``Rz(-theta) @ R_cam_head``, so a frontal face's roll changes by -theta."""
    return matrix_to_euler(turn_in_plane(euler_to_matrix(yaw, pitch, roll), theta_deg))


#: Signs of (yaw, pitch, roll) in the left-right mirrored image (:func:`mirror_pose`).
MIRROR_POSE_SIGNS = np.array([-1.0, 1.0, -1.0])


def mirror_poses(poses: np.ndarray) -> np.ndarray:
    """Poses (..., 3: yaw, pitch, roll) in the left-right mirrored image, same dtype."""
    poses = np.asarray(poses)
    return poses * MIRROR_POSE_SIGNS.astype(poses.dtype)


def mirror_pose(yaw: float, pitch: float, roll: float) -> HeadPose:
    """Pose of a head in the left-right mirrored image: yaw and roll change sign, pitch stays.

    Exact in this convention: the mirror diag(-1, 1, 1) conjugates Rx to itself and Ry, Rz to
    their inverses, and maps the head axes of a frontal face onto themselves (left/right
    swapped with the subject's sides)."""
    return HeadPose(yaw=-float(yaw), pitch=float(pitch), roll=-float(roll))


def in_plane_matrix(theta_deg: float, centre: tuple[float, float]) -> np.ndarray:
    """The 2x3 affine map (pixels to pixels) of a rotation by ``theta_deg`` about ``centre``,
    OpenCV's sign: theta > 0 turns the picture counter-clockwise on screen."""
    return cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(theta_deg), 1.0)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points (..., 2) through a 2x3 affine ``matrix``."""
    points = np.asarray(points, np.float64)
    return points @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix)[:, 2]


def rotated_box(box: np.ndarray, matrix: np.ndarray, points: np.ndarray | None = None
                ) -> np.ndarray:
    """The axis-aligned box (x1, y1, x2, y2) of a face after a rotation ``matrix``.

    With the face's outline ``points`` (the 468 mesh points whose extent IS the box, in the
    project's box convention) the box is their rotated extent, exact. Without them the face is
    taken as the ellipse inscribed in ``box``: its rotated extent is tight for a face outline,
    where the rotated corners would grow the box by up to 41 %.
    """
    if points is not None:
        moved = transform_points(np.reshape(points, (-1, 2)), matrix)
        return np.concatenate([moved.min(axis=0), moved.max(axis=0)])
    box = np.asarray(box, np.float64)
    centre = transform_points((box[:2] + box[2:]) / 2, matrix)
    half = (box[2:] - box[:2]) / 2
    linear = np.abs(np.asarray(matrix, np.float64)[:, :2])
    reach = np.sqrt((linear ** 2) @ (half ** 2))
    return np.concatenate([centre - reach, centre + reach])


@dataclass(frozen=True)
class FaceGeometry:
    """Labels of M faces in image pixels and degrees: ``boxes`` (M, 4), ``landmarks``
    (M, 5, 2), ``poses`` (M, 3) yaw, pitch, roll."""

    boxes: np.ndarray
    landmarks: np.ndarray
    poses: np.ndarray


def rotate_in_plane(theta_deg: float, centre: tuple[float, float], boxes: np.ndarray,
                    landmarks: np.ndarray, poses: np.ndarray,
                    outlines: list[np.ndarray | None] | None = None) -> FaceGeometry:
    """Boxes, landmarks and poses of faces in an image rotated by ``theta_deg`` about
    ``centre`` (OpenCV sign; the image itself goes through ``cv2.warpAffine`` with
    :func:`in_plane_matrix`), all through the one rotation.

    Landmarks keep their identity (the first eye stays the same eye). ``outlines[i]``, where
    given, are face ``i``'s mesh points, whose rotated extent is its box (see
    :func:`rotated_box`).
    """
    matrix = in_plane_matrix(theta_deg, centre)
    boxes = np.reshape(np.asarray(boxes, np.float64), (-1, 4))
    outlines = outlines if outlines is not None else [None] * len(boxes)
    if len(outlines) != len(boxes):
        raise ValueError(f"{len(outlines)} outlines for {len(boxes)} faces")
    rotated = [rotated_box(box, matrix, points) for box, points in zip(boxes, outlines)]
    poses = [rotate_pose(*pose, theta_deg).as_tuple()
             for pose in np.reshape(np.asarray(poses, np.float64), (-1, 3))]
    return FaceGeometry(np.reshape(rotated, (-1, 4)),
                        transform_points(np.reshape(landmarks, (-1, 5, 2)), matrix),
                        np.reshape(poses, (-1, 3)))


def expanded_rotation(theta_deg: float, width: int, height: int
                      ) -> tuple[np.ndarray, tuple[int, int]]:
    """The rotation by ``theta_deg`` about the image centre, shifted so the whole picture stays
    in view, and the (width, height) of the canvas that holds it."""
    matrix = in_plane_matrix(theta_deg, (width / 2.0, height / 2.0))
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(np.ceil(width * cos + height * sin)), int(np.ceil(width * sin + height * cos)))
    matrix[:, 2] += np.array(size) / 2.0 - np.array([width, height]) / 2.0
    return matrix, size


def split_in_plane(rotation: np.ndarray, reference: np.ndarray) -> tuple[float, np.ndarray]:
    """Split a head rotation into an image turn and the rest: ``(theta, rest)`` with
    ``rotation = Rz(-theta) @ rest`` (``rest`` seen in the picture turned by ``theta``, OpenCV
    sign, is ``rotation``), theta chosen so that ``rest`` is as near ``reference`` as any
    such split can be (the smallest turn angle between them)."""
    a = np.asarray(rotation, np.float64) @ np.asarray(reference, np.float64).T
    psi = np.arctan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])
    return float(-np.degrees(psi)), _rot_z(-psi) @ np.asarray(rotation, np.float64)


def turn_in_plane(rotation: np.ndarray, theta_deg: float) -> np.ndarray:
    """The head rotation seen in the picture turned by ``theta_deg`` (OpenCV sign):
    ``Rz(-theta) @ rotation``; :func:`rotate_pose` in matrix form."""
    return _rot_z(np.radians(-theta_deg)) @ np.asarray(rotation, np.float64)
