"""Anchor (prior box) layout shared by training, decoding and every backend."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from mos_ros.core.config import PriorConfig


def feature_map_sizes(priors: PriorConfig, height: int, width: int) -> list[tuple[int, int]]:
    """(rows, cols) of each pyramid level for an input of ``height`` x ``width`` pixels.

    A chain of stride-2 convolutions with padding gives ceil(size / stride) at every level.
    """
    return [(math.ceil(height / s), math.ceil(width / s)) for s in priors.steps]


def num_anchors(priors: PriorConfig, height: int, width: int) -> int:
    """Number of anchors the network predicts for this input size."""
    cells = sum(r * c for r, c in feature_map_sizes(priors, height, width))
    return cells * priors.anchors_per_cell


def generate_anchors(priors: PriorConfig, height: int, width: int) -> np.ndarray:
    """Anchors as an (N, 4) float32 array of (cx, cy, w, h), normalised by the input size.

    Order: level -> row -> column -> size, which is the order the network's reshaped head
    outputs use. 640 x 640 with the default layout gives 16,800 anchors.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"input size must be positive, got {height}x{width}")
    levels = []
    for (rows, cols), step, sizes in zip(
            feature_map_sizes(priors, height, width), priors.steps, priors.min_sizes):
        cy, cx = np.meshgrid((np.arange(rows) + 0.5) * step / height,
                             (np.arange(cols) + 0.5) * step / width, indexing="ij")
        sizes_w = np.asarray(sizes, dtype=np.float64) / width
        sizes_h = np.asarray(sizes, dtype=np.float64) / height
        level = np.empty((rows, cols, len(sizes), 4), dtype=np.float64)
        level[..., 0] = cx[..., None]
        level[..., 1] = cy[..., None]
        level[..., 2] = sizes_w
        level[..., 3] = sizes_h
        levels.append(level.reshape(-1, 4))
    anchors = np.concatenate(levels).astype(np.float32)
    if priors.clip:
        np.clip(anchors, 0.0, 1.0, out=anchors)
    return anchors


@lru_cache(maxsize=16)
def cached_anchors(priors: PriorConfig, height: int, width: int) -> np.ndarray:
    """:func:`generate_anchors`, memoised per input size and returned read-only."""
    anchors = generate_anchors(priors, height, width)
    anchors.setflags(write=False)
    return anchors


def mirrored_anchor_order(priors: PriorConfig, height: int, width: int) -> np.ndarray:
    """For every anchor, the index of its left-right mirror image: ``order[i]`` is the anchor
    at the same row, level and size in column ``cols - 1 - col``.

    Anchor centres sit at (col + 0.5) * step, so the order is exact when every step divides
    ``width``; otherwise the last column overhangs the image and there is no mirror anchor, and
    a ``ValueError`` says so. Used to compare an image's outputs with its mirror's.
    """
    sizes = feature_map_sizes(priors, height, width)
    uneven = [step for step in priors.steps if width % step]
    if uneven:
        raise ValueError(f"width {width} is not a multiple of the anchor steps {uneven}: "
                         "its anchors have no left-right mirror")
    per_cell = priors.anchors_per_cell
    orders, offset = [], 0
    for rows, cols in sizes:
        index = np.arange(rows * cols * per_cell).reshape(rows, cols, per_cell)
        orders.append(index[:, ::-1, :].reshape(-1) + offset)
        offset += index.size
    return np.concatenate(orders)
