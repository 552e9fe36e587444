"""Head-pose accuracy on AFLW2000 following the Hopenet protocol.

Mean absolute error, in degrees, of yaw, pitch and roll and their mean, over the samples whose
ground-truth angles all lie within +-99 degrees (the range the 66 bins of 3 degrees cover);
the excluded samples are counted and reported. Angles are compared as they are, not wrapped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mos_ros.evaluate.widerface_io import EvaluationDataError

#: Order of the three angle columns everywhere in this module.
ANGLES: tuple[str, ...] = ("yaw", "pitch", "roll")
#: Samples with any ground-truth angle beyond this many degrees are left out.
POSE_LIMIT_DEG = 99.0


@dataclass(frozen=True)
class PoseResult:
    """MAE per angle and their mean, and which samples went in."""

    mae: dict[str, float]
    #: Absolute errors (n, 3) of the evaluated samples, yaw/pitch/roll columns.
    errors: np.ndarray
    evaluated: int
    excluded: int
    limit_deg: float

    def to_dict(self) -> dict:
        """JSON-able figures: MAE in degrees and the sample counts."""
        return {"mae_deg": dict(self.mae), "evaluated": self.evaluated,
                "excluded_beyond_limit": self.excluded, "limit_deg": self.limit_deg}


def evaluate_pose(predicted: np.ndarray, truth: np.ndarray,
                  limit_deg: float = POSE_LIMIT_DEG) -> PoseResult:
    """MAE of (n, 3) yaw/pitch/roll predictions against (n, 3) ground truth, in degrees."""
    predicted = _angles(predicted, "predicted")
    truth = _angles(truth, "ground-truth")
    if predicted.shape != truth.shape:
        raise EvaluationDataError(f"{len(predicted)} predictions for {len(truth)} "
                                  "ground-truth poses")
    inside = np.all(np.abs(truth) <= limit_deg, axis=1)
    if not inside.any():
        raise EvaluationDataError(f"no sample has all angles within +-{limit_deg} degrees")
    errors = np.abs(predicted[inside] - truth[inside])
    per_angle = errors.mean(axis=0)
    mae = {name: float(v) for name, v in zip(ANGLES, per_angle)}
    mae["mean"] = float(per_angle.mean())
    return PoseResult(mae, errors, int(inside.sum()), int((~inside).sum()), float(limit_deg))


def _angles(values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != len(ANGLES):
        raise EvaluationDataError(f"{what} angles must be (n, 3) yaw, pitch, roll; "
                                  f"got shape {array.shape}")
    bad = np.flatnonzero(~np.all(np.isfinite(array), axis=1))
    if bad.size:
        raise EvaluationDataError(f"{what} angles of sample {int(bad[0])} are not finite")
    return array
