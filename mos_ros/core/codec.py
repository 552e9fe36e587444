"""Box and landmark regression encoding relative to anchors (the RetinaFace/MOS scheme).

All coordinates are normalised by the network input size. For an anchor (cx, cy, w, h) and
variances (v0, v1): a box centre is encoded as (c - anchor_c) / (v0 * anchor_wh), its size as
log(wh / anchor_wh) / v1; a landmark point like a box centre.
"""
from __future__ import annotations

import numpy as np


def _as_pairs(variances) -> tuple[float, float]:
    v0, v1 = variances
    return float(v0), float(v1)


def encode_boxes(boxes: np.ndarray, anchors: np.ndarray, variances) -> np.ndarray:
    """Encode (M, 4) x1y1x2y2 boxes against (M, 4) matched anchors into regression targets."""
    v0, v1 = _as_pairs(variances)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    size = boxes[:, 2:] - boxes[:, :2]
    if np.any(size <= 0):
        raise ValueError("boxes to encode must have positive width and height")
    offset = (centre - anchors[:, :2]) / (v0 * anchors[:, 2:])
    scale = np.log(size / anchors[:, 2:]) / v1
    return np.concatenate([offset, scale], axis=1).astype(np.float32)


def decode_boxes(loc: np.ndarray, anchors: np.ndarray, variances) -> np.ndarray:
    """Decode (N, 4) regression outputs into x1y1x2y2 boxes (normalised); inverts encoding."""
    v0, v1 = _as_pairs(variances)
    centre = anchors[:, :2] + loc[:, :2] * v0 * anchors[:, 2:]
    size = anchors[:, 2:] * np.exp(loc[:, 2:] * v1)
    return np.concatenate([centre - size / 2.0, centre + size / 2.0], axis=1)


def encode_landmarks(landmarks: np.ndarray, anchors: np.ndarray, variances) -> np.ndarray:
    """Encode (M, 10) landmark coordinates (x0, y0, ..., x4, y4) against matched anchors."""
    v0, _ = _as_pairs(variances)
    points = landmarks.reshape(len(landmarks), landmarks.shape[1] // 2, 2)
    encoded = (points - anchors[:, None, :2]) / (v0 * anchors[:, None, 2:])
    return encoded.reshape(landmarks.shape).astype(np.float32)


def decode_landmarks(landms: np.ndarray, anchors: np.ndarray, variances) -> np.ndarray:
    """Decode (N, 10) landmark outputs into normalised (x, y) pairs, shape (N, 10)."""
    v0, _ = _as_pairs(variances)
    points = landms.reshape(len(landms), landms.shape[1] // 2, 2)
    decoded = anchors[:, None, :2] + points * v0 * anchors[:, None, 2:]
    return decoded.reshape(landms.shape)
