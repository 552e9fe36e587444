"""Labels of the faces in one image, as training and evaluation exchange them.

Coordinates are pixels (x right, y down, origin at the top-left corner of the top-left
pixel); landmarks follow the RetinaFace order and poses the convention of
:mod:`mos_ros.core.pose`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mos_ros.core.types import Face

#: Landmark order after a horizontal mirror: the eyes swap and so do the mouth corners.
MIRRORED_LANDMARK_ORDER = (1, 0, 2, 4, 3)


@dataclass(frozen=True)
class FaceLabels:
    """Per-face labels of one image; M faces.

    ``boxes`` (M, 4) x1y1x2y2 pixels; ``landmarks`` (M, 5, 2) pixels in the RetinaFace order;
    ``poses`` (M, 3) yaw, pitch, roll degrees (:mod:`mos_ros.core.pose`); ``has_landmarks`` and
    ``has_pose`` (M,) say which faces carry those labels (others are masked in the loss).
    """

    boxes: np.ndarray
    landmarks: np.ndarray
    poses: np.ndarray
    has_landmarks: np.ndarray
    has_pose: np.ndarray

    @classmethod
    def complete(cls, boxes, landmarks, poses) -> FaceLabels:
        """Labels where every face has landmarks and a pose (the synthetic case)."""
        count = len(boxes)
        return cls(np.asarray(boxes, np.float32).reshape(count, 4),
                   np.asarray(landmarks, np.float32).reshape(count, 5, 2),
                   np.asarray(poses, np.float32).reshape(count, 3),
                   np.ones(count, bool), np.ones(count, bool))

    def __len__(self) -> int:
        """Number of faces."""
        return len(self.boxes)

    def select(self, keep: np.ndarray) -> FaceLabels:
        """The faces where ``keep`` (bool mask or indices) selects them."""
        return FaceLabels(self.boxes[keep], self.landmarks[keep], self.poses[keep],
                          self.has_landmarks[keep], self.has_pose[keep])


@dataclass(frozen=True)
class LabelledFace:
    """One face in image pixels, as a label, a detection or a teacher's answer.

    ``box`` (4,) x1 y1 x2 y2; ``landmarks`` (5, 2) in the RetinaFace order and ``pose``
    (yaw, pitch, roll degrees) are None where the source gave none; ``score`` is 1 for a
    ground-truth face; ``source`` names who found it (a teacher), empty otherwise.
    """

    box: np.ndarray
    landmarks: np.ndarray | None = None
    pose: tuple[float, float, float] | None = None
    score: float = 1.0
    source: str = ""

    @classmethod
    def from_face(cls, face: Face) -> LabelledFace:
        """A detector's :class:`~mos_ros.core.types.Face` (float64 arrays)."""
        return cls(np.asarray(face.box, np.float64), np.asarray(face.landmarks, np.float64),
                   (face.pose.yaw, face.pose.pitch, face.pose.roll), face.score)

    @property
    def long_side(self) -> float:
        """The box's longer side in pixels."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    def scaled(self, factor: float | np.ndarray) -> LabelledFace:
        """The same face in an image resized by ``factor`` (a number, or x and y factors
        repeated for the box's two corners); the pose does not change."""
        factor = np.asarray(factor, np.float64)
        point_factor = factor[:2] if factor.ndim else factor
        points = None if self.landmarks is None else self.landmarks * point_factor
        return LabelledFace(self.box * factor, points, self.pose, self.score, self.source)

    def moved(self, offset: Sequence[float]) -> LabelledFace:
        """The same face shifted by ``offset`` (x, y) pixels."""
        shift = np.asarray(offset, np.float64)
        points = None if self.landmarks is None else self.landmarks + shift
        return LabelledFace(self.box + np.tile(shift, 2), points, self.pose, self.score,
                            self.source)

    def to_dict(self) -> dict:
        """The label as JSON-able data (pixels, degrees; None where absent)."""
        return {"box": [float(v) for v in self.box],
                "landmarks": None if self.landmarks is None else self.landmarks.tolist(),
                "pose": None if self.pose is None else [float(v) for v in self.pose]}

    @classmethod
    def from_dict(cls, data: Mapping) -> LabelledFace:
        """Inverse of :meth:`to_dict`."""
        points = data.get("landmarks")
        pose = data.get("pose")
        return cls(np.asarray(data["box"], np.float64).reshape(4),
                   None if points is None else np.asarray(points, np.float64).reshape(5, 2),
                   None if pose is None else tuple(float(v) for v in pose))
