"""The figures a model card states, measured on held-out synthetic scenes with any detector.

AP at IoU 0.5 uses every detection down to the detector's own low threshold; recall and false
positives per image are read at the operating ``threshold`` a user runs with; pose errors are
those of the faces matched at that threshold.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from mos_ros.core.labels import FaceLabels
from mos_ros.core.types import Face
from mos_ros.evaluate.metrics import mean_pose_errors
from mos_ros.scenes.config import SyntheticConfig
from mos_ros.train.validate import evaluate, matched_faces, pose_error, render_validation_set

#: Held-out scenes of the model card: seeds never used for training or validation.
CARD_SEED = 9_000_001
CARD_SCENES = SyntheticConfig(width=640, height=480, faces_range=(1, 5),
                              face_px_range=(40.0, 240.0))


@dataclass(frozen=True)
class Scorecard:
    """Detection and pose figures of one detector on one held-out set."""

    ap50: float
    threshold: float
    recall: float
    false_positives_per_image: float
    yaw_mae: float
    pitch_mae: float
    roll_mae: float
    faces: int
    images: int

    def as_dict(self) -> dict[str, float]:
        """Plain numbers for JSON."""
        return asdict(self)


Sample = tuple[np.ndarray, FaceLabels]


def held_out_scenes(count: int, seed: int = CARD_SEED,
                    config: SyntheticConfig = CARD_SCENES) -> list[Sample]:
    """``count`` synthetic scenes from a seed no training run uses."""
    return render_validation_set(count, seed, config)


def score(detect: Callable[[np.ndarray], list[Face]],
          samples: Sequence[Sample], threshold: float = 0.5) -> Scorecard:
    """Run ``detect`` (configured with a low score threshold) on ``samples`` and score it."""
    detections = [detect(image) for image, _ in samples]
    truths = [labels for _, labels in samples]
    overall = evaluate(detections, truths)
    operating = [[f for f in faces if f.score >= threshold] for faces in detections]
    found, false_pos, errors = 0, 0, []
    for faces, truth in zip(operating, truths):
        for face, index in matched_faces(faces, truth):
            if index < 0:
                false_pos += 1
                continue
            found += 1
            if truth.has_pose[index]:
                errors.append(pose_error(face, truth, index))
    mae = mean_pose_errors(errors)
    return Scorecard(ap50=overall.ap50, threshold=threshold,
                     recall=found / max(overall.faces, 1),
                     false_positives_per_image=false_pos / max(len(samples), 1),
                     yaw_mae=float(mae[0]), pitch_mae=float(mae[1]), roll_mae=float(mae[2]),
                     faces=overall.faces, images=len(samples))
