"""Test-time augmentation as in the MOS paper: horizontal flip and several input scales.

Every pass runs the detector's own stages (:func:`mos_ros.core.preprocess.prepare`,
``backend.infer``) and decodes its candidates with core's decode functions; the candidates of
all passes are pooled BEFORE the one core NMS, so the best-scored box of any pass wins.
A flipped pass is mapped back: x becomes ``width - x``, the image-left/right landmarks swap
(eyes, mouth corners) and yaw and roll change sign; pitch is unchanged by a mirror.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mos_ros.core.anchors import cached_anchors
from mos_ros.core.codec import decode_boxes, decode_landmarks
from mos_ros.core.config import ModelMeta
from mos_ros.core.image_io import to_bgr
from mos_ros.core.nms import nms
from mos_ros.core.pose import bins_to_degrees
from mos_ros.core.postprocess import DecodeSettings, face_probabilities
from mos_ros.core.preprocess import SIZE_MULTIPLE, Letterbox, prepare
from mos_ros.core.types import Face, HeadPose, RawOutputs
from mos_ros.detector import FaceDetector

#: Landmark order after a mirror: image-left and image-right points trade places
#: (left eye <-> right eye, nose stays, left mouth corner <-> right mouth corner).
MIRRORED_LANDMARKS = np.array([1, 0, 2, 4, 3])
#: Angles (yaw, pitch, roll) that change sign under a horizontal mirror.
MIRROR_ANGLE_SIGNS = np.array([-1.0, 1.0, -1.0])


@dataclass(frozen=True)
class TTASettings:
    """Which passes to run: image scale factors, with or without a mirrored copy of each."""

    #: Network input long side = image long side x scale (so 1.0 is the original size).
    scales: tuple[float, ...] = (1.0,)
    flip: bool = True
    #: Largest network input side; bigger scales are capped to it (memory bound).
    max_side: int = 2560

    def __post_init__(self) -> None:
        """Reject empty or non-positive scales and a cap below one network stride."""
        if not self.scales or any(s <= 0 for s in self.scales):
            raise ValueError(f"scales must be positive and not empty, got {self.scales}")
        if self.max_side < SIZE_MULTIPLE:
            raise ValueError(f"max_side must be at least {SIZE_MULTIPLE}, got {self.max_side}")


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
        """All candidates of ``parts`` in one set."""
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("boxes", "scores", "landmarks", "angles")))


def decode_candidates(raw: RawOutputs, meta: ModelMeta, letterbox: Letterbox,
                      settings: DecodeSettings, index: int = 0) -> Candidates:
    """Every anchor above the score threshold (best ``top_k``), decoded, without NMS.

    The decode steps are core's (:func:`face_probabilities`, :func:`decode_boxes`,
    :func:`decode_landmarks`, :func:`bins_to_degrees`), as in
    :func:`mos_ros.core.postprocess.decode_faces`, stopping before its NMS.
    """
    anchors = cached_anchors(meta.priors, letterbox.input_height, letterbox.input_width)
    if raw.loc.shape[1] != len(anchors):
        raise ValueError(f"network gave {raw.loc.shape[1]} anchors but a {letterbox.input_width}"
                         f"x{letterbox.input_height} input has {len(anchors)}")
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


def mirror_candidates(found: Candidates, image_width: int) -> Candidates:
    """Candidates found in a horizontally mirrored image, expressed in the original image."""
    boxes = found.boxes.copy()
    boxes[:, [0, 2]] = image_width - found.boxes[:, [2, 0]]
    landmarks = found.landmarks[:, MIRRORED_LANDMARKS].copy()
    landmarks[..., 0] = image_width - landmarks[..., 0]
    return Candidates(boxes, found.scores.copy(), landmarks, found.angles * MIRROR_ANGLE_SIGNS)


def select_faces(pooled: Candidates, settings: DecodeSettings,
                 image_hw: tuple[int, int]) -> list[Face]:
    """Core NMS over pooled candidates, then the same limits as single-pass decoding."""
    pooled = pooled.take(np.argsort(-pooled.scores, kind="stable")[:settings.top_k])
    kept = pooled.take(nms(pooled.boxes, pooled.scores, settings.nms_threshold)
                       [:settings.keep_top_k])
    height, width = image_hw
    boxes = np.clip(kept.boxes, 0.0, np.array([width, height, width, height], dtype=np.float64))
    faces = [Face(box=tuple(float(v) for v in boxes[i]), score=float(kept.scores[i]),
                  landmarks=kept.landmarks[i].astype(np.float32),
                  pose=HeadPose(*(float(a) for a in kept.angles[i])))
             for i in range(len(kept))]
    return [f for f in faces if min(f.width, f.height) >= settings.min_face_size]


def pass_long_sides(image_hw: tuple[int, int], tta: TTASettings) -> list[int]:
    """Network-input long side of each scale, capped at ``max_side``, duplicates removed."""
    long_side = max(image_hw)
    sides = [min(tta.max_side, max(SIZE_MULTIPLE, round(long_side * s))) for s in tta.scales]
    return list(dict.fromkeys(sides))


def detect_tta(detector: FaceDetector, image: np.ndarray, tta: TTASettings) -> list[Face]:
    """Faces in ``image`` from all TTA passes of ``detector``, best score first."""
    image = to_bgr(image)
    height, width = image.shape[:2]
    mirrored = np.ascontiguousarray(image[:, ::-1]) if tta.flip else None
    parts = []
    for side in pass_long_sides((height, width), tta):
        parts.append(_run_pass(detector, image, side))
        if mirrored is not None:
            parts.append(mirror_candidates(_run_pass(detector, mirrored, side), width))
    return select_faces(Candidates.concatenate(parts), detector.settings, (height, width))


def _run_pass(detector: FaceDetector, image: np.ndarray, long_side: int) -> Candidates:
    """One network pass of ``detector`` at ``long_side`` pixels: decoded candidates."""
    batch, letterbox = prepare(image, long_side, detector.meta.input_mean)
    raw = detector.backend.infer(batch)
    return decode_candidates(raw, detector.meta, letterbox, detector.settings)
