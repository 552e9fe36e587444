"""Random draws shared by every scene source: seeded generators, head poses, overlap."""
from __future__ import annotations

from typing import Protocol

import numpy as np


def seeded_rng(*values: int) -> np.random.Generator:
    """An independent generator for the integers ``values`` (a set seed, an index, a tag)."""
    return np.random.default_rng(np.random.SeedSequence([int(v) for v in values]))


class PoseRange(Protocol):
    """The angle settings a scene config carries (degrees)."""

    yaw_limit_deg: float
    pitch_limit_deg: float
    roll_limit_deg: float
    yaw_sigma_deg: float
    pitch_sigma_deg: float
    roll_sigma_deg: float
    frontal_fraction: float


def _sample_angle(rng: np.random.Generator, limit: float, sigma: float,
                  frontal_fraction: float) -> float:
    # A fraction of 1 tosses no coin: every angle comes from the Gaussian.
    if frontal_fraction >= 1.0 or rng.random() < frontal_fraction:
        return float(np.clip(rng.normal(0.0, sigma), -limit, limit))
    return float(rng.uniform(-limit, limit))


def sample_pose(rng: np.random.Generator, config: PoseRange) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees: with probability ``frontal_fraction`` each angle is a
    Gaussian about frontal clipped to its limit, otherwise uniform within the limit."""
    return (_sample_angle(rng, config.yaw_limit_deg, config.yaw_sigma_deg,
                          config.frontal_fraction),
            _sample_angle(rng, config.pitch_limit_deg, config.pitch_sigma_deg,
                          config.frontal_fraction),
            _sample_angle(rng, config.roll_limit_deg, config.roll_sigma_deg,
                          config.frontal_fraction))


def overlap_fraction(region: np.ndarray, boxes: list[np.ndarray]) -> float:
    """Largest share of an earlier face box that ``region`` would cover."""
    if not boxes:
        return 0.0
    placed = np.asarray(boxes)
    inter = np.clip(np.minimum(region[2:], placed[:, 2:]) - np.maximum(region[:2], placed[:, :2]),
                    0, None).prod(axis=1)
    areas = np.maximum((placed[:, 2:] - placed[:, :2]).prod(axis=1), 1e-6)
    return float((inter / areas).max())
