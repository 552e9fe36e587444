"""The figures every evaluation shares: detection matching, average precision, pose error, NME.

Validation during training, the model-card scorecard, the real-photo and consistency checks,
hard-image mining and the int8 agreement check all match detections and compute their figures
here, so that a number means the same wherever it is printed. WIDER FACE keeps its official
matching rule (:mod:`mos_ros.evaluate.widerface`) and takes the AP from here. Only numpy.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mos_ros.core.nms import iou_matrix

#: A detection matches a ground-truth face at this IoU or more.
MATCH_IOU = 0.5


def greedy_matches(truth_boxes: np.ndarray, boxes: np.ndarray, scores: Sequence[float],
                   iou: float = MATCH_IOU) -> dict[int, int]:
    """Detection index -> ground-truth index: by falling score (ties in input order), each
    detection takes the free ground-truth face it overlaps most, if that IoU is at least
    ``iou``. Boxes are (n, 4) x1 y1 x2 y2."""
    truth_boxes = np.reshape(np.asarray(truth_boxes, np.float64), (-1, 4))
    boxes = np.reshape(np.asarray(boxes, np.float64), (-1, 4))
    overlap = iou_matrix(boxes, truth_boxes)
    free = np.ones(len(truth_boxes), bool)
    matches: dict[int, int] = {}
    for d in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
        candidates = np.where(free, overlap[d], -1.0)
        if candidates.size and candidates.max() >= iou:
            t = int(np.argmax(candidates))
            matches[int(d)], free[t] = t, False
    return matches


def matched_truth(truth_boxes: np.ndarray, boxes: np.ndarray, scores: Sequence[float],
                  iou: float = MATCH_IOU) -> np.ndarray:
    """Per detection (input order) the index of its matched ground-truth face, or -1."""
    result = np.full(len(scores), -1, np.int64)
    for d, t in greedy_matches(truth_boxes, boxes, scores, iou).items():
        result[d] = t
    return result


def covered_fraction(reference: np.ndarray, candidate: np.ndarray,
                     iou: float = MATCH_IOU) -> tuple[int, int]:
    """(covered, total): how many reference boxes some candidate box overlaps by ``iou``."""
    reference = np.reshape(np.asarray(reference, np.float64), (-1, 4))
    candidate = np.reshape(np.asarray(candidate, np.float64), (-1, 4))
    if not len(reference) or not len(candidate):
        return 0, len(reference)
    return int((iou_matrix(reference, candidate).max(axis=1) >= iou).sum()), len(reference)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP (VOC style): area under the precision envelope.

    Recall is padded with 0 and 1, precision with 0 at both ends; the envelope makes precision
    non-increasing in recall before the area is summed where recall changes.
    """
    recall = np.concatenate([[0.0], recall, [1.0]])
    envelope = np.concatenate([[0.0], precision, [0.0]])
    envelope = np.maximum.accumulate(envelope[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * envelope[steps + 1]))


def pooled_average_precision(scored: Sequence[tuple[float, bool]], faces: int) -> float:
    """AP of (score, is a match) detections pooled over a set holding ``faces`` faces."""
    if not scored or not faces:
        return 0.0
    ordered = sorted(scored, key=lambda item: -item[0])
    true_pos = np.cumsum(np.array([hit for _, hit in ordered], np.float64))
    return average_precision(true_pos / faces, true_pos / np.arange(1, len(ordered) + 1))


def pose_errors(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Absolute (n, 3) yaw/pitch/roll errors in degrees, angles compared as they are."""
    return np.abs(np.asarray(predicted, np.float64) - np.asarray(truth, np.float64))


def mean_pose_errors(errors: Sequence[np.ndarray]) -> np.ndarray:
    """Mean absolute yaw, pitch and roll error (3,) of rows of errors; NaN when none."""
    return np.mean(np.reshape(errors, (-1, 3)), axis=0) if len(errors) else np.full(3, np.nan)


def face_sizes(boxes: np.ndarray) -> np.ndarray:
    """sqrt(w * h) of (n, 4) x1 y1 x2 y2 boxes: the NME normaliser."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))


def point_errors(predicted: np.ndarray, truth: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(n, k) landmark distances divided by each face's size; NaN where truth is missing."""
    return np.linalg.norm(np.asarray(predicted, np.float64) - np.asarray(truth, np.float64),
                          axis=2) / sizes[:, None]


def nme(predicted: np.ndarray, truth: np.ndarray, box: np.ndarray) -> float:
    """Mean landmark error of one face over sqrt(w*h) of its ground-truth box."""
    box = np.reshape(np.asarray(box, np.float64), (1, 4))
    return float(point_errors(np.asarray(predicted)[None], np.asarray(truth)[None],
                              face_sizes(box)).mean())
