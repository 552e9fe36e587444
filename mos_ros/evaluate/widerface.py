"""The official WIDER FACE evaluation protocol, vectorised.

What the official tools do, and so what this does:

* Scores are min-max normalised over the WHOLE prediction set (one global minimum and
  maximum, not per image), so that the 1000 thresholds 0.999, 0.998, ..., 0.000 span them.
* Per image, predictions are taken best score first; each is matched to the ground-truth face
  it overlaps most (IoU with the tools' inclusive-pixel convention: a box ``x y w h`` covers
  ``w + 1`` by ``h + 1`` pixels). With IoU >= 0.5 to a face the setting ignores, the prediction
  is not counted at all; to a counted face, the first such prediction recalls it and later ones
  are false positives (duplicates); below 0.5 it is a false positive.
* Images without ground-truth faces or without predictions add nothing but their faces to the
  recall denominator (the count of faces the setting keeps).
* Precision/recall at each threshold over the whole set; AP is the VOC area under the
  monotone precision envelope.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from mos_ros.core.nms import iou_matrix
from mos_ros.evaluate.metrics import average_precision
from mos_ros.evaluate.widerface_io import EvaluationDataError, Predictions, WiderGroundTruth

#: Overlap a prediction needs with a face to find it.
IOU_THRESHOLD = 0.5
#: Points of the precision-recall curve (score thresholds), as the official tools.
THRESHOLD_COUNT = 1000


@dataclass(frozen=True)
class PRCurve:
    """Precision and recall of one setting at each score threshold, and its AP."""

    setting: str
    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    ap: float
    faces: int


@dataclass(frozen=True)
class WiderResult:
    """AP per setting plus what went in (images, boxes, prediction files not found)."""

    curves: dict[str, PRCurve]
    images: int
    predictions: int
    missing: tuple[str, ...] = ()

    def ap(self) -> dict[str, float]:
        """AP per setting, in [0, 1]."""
        return {name: curve.ap for name, curve in self.curves.items()}

    def to_dict(self) -> dict:
        """JSON-able summary (AP, face counts, input counts; curves are in the plot)."""
        return {"ap": self.ap(),
                "faces": {n: c.faces for n, c in self.curves.items()},
                "images": self.images, "predictions": self.predictions,
                "missing_prediction_files": len(self.missing)}


@dataclass(frozen=True)
class _Matches:
    """Every prediction of the set, flattened: normalised score, matched face, outcome."""

    scores: np.ndarray
    #: Index into the concatenated faces of all images (valid where ``matched``).
    face: np.ndarray
    #: IoU with its best face reaches the threshold.
    matched: np.ndarray
    #: The first (best-scored) prediction matched to that face in its image.
    first: np.ndarray


def evaluate_widerface(gt: WiderGroundTruth, predictions: Predictions | Sequence[np.ndarray],
                       iou_threshold: float = IOU_THRESHOLD,
                       threshold_count: int = THRESHOLD_COUNT,
                       progress: bool = False) -> WiderResult:
    """AP of each setting of ``gt`` for per-image ``x y w h score`` predictions.

    ``predictions`` are aligned with ``gt.images`` (as :func:`read_predictions` returns them).
    """
    boxes = predictions.boxes if isinstance(predictions, Predictions) else tuple(predictions)
    missing = predictions.missing if isinstance(predictions, Predictions) else ()
    if len(boxes) != len(gt.images):
        raise EvaluationDataError(f"{len(boxes)} prediction arrays for {len(gt.images)} "
                                  "ground-truth images")
    matches = _match_all(gt, normalise_scores(boxes), iou_threshold, progress)
    thresholds = 1.0 - np.arange(1, threshold_count + 1) / threshold_count
    counts = gt.face_counts()
    curves = {}
    for setting in gt.settings:
        keep = np.concatenate([image.keep[setting] for image in gt.images] + [np.zeros(0, bool)])
        curves[setting] = _curve(setting, matches, keep, counts[setting], thresholds)
    return WiderResult(curves, len(gt.images), int(sum(len(b) for b in boxes)), missing)


def normalise_scores(boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Copies of the (n, 5) arrays with scores mapped to [0, 1] by the global min and max.

    When every score is the same there is no range to map; all become 1 (every prediction
    passes every threshold) instead of the tools' division by zero.
    """
    arrays = [_as_rows(b, i) for i, b in enumerate(boxes)]
    scores = np.concatenate([a[:, 4] for a in arrays] + [np.zeros(0)])
    if scores.size == 0:
        return arrays
    low, span = scores.min(), scores.max() - scores.min()
    for a in arrays:
        a[:, 4] = (a[:, 4] - low) / span if span > 0 else 1.0
    return arrays


def _as_rows(array: np.ndarray, index: int) -> np.ndarray:
    rows = np.array(array, dtype=np.float64, copy=True)
    if rows.size == 0:
        return np.zeros((0, 5))
    if rows.ndim != 2 or rows.shape[1] != 5:
        raise EvaluationDataError(f"predictions of image {index} must be (n, 5) "
                                  f"x y w h score, got shape {rows.shape}")
    return rows


def inclusive_corners(xywh: np.ndarray) -> np.ndarray:
    """``x y w h`` boxes as x1 y1 x2 y2 corners that give the tools' inclusive-pixel IoU.

    The tools compute widths as ``x2 - x1 + 1`` with ``x2 = x + w``; extending the far corner
    by one pixel lets :func:`mos_ros.core.nms.iou_matrix` give exactly the same overlaps.
    """
    xywh = np.asarray(xywh, dtype=np.float64)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:4] + 1.0], axis=1)


def match_image(pred: np.ndarray, faces: np.ndarray,
                iou_threshold: float = IOU_THRESHOLD) -> tuple[np.ndarray, ...]:
    """Match (n, 5) predictions, best score first, to (m, 4) faces of one image.

    Returns per prediction: the index of its best-overlapping face, whether the overlap reaches
    ``iou_threshold`` and whether it is the first prediction matched to that face.
    """
    overlaps = iou_matrix(inclusive_corners(pred[:, :4]), inclusive_corners(faces))
    best = np.argmax(overlaps, axis=1)
    matched = overlaps[np.arange(len(pred)), best] >= iou_threshold
    first = np.zeros(len(pred), dtype=bool)
    candidates = np.flatnonzero(matched)
    _, first_of_face = np.unique(best[candidates], return_index=True)
    first[candidates[first_of_face]] = True
    return best, matched, first


def _match_all(gt: WiderGroundTruth, boxes: list[np.ndarray], iou_threshold: float,
               progress: bool) -> _Matches:
    """Match every image and flatten the outcome; images without faces or boxes drop out."""
    parts: list[tuple[np.ndarray, ...]] = []
    offset = 0
    for image, pred in tqdm(zip(gt.images, boxes), total=len(boxes), disable=not progress,
                            desc="matching", unit="img"):
        faces = len(image.boxes)
        if faces and len(pred):
            pred = pred[np.argsort(-pred[:, 4], kind="stable")]
            best, matched, first = match_image(pred, image.boxes, iou_threshold)
            parts.append((pred[:, 4], best + offset, matched, first))
        offset += faces
    if not parts:
        empty = np.zeros(0)
        return _Matches(empty, empty.astype(np.int64), empty.astype(bool), empty.astype(bool))
    return _Matches(*(np.concatenate(column) for column in zip(*parts)))


def _curve(setting: str, matches: _Matches, keep: np.ndarray, faces: int,
           thresholds: np.ndarray) -> PRCurve:
    """Precision/recall of one setting at each threshold, from the shared matches."""
    if faces == 0:
        raise EvaluationDataError(f"setting {setting!r} counts no faces; recall is undefined")
    kept_face = keep[matches.face] if matches.face.size else np.zeros(0, dtype=bool)
    proposals = ~(matches.matched & ~kept_face)
    hits = matches.first & kept_face
    proposed, found = _counts_above(matches.scores, thresholds, proposals, hits)
    precision = np.divide(found, proposed, out=np.zeros_like(found), where=proposed > 0)
    recall = found / faces
    return PRCurve(setting, thresholds, precision, recall, average_precision(recall, precision),
                   faces)


def _counts_above(scores: np.ndarray, thresholds: np.ndarray,
                  *flags: np.ndarray) -> list[np.ndarray]:
    """For each threshold t and each flag array: how many flagged predictions score >= t."""
    order = np.argsort(scores, kind="stable")
    start = np.searchsorted(scores[order], thresholds, side="left")
    totals = []
    for flag in flags:
        running = np.concatenate([[0.0], np.cumsum(flag[order], dtype=np.float64)])
        totals.append(running[-1] - running[start])
    return totals
