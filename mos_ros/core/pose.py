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
``width_deg``; the angle is the softmax expectation sum_k p_k * width * k + offset.
"""
from __future__ import annotations

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
    """Index of the bin an angle (degrees) falls into, clipped to the valid range."""
    index = np.floor((np.asarray(angles, dtype=np.float64) - bins.offset_deg) / bins.width_deg)
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
