"""ROS4HRI (REP-155) faces: the id, region, landmarks and face images of a tracked face.

REP-155 gives every tracked face a string id and publishes what is known of it under that id:
its region of interest and landmarks normalised by the image size (both in [0, 1]), a face
image ("cropped": the box scaled to fit the face image size, centred, black around it) and an
aligned one (the eyes level). Here the aligned image is the five-point alignment of
:mod:`mos_ros.core.align`, its template fitted into the face image size. This module holds that
geometry, numpy and OpenCV only; ``mos_ros.ros.hri`` turns it into ``hri_msgs`` messages and
the head frames are :mod:`mos_ros.core.head3d`'s.
"""
from __future__ import annotations

import random
import string
from dataclasses import dataclass

import numpy as np

from mos_ros.core.align import similarity_transform, template_in, warp
from mos_ros.core.validation import Rule, Validated, setting

#: Largest side of the face images offered (the REP's default is 128).
MAX_FACE_SIDE = 4096
#: Letters of the per-session part of a face id.
SESSION_LETTERS = 4


@dataclass(frozen=True)
class HriConfig(Validated):
    """Whether faces are published the REP-155 way, and the size of their face images."""

    enabled: bool = setting(True, "Publish the tracked faces the ROS4HRI (REP-155) way: "
                            "humans/faces/tracked and, per face, humans/faces/<id>/roi, "
                            "landmarks, cropped and aligned")
    face_width: int = setting(128, "Width of the cropped and aligned face images, pixels "
                              "(REP-155's /humans/faces/width)", (1, MAX_FACE_SIDE))
    face_height: int = setting(128, "Height of the cropped and aligned face images, pixels "
                               "(REP-155's /humans/faces/height)", (1, MAX_FACE_SIDE))

    def rules(self) -> list[Rule]:
        """Allowed values of each field."""
        return [(name, 1 <= getattr(self, name) <= MAX_FACE_SIDE, f"in [1, {MAX_FACE_SIDE}]")
                for name in ("face_width", "face_height")]


class FaceIds:
    """REP-155 face ids of track ids: a per-session prefix of lower-case letters, then the
    track id ("kqzd12"). Track ids are never reused by a tracker, and a new selector (a new
    process, a lifecycle clean-up) draws a new prefix, so an id names one track only; it
    starts with a letter, as a ROS name token must."""

    def __init__(self, session: str | None = None) -> None:
        """Use ``session`` as the prefix (default: random letters)."""
        self.session = session or "".join(random.SystemRandom().choices(
            string.ascii_lowercase, k=SESSION_LETTERS))

    def __call__(self, track_id: int) -> str:
        """The face id of ``track_id``."""
        return f"{self.session}{int(track_id)}"


def normalized_box(box, width: int, height: int) -> tuple[float, float, float, float]:
    """``box`` (x1, y1, x2, y2 in pixels) as (xmin, ymin, xmax, ymax) divided by the image
    size and clipped to [0, 1], as REP-155's regions are."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    return tuple(float(v) for v in np.clip(np.asarray(box, np.float64) / scale, 0.0, 1.0))


def normalized_points(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 2) pixel points divided by the image size and clipped to [0, 1]."""
    scale = np.array([width, height], dtype=np.float64)
    return np.clip(np.asarray(points, np.float64).reshape(-1, 2) / scale, 0.0, 1.0)


def cropped_face(image_bgr: np.ndarray, box, width: int, height: int) -> np.ndarray:
    """The face box of ``image_bgr`` scaled to fit a ``width`` x ``height`` image, centred,
    black around it and where the box leaves the image (BGR uint8)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    scale = min(width / (x2 - x1), height / (y2 - y1))
    matrix = np.array([[scale, 0.0, width / 2.0 - scale * (x1 + x2) / 2.0],
                       [0.0, scale, height / 2.0 - scale * (y1 + y2) / 2.0]])
    crop = warp(image_bgr, matrix, width, height)
    left, right = np.clip(np.rint(scale * np.array([x1, x2]) + matrix[0, 2]), 0, width)
    top, bottom = np.clip(np.rint(scale * np.array([y1, y2]) + matrix[1, 2]), 0, height)
    padded = np.zeros_like(crop)
    padded[int(top):int(bottom), int(left):int(right)] = crop[int(top):int(bottom),
                                                              int(left):int(right)]
    return padded


def aligned_face(image_bgr: np.ndarray, landmarks: np.ndarray, width: int,
                 height: int) -> np.ndarray:
    """The face warped so that its five landmarks fall on the alignment template, fitted into
    a ``width`` x ``height`` image (BGR uint8; for 112 x 112 the crop of
    :func:`mos_ros.core.align.align_face`)."""
    matrix = similarity_transform(landmarks, template_in(width, height))
    return warp(image_bgr, matrix, width, height)
