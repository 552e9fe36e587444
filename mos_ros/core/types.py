"""Frozen dataclasses that travel between the layers."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadPose:
    """Head orientation as Tait-Bryan angles in degrees (convention: :mod:`mos_ros.core.pose`)."""

    yaw: float
    pitch: float
    roll: float

    def as_tuple(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees."""
        return self.yaw, self.pitch, self.roll


@dataclass(frozen=True)
class Face:
    """One detected face in image pixel coordinates (x right, y down, origin top-left corner).

    ``box`` is (x1, y1, x2, y2); ``landmarks`` is a (5, 2) array: left eye, right eye, nose,
    left mouth corner, right mouth corner, where left/right are the subject's as seen in the
    image from the viewer's side (the RetinaFace order: image-left eye first).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    pose: HeadPose

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.box[3] - self.box[1]

    def to_dict(self) -> dict:
        """Plain JSON-able form (pixels and degrees)."""
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "yaw": round(float(self.pose.yaw), 2),
            "pitch": round(float(self.pose.pitch), 2),
            "roll": round(float(self.pose.roll), 2),
        }


@dataclass(frozen=True)
class RawOutputs:
    """Network outputs for a batch, as every backend returns them (logits, not probabilities).

    Shapes, for B images and N anchors: ``loc`` (B, N, 4), ``conf`` (B, N, 2),
    ``landms`` (B, N, 10), ``yaw``/``pitch``/``roll`` (B, N, bins). Order and names are
    :data:`mos_ros.core.config.OUTPUT_NAMES`.
    """

    loc: np.ndarray
    conf: np.ndarray
    landms: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray

    @classmethod
    def from_sequence(cls, arrays) -> RawOutputs:
        """Build from arrays in :data:`OUTPUT_NAMES` order (as returned by a network)."""
        arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
        if len(arrays) != 6:
            raise ValueError(f"expected 6 network outputs, got {len(arrays)}")
        return cls(*arrays)
