"""Anchor matching and per-anchor regression/classification targets (RetinaFace scheme).

An anchor is positive when its IoU with some face is at least ``positive_iou`` (it takes the
face it overlaps most); every face additionally claims its single best anchor, so no face is
left without a positive, unless even that anchor overlaps it less than ``min_best_iou`` (a
face far smaller than the smallest anchor). Everything else is background. Targets are
encoded with :mod:`mos_ros.core.codec`, pose bins with :func:`mos_ros.core.pose.degrees_to_bins`.
This runs in numpy inside the data-loading workers so the accelerator only runs the network.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mos_ros.core.codec import decode_boxes, encode_boxes, encode_landmarks
from mos_ros.core.config import PoseBins, PriorConfig
from mos_ros.core.labels import FaceLabels
from mos_ros.core.nms import iou_matrix
from mos_ros.core.pose import degrees_to_bins
from mos_ros.core.validation import Rule, Validated

BACKGROUND = -1
NUM_LANDMARK_VALUES = 10
NUM_ANGLES = 3


@dataclass(frozen=True)
class MatchConfig(Validated):
    """IoU thresholds of anchor matching."""

    positive_iou: float = 0.35
    min_best_iou: float = 0.2

    def rules(self) -> list[Rule]:
        """IoU thresholds lie in [0, 1]."""
        return [(name, 0.0 <= getattr(self, name) <= 1.0, "in [0, 1]")
                for name in ("positive_iou", "min_best_iou")]


@dataclass(frozen=True)
class AnchorTargets:
    """Targets of one image for N anchors (arrays stack into a batch in the data loader).

    ``labels`` 1 face / 0 background; ``loc`` (N, 4) and ``landmarks`` (N, 10) encoded
    regression targets (zero where unused); ``landmark_mask`` / ``pose_mask`` are true only for
    positives whose face has that label; ``pose_bins`` (N, 3) int and ``pose_degrees`` (N, 3)
    are yaw, pitch, roll.
    """

    labels: np.ndarray
    loc: np.ndarray
    landmarks: np.ndarray
    landmark_mask: np.ndarray
    pose_bins: np.ndarray
    pose_degrees: np.ndarray
    pose_mask: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        """Field name -> array, for collation into tensors."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def anchor_corners(anchors: np.ndarray, priors: PriorConfig) -> np.ndarray:
    """Centre-form anchors as x1y1x2y2: the box a zero regression decodes to."""
    return decode_boxes(np.zeros_like(anchors), anchors, priors.variances)


def match_anchors(boxes: np.ndarray, anchor_boxes: np.ndarray,
                  config: MatchConfig = MatchConfig()) -> np.ndarray:
    """Face index matched to each anchor, or :data:`BACKGROUND`.

    ``boxes`` (M, 4) and ``anchor_boxes`` (N, 4) are x1y1x2y2 in the same units.
    """
    matched = np.full(len(anchor_boxes), BACKGROUND, dtype=np.int64)
    if len(boxes) == 0:
        return matched
    overlaps = iou_matrix(boxes, anchor_boxes)
    best_face = overlaps.argmax(axis=0)
    best_face_iou = overlaps[best_face, np.arange(len(anchor_boxes))]
    confident = best_face_iou >= config.positive_iou
    matched[confident] = best_face[confident]
    best_anchor = overlaps.argmax(axis=1)
    best_anchor_iou = overlaps[np.arange(len(boxes)), best_anchor]
    for face in np.flatnonzero(best_anchor_iou >= config.min_best_iou):
        matched[best_anchor[face]] = face
    return matched


def build_targets(labels: FaceLabels, image_size: tuple[int, int], anchors: np.ndarray,
                  priors: PriorConfig, pose_bins: PoseBins,
                  config: MatchConfig = MatchConfig()) -> AnchorTargets:
    """Match the faces of one image (pixel labels, ``image_size`` = (height, width))."""
    height, width = image_size
    scale = np.array([width, height], dtype=np.float32)
    boxes = labels.boxes / np.tile(scale, 2)
    count = len(anchors)
    matched = match_anchors(boxes, anchor_corners(anchors, priors), config)
    positive = np.flatnonzero(matched != BACKGROUND)
    faces = matched[positive]

    loc = np.zeros((count, 4), np.float32)
    landmarks = np.zeros((count, NUM_LANDMARK_VALUES), np.float32)
    pose_bin_targets = np.zeros((count, NUM_ANGLES), np.int64)
    pose_degrees = np.zeros((count, NUM_ANGLES), np.float32)
    landmark_mask = np.zeros(count, bool)
    pose_mask = np.zeros(count, bool)
    if positive.size:
        loc[positive] = encode_boxes(boxes[faces], anchors[positive], priors.variances)
        with_points = labels.has_landmarks[faces]
        points = (labels.landmarks[faces[with_points]] / scale).reshape(-1, NUM_LANDMARK_VALUES)
        landmarks[positive[with_points]] = encode_landmarks(
            points, anchors[positive[with_points]], priors.variances)
        landmark_mask[positive[with_points]] = True
        with_pose = labels.has_pose[faces]
        angles = labels.poses[faces[with_pose]]
        pose_degrees[positive[with_pose]] = angles
        pose_bin_targets[positive[with_pose]] = degrees_to_bins(angles, pose_bins)
        pose_mask[positive[with_pose]] = True
    classes = np.zeros(count, np.int64)
    classes[positive] = 1
    return AnchorTargets(labels=classes, loc=loc, landmarks=landmarks,
                         landmark_mask=landmark_mask, pose_bins=pose_bin_targets,
                         pose_degrees=pose_degrees, pose_mask=pose_mask)
