"""Validation on a held-out synthetic set: AP at IoU 0.5 and head-pose error of found faces.

The model in training runs through the same :class:`~mos_ros.detector.FaceDetector` as every
backend (as a :class:`~mos_ros.backends.torch_backend.ModuleBackend`), so the figures describe
what the shipped pipeline would report.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from mos_ros.backends.torch_backend import ModuleBackend
from mos_ros.core.labels import FaceLabels
from mos_ros.core.postprocess import DecodeSettings
from mos_ros.core.types import Face
from mos_ros.detector import FaceDetector
from mos_ros.evaluate.metrics import (
    MATCH_IOU, matched_truth, mean_pose_errors, pooled_average_precision, pose_errors)
from mos_ros.scenes.config import SyntheticConfig
from mos_ros.scenes.sampling import seeded_rng
from mos_ros.scenes.composer import ProceduralScenes

#: A low score threshold so the precision-recall curve reaches far into recall.
VALIDATION_DECODE = DecodeSettings(score_threshold=0.02, nms_threshold=0.4, top_k=1000,
                                   keep_top_k=300)


@dataclass(frozen=True)
class ValidationResult:
    """AP at IoU 0.5 and mean absolute pose errors (degrees) over matched faces."""

    ap50: float
    yaw_mae: float
    pitch_mae: float
    roll_mae: float
    matched_faces: int
    faces: int
    images: int

    def as_dict(self) -> dict[str, float]:
        """Plain numbers (for JSON and checkpoint metadata)."""
        return asdict(self)


def render_validation_set(count: int, seed: int, config: SyntheticConfig
                          ) -> list[tuple[np.ndarray, FaceLabels]]:
    """``count`` held-out scenes (their seed must differ from the training seeds)."""
    compose = ProceduralScenes(config)
    return [compose(seeded_rng(seed, index)) for index in range(count)]


def matched_faces(faces: list[Face], truth: FaceLabels) -> list[tuple[Face, int]]:
    """Each detection (by falling score) with its matched ground-truth index, or -1."""
    ordered = sorted(faces, key=lambda face: -face.score)
    boxes = np.reshape([face.box for face in ordered], (-1, 4))
    indices = matched_truth(truth.boxes, boxes, [face.score for face in ordered], MATCH_IOU)
    return list(zip(ordered, indices.tolist()))


def pose_error(face: Face, truth: FaceLabels, index: int) -> np.ndarray:
    """Absolute yaw, pitch, roll error (3,) of a detection against face ``index``."""
    return pose_errors((face.pose.yaw, face.pose.pitch, face.pose.roll), truth.poses[index])


def evaluate(detections: list[list[Face]], truths: list[FaceLabels]) -> ValidationResult:
    """AP@0.5 over all images and pose MAE of true positives against their labels."""
    if len(detections) != len(truths):
        raise ValueError(f"{len(detections)} detection lists for {len(truths)} images")
    scored, errors = [], []
    for faces, truth in zip(detections, truths):
        for face, index in matched_faces(faces, truth):
            scored.append((face.score, index >= 0))
            if index >= 0 and truth.has_pose[index]:
                errors.append(pose_error(face, truth, index))
    total = int(sum(len(t) for t in truths))
    mae = mean_pose_errors(errors)
    return ValidationResult(ap50=pooled_average_precision(scored, total), yaw_mae=float(mae[0]),
                            pitch_mae=float(mae[1]), roll_mae=float(mae[2]),
                            matched_faces=len(errors), faces=total, images=len(truths))


def detect(model: torch.nn.Module, image: np.ndarray, input_size: int | None,
           device: torch.device, settings: DecodeSettings = VALIDATION_DECODE) -> list[Face]:
    """Faces in one BGR image with the model's own metadata (anchors, mean, pose bins), through
    the same detector as inference (square input ``input_size``, or the image's own size)."""
    size = None if input_size is None else (input_size, input_size)
    return FaceDetector(ModuleBackend(model, device), settings, size).detect(image)


def validate(model: torch.nn.Module, samples: list[tuple[np.ndarray, FaceLabels]],
             input_size: int | None, device: torch.device | str = "cpu") -> ValidationResult:
    """Run the model (in eval mode, restored afterwards) on ``samples`` and score it."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        detections = [detect(model, image, input_size, device) for image, _ in samples]
    finally:
        model.train(was_training)
    return evaluate(detections, [labels for _, labels in samples])
