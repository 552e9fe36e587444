"""Whole-scene in-plane rotation: a composed scene and its labels turned together.

A camera held at a slant turns everything in the picture - faces, necks, shoulders, the room -
by the same angle. Turning the finished scene teaches exactly that: each face's box,
landmarks and pose label go through the one rotation of :func:`mos_ros.core.pose.
rotate_in_plane` (OpenCV sign: theta > 0 turns the picture counter-clockwise on screen, so a
frontal face's roll changes by -theta). Most turns stay within ``common_deg``; a share reaches
``max_deg``. A face whose turned box leaves the picture is dropped; a pose that leaves the
range of the network's pose bins loses its pose label (the face is still a face).
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from mos_ros.core.config import PoseBins
from mos_ros.core.labels import FaceLabels
from mos_ros.core.pose import bin_centres, in_plane_matrix, rotate_in_plane


def sample_turn(rng: np.random.Generator, common_deg: float, max_deg: float,
                wide_share: float) -> float:
    """A turn in degrees: uniform within +-``common_deg``, or with probability ``wide_share``
    uniform in magnitude between ``common_deg`` and ``max_deg`` (either sign)."""
    if rng.random() < wide_share and max_deg > common_deg:
        return float(rng.choice([-1.0, 1.0]) * rng.uniform(common_deg, max_deg))
    return float(rng.uniform(-common_deg, common_deg))


def visible_fraction(box: np.ndarray, width: int, height: int) -> float:
    """Share of ``box``'s area inside a ``width`` x ``height`` picture."""
    box = np.asarray(box, np.float64)
    inside = np.clip(box.reshape(2, 2), 0, [width, height])
    area = max(float(np.prod(box[2:] - box[:2])), 1e-6)
    return float(np.prod(np.clip(inside[1] - inside[0], 0, None))) / area


def rotate_scene(image: np.ndarray, labels: FaceLabels, theta_deg: float,
                 outlines: Sequence[np.ndarray | None] | None = None,
                 min_visible: float = 0.5, bins: PoseBins = PoseBins()
                 ) -> tuple[np.ndarray, FaceLabels]:
    """``image`` turned by ``theta_deg`` about its centre (same size; the corners it uncovers
    repeat the edge pixels, so no unlabelled face copy appears) and its labels turned alike.

    ``outlines[i]`` are face ``i``'s mesh points where known (their turned extent is its box);
    other boxes are turned as their inscribed ellipse (:func:`mos_ros.core.pose.rotated_box`).
    """
    height, width = image.shape[:2]
    centre = (width / 2.0, height / 2.0)
    turned = cv2.warpAffine(image, in_plane_matrix(theta_deg, centre), (width, height),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    moved = rotate_in_plane(theta_deg, centre, labels.boxes, labels.landmarks, labels.poses,
                            list(outlines) if outlines is not None else None)
    centres = bin_centres(bins)
    in_range = np.all((moved.poses >= centres[0]) & (moved.poses <= centres[-1]), axis=1)
    landmarks = np.where(labels.has_landmarks[:, None, None], moved.landmarks, 0.0)
    poses = np.where((in_range & labels.has_pose)[:, None], moved.poses, 0.0)
    rotated = FaceLabels(moved.boxes.astype(np.float32), landmarks.astype(np.float32),
                         poses.astype(np.float32), labels.has_landmarks.copy(),
                         labels.has_pose & in_range)
    keep = np.array([visible_fraction(box, width, height) >= min_visible
                     for box in rotated.boxes], bool)
    return turned, rotated.select(keep)
