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
from mos_ros.core.validation import Rule, Validated, setting


@dataclass(frozen=True)
class DecodeSettings(Validated):
    """Thresholds that turn anchor predictions into faces; all can change at run time."""

    score_threshold: float = setting(0.5, "Minimum face probability", (0.0, 1.0))
    nms_threshold: float = setting(0.4, "IoU above which a lower-scoring overlapping face is "
                                   "suppressed, in (0, 1]", (0.0, 1.0))
    top_k: int = setting(5000, "Candidates kept (by score) before NMS; bounds the NMS cost",
                         (1, 100000))
    keep_top_k: int = setting(750, "Most faces reported per image (kept after NMS)",
                              (1, 10000))
    min_face_size: float = setting(0.0, "Smallest face reported (shorter box side), image "
                                   "pixels", (0.0, 10000.0))

    def rules(self) -> list[Rule]:
        """Allowed values of each field."""
        return [
            ("score_threshold", 0.0 <= self.score_threshold <= 1.0, "in [0, 1]"),
            ("nms_threshold", 0.0 < self.nms_threshold <= 1.0, "in (0, 1]"),
            ("top_k", self.top_k >= 1, "at least 1"),
            ("keep_top_k", self.keep_top_k >= 1, "at least 1"),
            ("min_face_size", self.min_face_size >= 0.0, ">= 0"),
        ]


def face_probabilities(conf_logits: np.ndarray) -> np.ndarray:
    """Face probability from (N, 2) background/face logits (two-class softmax)."""
    diff = conf_logits[:, 0].astype(np.float64) - conf_logits[:, 1]
    return 1.0 / (1.0 + np.exp(np.clip(diff, -80.0, 80.0)))


@dataclass(frozen=True)
class Candidates:
    """Decoded anchor predictions before NMS, in image pixels.

    ``boxes`` (n, 4) x1 y1 x2 y2, ``scores`` (n,), ``landmarks`` (n, 5, 2),
    ``angles`` (n, 3) yaw, pitch, roll in degrees.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray
    angles: np.ndarray

    def __len__(self) -> int:
        """Number of candidates."""
        return len(self.scores)

    def take(self, index: np.ndarray) -> Candidates:
        """The candidates at ``index`` (an index or boolean array), in that order."""
        return Candidates(self.boxes[index], self.scores[index], self.landmarks[index],
                          self.angles[index])

    @classmethod
    def concatenate(cls, parts: list[Candidates]) -> Candidates:
        """All candidates of ``parts`` in one set (e.g. several test-time passes)."""
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("boxes", "scores", "landmarks", "angles")))


def decode_candidates(raw: RawOutputs, meta: ModelMeta, letterbox: Letterbox,
                      settings: DecodeSettings = DecodeSettings(), index: int = 0) -> Candidates:
    """Anchors of batch item ``index`` above the score threshold (best ``top_k``), decoded.

    Only these candidates are decoded and get their pose softmax, so the cost grows with the
    number of faces rather than the number of anchors.
    """
    anchors = cached_anchors(meta.priors, letterbox.input_height, letterbox.input_width)
    if raw.loc.shape[1] != len(anchors):
        raise ValueError(f"network gave {raw.loc.shape[1]} anchors but a "
                         f"{letterbox.input_width}x{letterbox.input_height} input has "
                         f"{len(anchors)}; the model does not match its metadata")
    scores = face_probabilities(raw.conf[index])
    chosen = np.flatnonzero(scores > settings.score_threshold)
    chosen = chosen[np.argsort(-scores[chosen], kind="stable")[:settings.top_k]]
    size = np.array([letterbox.input_width, letterbox.input_height], dtype=np.float64)
    variances = meta.priors.variances
    boxes = decode_boxes(raw.loc[index, chosen], anchors[chosen], variances)
    landmarks = decode_landmarks(raw.landms[index, chosen], anchors[chosen], variances)
    angles = [bins_to_degrees(getattr(raw, name)[index, chosen], meta.pose_bins)
              for name in ("yaw", "pitch", "roll")]
    return Candidates(letterbox.to_image(boxes * np.tile(size, 2)).reshape(-1, 4),
                      scores[chosen],
                      letterbox.to_image(landmarks * np.tile(size, 5)).reshape(-1, 5, 2),
                      np.stack(angles, axis=1).reshape(-1, 3))


def select_faces(candidates: Candidates, settings: DecodeSettings,
                 image_hw: tuple[int, int]) -> list[Face]:
    """The one NMS over candidates, then ``keep_top_k``, clipping and ``min_face_size``."""
    order = np.argsort(-candidates.scores, kind="stable")[:settings.top_k]
    candidates = candidates.take(order)
    kept = candidates.take(nms(candidates.boxes, candidates.scores,
                               settings.nms_threshold)[:settings.keep_top_k])
    height, width = image_hw
    boxes = np.clip(kept.boxes, 0.0, np.array([width, height, width, height], np.float64))
    faces = [Face(box=tuple(float(v) for v in boxes[i]), score=float(kept.scores[i]),
                  landmarks=kept.landmarks[i].astype(np.float32),
                  pose=HeadPose(*(float(a) for a in kept.angles[i])))
             for i in range(len(kept))]
    return [f for f in faces if min(f.width, f.height) >= settings.min_face_size]


def decode_faces(raw: RawOutputs, meta: ModelMeta, letterbox: Letterbox,
                 settings: DecodeSettings = DecodeSettings(), index: int = 0) -> list[Face]:
    """Faces in image pixels from the raw outputs of batch item ``index``, best first."""
    candidates = decode_candidates(raw, meta, letterbox, settings, index)
    return select_faces(candidates, settings, (letterbox.image_height, letterbox.image_width))
