"""Labels of the faces in one image, as training and evaluation exchange them.

Coordinates are pixels (x right, y down, origin at the top-left corner of the top-left
pixel); landmarks follow the RetinaFace order and poses the convention of
:mod:`mos_ros.core.pose`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
