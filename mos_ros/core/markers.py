"""Placing a face's head axes in 3D for visualisation: camera intrinsics, depth, axis arrows.

Faces placed in 3-D by :mod:`mos_ros.core.head3d` (with a camera calibration) get their arrows
at the placed head. Otherwise a face's distance is estimated from its box width in pixels and
the mean face width of :mod:`mos_ros.core.head3d`, with intrinsics from a calibration's K or a
default horizontal field of view (:data:`DEFAULT_HFOV_DEG`) with square pixels and the
principal point at the image centre. All positions are in the camera's optical frame
(x right, y down, z forward, metres); pixel coordinates have their origin at the top-left
corner of the top-left pixel. Quaternions are (x, y, z, w).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mos_ros.core.camera import PinholeCamera
from mos_ros.core.head3d import MEAN_FACE_WIDTH_M, Head3D
from mos_ros.core.pose import euler_to_matrix, matrix_to_quaternion, quaternion_to_matrix
from mos_ros.core.types import Face

#: Horizontal field of view assumed when no calibration is known, degrees (a typical webcam
#: or robot head camera has 55-70 degrees).
DEFAULT_HFOV_DEG = 60.0
#: Open interval of meaningful fields of view, degrees.
HFOV_LIMITS_DEG = (0.0, 180.0)
#: Arrow shaft diameter, head diameter and head length, as fractions of the arrow length.
ARROW_SHAFT_RATIO = 0.08
ARROW_HEAD_RATIO = 0.16
ARROW_HEAD_LENGTH_RATIO = 0.25
#: RGBA colours of the head x (gaze), y (left ear) and z (up) axes: red, green, blue.
AXIS_RGBA = ((1.0, 0.0, 0.0, 1.0), (0.0, 0.8, 0.0, 1.0), (0.0, 0.0, 1.0, 1.0))
#: Rotations taking an arrow's +x (the direction an rviz ARROW points) onto each body axis:
#: identity for x, +90 degrees about z for y, -90 degrees about y for z.
ARROW_TO_AXIS = (np.eye(3),
                 np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
                 np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))


#: The pinhole camera of :mod:`mos_ros.core.camera`, under the name this module has always used.
Intrinsics = PinholeCamera


def intrinsics_from_hfov(width: int, height: int,
                         hfov_deg: float = DEFAULT_HFOV_DEG) -> Intrinsics:
    """Intrinsics of an ideal camera: square pixels, centred principal point, given HFOV."""
    low, high = HFOV_LIMITS_DEG
    if not low < hfov_deg < high:
        raise ValueError(f"horizontal field of view must be in ({low}, {high}) degrees, "
                         f"got {hfov_deg}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    focal = (width / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
    return Intrinsics(float(focal), float(focal), width / 2.0, height / 2.0)


def intrinsics_from_k(k: Sequence[float], calibrated_size: tuple[int, int],
                      image_size: tuple[int, int]) -> Intrinsics | None:
    """Intrinsics from a row-major K (CameraInfo.k), rescaled to ``image_size`` (w, h).

    Returns ``None`` when K is unusable (an uncalibrated camera sends zeros) or the
    calibrated size is unknown, so the caller can fall back to :func:`intrinsics_from_hfov`.
    """
    k = np.asarray(k, dtype=np.float64).reshape(-1)
    cal_w, cal_h = calibrated_size
    if k.size != 9 or k[0] <= 0.0 or k[4] <= 0.0 or cal_w <= 0 or cal_h <= 0:
        return None
    sx, sy = image_size[0] / cal_w, image_size[1] / cal_h
    return Intrinsics(float(k[0] * sx), float(k[4] * sy), float(k[2] * sx), float(k[5] * sy))


def face_distance(face_width_px: float, fx: float,
                  face_width_m: float = MEAN_FACE_WIDTH_M) -> float:
    """Distance along the optical axis of a face ``face_width_px`` wide, metres."""
    if face_width_px <= 0.0:
        raise ValueError(f"face width must be positive, got {face_width_px} px")
    return fx * face_width_m / face_width_px


def back_project(u: float, v: float, depth: float, intrinsics: Intrinsics) -> np.ndarray:
    """3D point (x, y, z) at optical depth ``depth`` seen at pixel (u, v)."""
    return np.array([(u - intrinsics.cx) * depth / intrinsics.fx,
                     (v - intrinsics.cy) * depth / intrinsics.fy, depth])


def project(point: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Pixel (u, v) of a 3D point in front of the camera; inverse of :func:`back_project`."""
    x, y, z = np.asarray(point, dtype=np.float64)
    return np.array([intrinsics.fx * x / z + intrinsics.cx, intrinsics.fy * y / z + intrinsics.cy])


def face_position(face: Face, intrinsics: Intrinsics,
                  face_width_m: float = MEAN_FACE_WIDTH_M) -> np.ndarray:
    """Estimated 3D position of the face's box centre in the camera optical frame, metres."""
    x1, y1, x2, y2 = face.box
    depth = face_distance(face.width, intrinsics.fx, face_width_m)
    return back_project((x1 + x2) / 2.0, (y1 + y2) / 2.0, depth, intrinsics)


@dataclass(frozen=True)
class AxisArrow:
    """One head axis as an arrow: start point, orientation of its +x, length, colour."""

    axis: int
    position: np.ndarray
    orientation: np.ndarray
    length: float
    rgba: tuple[float, float, float, float]

    @property
    def end(self) -> np.ndarray:
        """Tip of the arrow (metres, camera optical frame)."""
        rotation = quaternion_to_matrix(self.orientation)
        return self.position + self.length * rotation[:, 0]

    @property
    def scale(self) -> tuple[float, float, float]:
        """rviz ARROW scale for pose-defined arrows: length, shaft width, head width."""
        return (self.length, self.length * ARROW_SHAFT_RATIO, self.length * ARROW_HEAD_RATIO)


def axis_arrows(origin: np.ndarray, rotation: np.ndarray, length_m: float) -> list[AxisArrow]:
    """Three arrows (head x, y, z) starting at ``origin`` along the columns of ``rotation``
    (R_cam_head); the x arrow's orientation is the head orientation itself."""
    if length_m <= 0.0:
        raise ValueError(f"arrow length must be positive, got {length_m} m")
    origin = np.asarray(origin, dtype=np.float64)
    return [AxisArrow(axis, origin, matrix_to_quaternion(rotation @ to_axis), float(length_m),
                      AXIS_RGBA[axis])
            for axis, to_axis in enumerate(ARROW_TO_AXIS)]


def head_axis_arrows(face: Face, intrinsics: Intrinsics, length_m: float,
                     face_width_m: float = MEAN_FACE_WIDTH_M) -> list[AxisArrow]:
    """Arrows of a face that has no 3-D placement (no camera calibration): at the box centre
    at the distance the box width gives, along :func:`~mos_ros.core.pose.euler_to_matrix`.
    A face without width (a degenerate box) cannot be placed and gives no arrows.
    """
    if length_m <= 0.0:
        raise ValueError(f"arrow length must be positive, got {length_m} m")
    if face.width <= 0.0:
        return []
    rotation = euler_to_matrix(face.pose.yaw, face.pose.pitch, face.pose.roll)
    return axis_arrows(face_position(face, intrinsics, face_width_m), rotation, length_m)


def placed_head_arrows(head: Head3D, length_m: float) -> list[AxisArrow]:
    """Arrows of a head placed in 3-D (:mod:`mos_ros.core.head3d`): at its sellion, along its
    orientation, so markers and the published poses agree."""
    return axis_arrows(np.asarray(head.position), quaternion_to_matrix(head.orientation),
                       length_m)
