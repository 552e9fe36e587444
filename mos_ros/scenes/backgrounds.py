"""Face-free procedural backgrounds: gradients, colour noise, clutter and hard negatives."""
from __future__ import annotations

import cv2
import numpy as np

from mos_ros.scenes.config import SyntheticConfig
from mos_ros.scenes.photometric import add_noise
from mos_ros.scenes.procedural import HAIR_TONES, random_skin

#: Grid size of the coarse gradient image that is resized to the scene.
_COARSE = 16
_BACKGROUND_NOISE_SIGMA = (2.0, 12.0)


def _random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    return tuple(float(c) for c in rng.uniform(0, 255, 3))


def _base_layer(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A linear gradient, smooth colour noise, or a flat colour."""
    kind = rng.integers(3)
    if kind == 0:
        angle = rng.uniform(0, 2 * np.pi)
        grid_y, grid_x = np.mgrid[0:_COARSE, 0:_COARSE].astype(np.float32) / (_COARSE - 1)
        ramp = (grid_x * np.cos(angle) + grid_y * np.sin(angle))[..., None]
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        a, b = rng.uniform(0, 255, (2, 3)).astype(np.float32)
        small = a + (b - a) * ramp
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.uint8)
    if kind == 1:
        cells = int(rng.integers(2, 24))
        small = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        return np.clip(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC),
                       0, 255).astype(np.uint8)
    return np.full((height, width, 3), _random_colour(rng), np.uint8)


def _draw_clutter(image: np.ndarray, rng: np.random.Generator, count: int) -> None:
    height, width = image.shape[:2]
    size = max(height, width)
    for _ in range(count):
        kind = rng.integers(4)
        colour = _random_colour(rng)
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        extent = int(rng.uniform(0.01, 0.3) * size) + 1
        if kind == 0:
            corner = (centre[0] + extent, centre[1] + int(rng.uniform(0.2, 2) * extent))
            cv2.rectangle(image, centre, corner, colour, -1 if rng.random() < 0.6 else 2)
        elif kind == 1:
            cv2.circle(image, centre, extent, colour, -1 if rng.random() < 0.6 else 2)
        elif kind == 2:
            end = (int(rng.integers(width)), int(rng.integers(height)))
            cv2.line(image, centre, end, colour, int(rng.integers(1, 6)))
        else:
            points = np.asarray(centre) + rng.integers(-extent, extent + 1, (5, 2))
            cv2.fillPoly(image, [points.astype(np.int32)], colour)


def _draw_negative(image: np.ndarray, rng: np.random.Generator, config: SyntheticConfig) -> None:
    """A face-free distractor: a shaded skin blob, or a head seen from behind (hair only)."""
    height, width = image.shape[:2]
    size = float(np.exp(rng.uniform(*np.log(config.face_px_range)))) * rng.uniform(0.8, 1.4)
    centre = (int(rng.integers(width)), int(rng.integers(height)))
    axes = (max(1, int(size * rng.uniform(0.35, 0.6))), max(1, int(size * rng.uniform(0.45, 0.7))))
    angle = float(rng.uniform(-40, 40))
    skin = random_skin(rng)
    if rng.random() < 0.35:
        colour = HAIR_TONES[rng.integers(len(HAIR_TONES))]
        cv2.ellipse(image, centre, axes, angle, 0, 360, colour.tolist(), -1, cv2.LINE_AA)
        return
    for step, shade in enumerate(np.linspace(0.7, 1.1, 4)):
        shrink = 1.0 - 0.2 * step
        inner = (max(1, int(axes[0] * shrink)), max(1, int(axes[1] * shrink)))
        cv2.ellipse(image, centre, inner, angle, 0, 360, (skin * shade).clip(0, 255).tolist(),
                    -1, cv2.LINE_AA)
    if rng.random() < 0.4:
        hair = HAIR_TONES[rng.integers(len(HAIR_TONES))].tolist()
        cv2.ellipse(image, centre, axes, angle, 180, 360, hair, -1, cv2.LINE_AA)


def render_background(rng: np.random.Generator, config: SyntheticConfig) -> np.ndarray:
    """A face-free scene: gradient/noise/flat base, clutter, optional blur, hard negatives."""
    image = _base_layer(rng, config.height, config.width)
    _draw_clutter(image, rng, int(rng.integers(config.clutter_range[0],
                                               config.clutter_range[1] + 1)))
    if rng.random() < 0.4:
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(1.0, 6.0)))
    for _ in range(int(rng.integers(config.negatives_range[0], config.negatives_range[1] + 1))):
        _draw_negative(image, rng, config)
    if rng.random() < 0.5:
        image = add_noise(image, rng, rng.uniform(*_BACKGROUND_NOISE_SIGMA))
    return image
