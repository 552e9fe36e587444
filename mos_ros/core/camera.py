"""Pinhole camera intrinsics: pixels <-> rays in the camera's optical frame.

The optical frame is REP 103's: x right, y down, z forward. A camera is built from the
matrices a ``sensor_msgs/CameraInfo`` carries: K (3x3, the raw image) with its distortion D,
or, where K is empty, P (3x4, the rectified image, no distortion). Lens distortion of the
``plumb_bob`` and ``rational_polynomial`` models is undone with OpenCV, whose coefficient
order those models share.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mos_ros.core.errors import MosError

#: Distortion models whose coefficients OpenCV takes as they are (k1, k2, p1, p2, k3, ...).
OPENCV_DISTORTION_MODELS = ("plumb_bob", "rational_polynomial")


class CameraError(MosError, ValueError):
    """Camera intrinsics that cannot place anything (zero focal length, unknown model)."""


@dataclass(frozen=True)
class PinholeCamera:
    """Focal lengths and principal point in pixels, image size, and lens distortion."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int = 0
    height: int = 0
    distortion: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        """Refuse intrinsics that would divide by zero or point backwards."""
        if not (np.isfinite([self.fx, self.fy, self.cx, self.cy]).all()
                and self.fx > 0 and self.fy > 0):
            raise CameraError(f"camera focal lengths must be positive and finite, got "
                              f"fx={self.fx}, fy={self.fy}, cx={self.cx}, cy={self.cy}")

    @classmethod
    def from_matrices(cls, k: Sequence[float], p: Sequence[float] = (), d: Sequence[float] = (),
                      distortion_model: str = "", width: int = 0, height: int = 0
                      ) -> PinholeCamera:
        """Intrinsics from CameraInfo's row-major K (9), P (12), D and distortion model."""
        k = np.asarray(k, np.float64).reshape(-1)
        p = np.asarray(p, np.float64).reshape(-1)
        if k.size == 9 and k[0] > 0 and k[4] > 0:
            coefficients = tuple(float(c) for c in d)
            if any(coefficients) and distortion_model not in OPENCV_DISTORTION_MODELS:
                raise CameraError(f"distortion model {distortion_model!r} is not supported "
                                  f"(supported: {', '.join(OPENCV_DISTORTION_MODELS)}); "
                                  "use a rectified image and its P")
            return cls(k[0], k[4], k[2], k[5], int(width), int(height),
                       coefficients if any(coefficients) else ())
        if p.size == 12 and p[0] > 0 and p[5] > 0:
            return cls(p[0], p[5], p[2], p[6], int(width), int(height))
        raise CameraError("camera_info has no intrinsics: K and P are both zero "
                          "(is the camera calibrated?)")

    def matrix(self) -> np.ndarray:
        """The 3x3 intrinsic matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled_to(self, width: int, height: int) -> PinholeCamera:
        """The same camera for an image resized to ``width`` x ``height`` (binning, a
        downscaled stream); unchanged when its size is unknown or already that size."""
        if not (self.width and self.height) or (self.width, self.height) == (width, height):
            return self
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5,
                             (self.cy + 0.5) * sy - 0.5, int(width), int(height),
                             self.distortion)

    def normalized(self, pixels: np.ndarray) -> np.ndarray:
        """Undistorted normalised image coordinates (x/z, y/z) of pixels (N, 2)."""
        pixels = np.asarray(pixels, np.float64).reshape(-1, 2)
        if self.distortion:
            points = cv2.undistortPoints(pixels.reshape(-1, 1, 2), self.matrix(),
                                         np.asarray(self.distortion))
            return points.reshape(-1, 2)
        return (pixels - (self.cx, self.cy)) / (self.fx, self.fy)

    def rays(self, pixels: np.ndarray) -> np.ndarray:
        """Unit viewing rays (N, 3) in the optical frame through pixels (N, 2)."""
        xy = self.normalized(pixels)
        rays = np.concatenate([xy, np.ones((len(xy), 1))], axis=1)
        return rays / np.linalg.norm(rays, axis=1, keepdims=True)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) of points (N, 3) in the optical frame (in front of the camera)."""
        points = np.asarray(points, np.float64).reshape(-1, 3)
        if self.distortion:
            pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), self.matrix(),
                                          np.asarray(self.distortion))
            return pixels.reshape(-1, 2)
        xy = points[:, :2] / points[:, 2:3]
        return xy * (self.fx, self.fy) + (self.cx, self.cy)
