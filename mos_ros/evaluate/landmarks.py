"""Landmark accuracy: normalised mean error (NME), its cumulative distribution and AUC.

The error of a point is its distance to the ground truth divided by sqrt(w * h) of the
ground-truth face box (the paper's normalisation). A sample's NME is the mean over its
points; points whose ground truth is NaN (not annotated) are left out. The cumulative error
distribution (CED) gives, for each error x up to a threshold, the fraction of samples with
NME <= x; its AUC is the area under it divided by the threshold (1.0 = every sample exact).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mos_ros.evaluate.metrics import face_sizes, point_errors
from mos_ros.evaluate.widerface_io import EvaluationDataError

#: Default CED threshold (NME, i.e. fraction of the face size).
CED_THRESHOLD = 0.1
#: Points of the CED curve between 0 and the threshold.
CED_STEPS = 1000


@dataclass(frozen=True)
class LandmarkResult:
    """NME per landmark and overall, per-sample errors, CED curve, AUC and failure rate."""

    nme_per_landmark: np.ndarray
    nme: float
    per_sample: np.ndarray
    ced_errors: np.ndarray
    ced_fraction: np.ndarray
    auc: float
    failure_rate: float
    threshold: float

    def to_dict(self) -> dict:
        """JSON-able figures: NME as fractions of the face size, None if never annotated."""
        per_landmark = [None if np.isnan(v) else float(v) for v in self.nme_per_landmark]
        return {"nme": self.nme, "nme_per_landmark": per_landmark,
                "auc": self.auc, "failure_rate": self.failure_rate,
                "threshold": self.threshold, "samples": int(len(self.per_sample))}


def evaluate_landmarks(predicted: np.ndarray, truth: np.ndarray, boxes: np.ndarray,
                       threshold: float = CED_THRESHOLD,
                       steps: int = CED_STEPS) -> LandmarkResult:
    """NME of (n, k, 2) predicted points against (n, k, 2) truth in (n, 4) x1y1x2y2 boxes."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    if predicted.ndim != 3 or predicted.shape[2] != 2 or predicted.shape != truth.shape:
        raise EvaluationDataError(f"landmarks must be (n, k, 2) alike; got predicted "
                                  f"{predicted.shape} and ground truth {truth.shape}")
    if threshold <= 0:
        raise EvaluationDataError(f"CED threshold must be positive, got {threshold}")
    annotated = ~np.isnan(truth).any(axis=2)
    missing = np.argwhere(np.isnan(predicted).any(axis=2) & annotated)
    if missing.size:
        sample, point = (int(v) for v in missing[0])
        raise EvaluationDataError(f"predicted landmark {point} of sample {sample} is NaN "
                                  "where the ground truth has one")
    errors = point_errors(predicted, truth, _checked_face_sizes(boxes, len(truth)))
    per_sample = _nan_mean(errors, axis=1)
    per_sample = per_sample[~np.isnan(per_sample)]
    if per_sample.size == 0:
        raise EvaluationDataError("no sample has an annotated landmark")
    x = np.linspace(0.0, threshold, steps)
    fraction = np.mean(per_sample[None, :] <= x[:, None], axis=1)
    auc = float(np.sum((fraction[1:] + fraction[:-1]) / 2 * np.diff(x)) / threshold)
    return LandmarkResult(_nan_mean(errors, axis=0), float(per_sample.mean()), per_sample, x,
                          fraction, auc, float(np.mean(per_sample > threshold)), threshold)


def _checked_face_sizes(boxes: np.ndarray, count: int) -> np.ndarray:
    """sqrt(w * h) of (n, 4) x1y1x2y2 boxes; a box without area is an error naming it."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.shape != (count, 4):
        raise EvaluationDataError(f"expected ({count}, 4) face boxes, got {boxes.shape}")
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    bad = np.flatnonzero(~((width > 0) & (height > 0)))
    if bad.size:
        raise EvaluationDataError(f"face box of sample {int(bad[0])} has no area: "
                                  f"{boxes[bad[0]].tolist()}")
    return face_sizes(boxes)


def _nan_mean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean ignoring NaN; NaN (without a warning) where a row or column has no value."""
    counts = np.sum(~np.isnan(values), axis=axis)
    sums = np.nansum(values, axis=axis)
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)
