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

from mos_ros.core.image_io import to_bgr
from mos_ros.core.labels import MIRRORED_LANDMARK_ORDER
from mos_ros.core.pose import mirror_poses
from mos_ros.core.postprocess import Candidates, decode_candidates, select_faces
from mos_ros.core.preprocess import SIZE_MULTIPLE, prepare
from mos_ros.core.types import Face
from mos_ros.core.validation import Rule, Validated
from mos_ros.detector import FaceDetector


@dataclass(frozen=True)
class TTASettings(Validated):
    """Which passes to run: image scale factors, with or without a mirrored copy of each."""

    #: Network input long side = image long side x scale (so 1.0 is the original size).
    scales: tuple[float, ...] = (1.0,)
    flip: bool = True
    #: Largest network input side; bigger scales are capped to it (memory bound).
    max_side: int = 2560

    def rules(self) -> list[Rule]:
        """Scales positive and not empty; the cap at least one network stride."""
        return [("scales", bool(self.scales) and all(s > 0 for s in self.scales),
                 "positive and not empty"),
                ("max_side", self.max_side >= SIZE_MULTIPLE, f">= {SIZE_MULTIPLE}")]


def mirror_candidates(found: Candidates, image_width: int) -> Candidates:
    """Candidates found in a horizontally mirrored image, expressed in the original image."""
    boxes = found.boxes.copy()
    boxes[:, [0, 2]] = image_width - found.boxes[:, [2, 0]]
    landmarks = found.landmarks[:, list(MIRRORED_LANDMARK_ORDER)].copy()
    landmarks[..., 0] = image_width - landmarks[..., 0]
    return Candidates(boxes, found.scores.copy(), landmarks, mirror_poses(found.angles))


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
