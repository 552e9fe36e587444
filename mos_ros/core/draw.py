"""Drawing faces (box, landmarks, head-pose axes) onto a BGR image for people to look at."""
from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from mos_ros.core.pose import euler_to_matrix
from mos_ros.core.types import Face

#: BGR colours of the head axes: x (gaze) red, y (subject's left) green, z (up) blue.
AXIS_COLOURS = ((0, 0, 255), (0, 200, 0), (255, 0, 0))
LANDMARK_COLOURS = ((255, 255, 0), (0, 255, 255), (255, 0, 255), (0, 255, 0), (0, 128, 255))
BOX_COLOUR = (0, 220, 0)


def pose_axes_2d(face: Face, length: float | None = None) -> np.ndarray:
    """Image end points (3, 2) of the head's x/y/z axes drawn from the nose tip.

    Orthographic projection of the rotation's columns: the axes' camera x/y components.
    """
    length = 0.6 * max(face.width, face.height) if length is None else length
    rotation = euler_to_matrix(face.pose.yaw, face.pose.pitch, face.pose.roll)
    origin = face.landmarks[2].astype(np.float64)
    return origin + length * rotation[:2, :].T


def draw_faces(image: np.ndarray, faces: Iterable[Face], *, draw_pose: bool = True,
               draw_text: bool = True) -> np.ndarray:
    """Return a copy of ``image`` with every face drawn on it."""
    canvas = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 500))
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOUR, thickness)
        for (x, y), colour in zip(face.landmarks, LANDMARK_COLOURS):
            cv2.circle(canvas, (int(round(x)), int(round(y))), thickness + 1, colour, -1)
        if draw_pose:
            origin = tuple(int(round(v)) for v in face.landmarks[2])
            for end, colour in zip(pose_axes_2d(face), AXIS_COLOURS):
                cv2.line(canvas, origin, tuple(int(round(v)) for v in end), colour, thickness)
        if draw_text:
            label = (f"{face.score:.2f} y{face.pose.yaw:+.0f} p{face.pose.pitch:+.0f} "
                     f"r{face.pose.roll:+.0f}")
            cv2.putText(canvas, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.4 * thickness, BOX_COLOUR, thickness, cv2.LINE_AA)
    return canvas
