"""Raw network outputs -> faces: score filter, decode, NMS, pose expectation, image mapping."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mos_ros.core.anchors import cached_anchors
from mos_ros.core.codec import decode_boxes, decode_landmarks
from mos_ros.core.config import ModelMeta
from mos_ros.core.nms import nms
from mos_ros.core.pose import bins_to_degrees
from mos_ros.core.preprocess import Letterbox
from mos_ros.core.types import Face, HeadPose, RawOutputs


@dataclass(frozen=True)
class DecodeSettings:
    """Thresholds that turn anchor predictions into faces; all can change at run time."""

    #: Minimum face probability to keep a detection.
    score_threshold: float = 0.5
    #: IoU above which a lower-scoring overlapping detection is suppressed.
    nms_threshold: float = 0.4
    #: Candidates kept (by score) before NMS; bounds the NMS cost.
    top_k: int = 5000
    #: Faces kept after NMS.
    keep_top_k: int = 750
    #: Smallest face (shorter box side, image pixels) reported.
    min_face_size: float = 0.0

    def __post_init__(self) -> None:
        """Reject values that make no sense, naming the field."""
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Human-readable reasons why these settings are invalid (empty when valid)."""
        checks = [
            ("score_threshold", 0.0 <= self.score_threshold <= 1.0, "in [0, 1]"),
            ("nms_threshold", 0.0 < self.nms_threshold <= 1.0, "in (0, 1]"),
            ("top_k", self.top_k >= 1, "at least 1"),
            ("keep_top_k", self.keep_top_k >= 1, "at least 1"),
            ("min_face_size", self.min_face_size >= 0.0, ">= 0"),
        ]
        return [f"{name} must be {rule} (got {getattr(self, name)})"
                for name, ok, rule in checks if not ok]


def face_probabilities(conf_logits: np.ndarray) -> np.ndarray:
    """Face probability from (N, 2) background/face logits (two-class softmax)."""
    diff = conf_logits[:, 0].astype(np.float64) - conf_logits[:, 1]
    return 1.0 / (1.0 + np.exp(np.clip(diff, -80.0, 80.0)))


def decode_faces(raw: RawOutputs, meta: ModelMeta, letterbox: Letterbox,
                 settings: DecodeSettings = DecodeSettings(), index: int = 0) -> list[Face]:
    """Faces in image pixels from the raw outputs of batch item ``index``, best first.

    Only candidates above the score threshold are decoded and get their pose softmax, so the
    cost grows with the number of faces rather than the number of anchors.
    """
    anchors = cached_anchors(meta.priors, letterbox.input_height, letterbox.input_width)
    if raw.loc.shape[1] != len(anchors):
        raise ValueError(f"network gave {raw.loc.shape[1]} anchors but a "
                         f"{letterbox.input_width}x{letterbox.input_height} input has "
                         f"{len(anchors)}; the model does not match its metadata")
    scores = face_probabilities(raw.conf[index])
    candidates = np.flatnonzero(scores > settings.score_threshold)
    candidates = candidates[np.argsort(-scores[candidates], kind="stable")[:settings.top_k]]
    if candidates.size == 0:
        return []
    size = np.array([letterbox.input_width, letterbox.input_height], dtype=np.float64)
    variances = meta.priors.variances
    boxes = decode_boxes(raw.loc[index, candidates], anchors[candidates], variances)
    boxes = letterbox.to_image(boxes * np.tile(size, 2))
    kept = nms(boxes, scores[candidates], settings.nms_threshold)[:settings.keep_top_k]
    boxes = _clip_boxes(boxes[kept], letterbox)
    chosen = candidates[kept]
    landmarks = decode_landmarks(raw.landms[index, chosen], anchors[chosen], variances)
    landmarks = letterbox.to_image(landmarks * np.tile(size, 5)).reshape(-1, 5, 2)
    angles = [bins_to_degrees(getattr(raw, name)[index, chosen], meta.pose_bins)
              for name in ("yaw", "pitch", "roll")]
    faces = [
        Face(box=tuple(float(v) for v in boxes[i]), score=float(scores[chosen[i]]),
             landmarks=landmarks[i].astype(np.float32),
             pose=HeadPose(float(angles[0][i]), float(angles[1][i]), float(angles[2][i])))
        for i in range(len(chosen))
    ]
    return [f for f in faces if min(f.width, f.height) >= settings.min_face_size]


def _clip_boxes(boxes: np.ndarray, letterbox: Letterbox) -> np.ndarray:
    """Clip x1y1x2y2 boxes to the image area."""
    limits = np.array([letterbox.image_width, letterbox.image_height] * 2, dtype=np.float64)
    return np.clip(boxes, 0.0, limits)
