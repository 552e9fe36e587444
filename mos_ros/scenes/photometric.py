"""Photometric changes of a whole image: colour, blur, noise, JPEG; labels are unaffected.

Every function takes an explicit ``numpy.random.Generator`` so a scene or a training sample is
reproducible from its seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

_MAX_UINT8 = 255.0
_NOISE_FIELD_SIZE = 1024
_NOISE_FIELD_SEED = 20211122


@dataclass(frozen=True)
class PhotometricConfig:
    """Probabilities and ranges of the colour and quality changes applied to a whole image."""

    brightness_delta: float = 32.0
    contrast_range: tuple[float, float] = (0.6, 1.4)
    saturation_range: tuple[float, float] = (0.5, 1.5)
    hue_delta_deg: float = 10.0
    grey_probability: float = 0.05
    blur_probability: float = 0.25
    blur_sigma_range: tuple[float, float] = (0.4, 1.6)
    motion_blur_probability: float = 0.08
    motion_blur_max_px: int = 9
    noise_probability: float = 0.3
    noise_sigma_range: tuple[float, float] = (2.0, 10.0)
    jpeg_probability: float = 0.4
    jpeg_quality_range: tuple[int, int] = (30, 95)


@lru_cache(maxsize=1)
def _noise_field() -> np.ndarray:
    """A fixed field of standard normal values; windows of it serve as per-image noise.

    Drawing fresh normals for every pixel dominates the cost of a scene; a random window of
    a larger fixed field (random offset and orientation) is as good for training and cheap.
    """
    field = np.random.default_rng(_NOISE_FIELD_SEED).standard_normal(
        (_NOISE_FIELD_SIZE, _NOISE_FIELD_SIZE), dtype=np.float32)
    field.setflags(write=False)
    return field


def add_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Add Gaussian noise of ``sigma`` grey levels (the same on all channels), saturating."""
    height, width = image.shape[:2]
    field = _noise_field()
    if rng.random() < 0.5:
        field = field.T
    if height > field.shape[0] or width > field.shape[1]:
        noise = rng.standard_normal((height, width), dtype=np.float32)
    else:
        y0 = int(rng.integers(0, field.shape[0] - height + 1))
        x0 = int(rng.integers(0, field.shape[1] - width + 1))
        noise = field[y0:y0 + height, x0:x0 + width]
    noise = cv2.cvtColor(noise * np.float32(sigma), cv2.COLOR_GRAY2BGR)
    return cv2.add(image, noise, dtype=cv2.CV_8U)


def _affine_lut(gain: float, bias: float) -> np.ndarray:
    levels = np.arange(256, dtype=np.float32) * np.float32(gain) + np.float32(bias)
    return np.clip(np.round(levels), 0, _MAX_UINT8).astype(np.uint8)


def adjust_colour(image: np.ndarray, rng: np.random.Generator,
                  config: PhotometricConfig) -> np.ndarray:
    """Random brightness, contrast, saturation and hue (each with probability one half)."""
    gain, bias = 1.0, 0.0
    if rng.random() < 0.5:
        bias += rng.uniform(-config.brightness_delta, config.brightness_delta)
    if rng.random() < 0.5:
        contrast = rng.uniform(*config.contrast_range)
        mean = float(np.mean(cv2.mean(image)[:3]))
        gain, bias = contrast, bias * contrast + mean * (1.0 - contrast)
    out = cv2.LUT(image, _affine_lut(gain, bias)) if (gain, bias) != (1.0, 0.0) else image
    if rng.random() < 0.5:
        hue, saturation, value = cv2.split(cv2.cvtColor(out, cv2.COLOR_BGR2HSV))
        saturation = cv2.LUT(saturation, _affine_lut(rng.uniform(*config.saturation_range), 0))
        # OpenCV stores 8-bit hue in half degrees (0..179).
        shift = int(round(rng.uniform(-1, 1) * config.hue_delta_deg / 2.0))
        hue = cv2.LUT(hue, ((np.arange(256) + shift) % 180).astype(np.uint8))
        out = cv2.cvtColor(cv2.merge([hue, saturation, value]), cv2.COLOR_HSV2BGR)
    if rng.random() < config.grey_probability:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return out


def degrade(image: np.ndarray, rng: np.random.Generator,
            config: PhotometricConfig) -> np.ndarray:
    """Random Gaussian or motion blur, sensor noise and JPEG artefacts."""
    out = image
    if rng.random() < config.blur_probability:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*config.blur_sigma_range))
    if rng.random() < config.motion_blur_probability:
        out = _motion_blur(out, rng, config.motion_blur_max_px)
    if rng.random() < config.noise_probability:
        out = add_noise(out, rng, rng.uniform(*config.noise_sigma_range))
    if rng.random() < config.jpeg_probability:
        quality = int(rng.integers(config.jpeg_quality_range[0], config.jpeg_quality_range[1] + 1))
        ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return out


def _motion_blur(image: np.ndarray, rng: np.random.Generator, max_length: int) -> np.ndarray:
    length = int(rng.integers(3, max(4, max_length + 1)))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2),
                                       float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    kernel /= max(kernel.sum(), 1e-6)
    return cv2.filter2D(image, -1, kernel)


def photometric(image: np.ndarray, rng: np.random.Generator,
                config: PhotometricConfig) -> np.ndarray:
    """Colour changes followed by quality degradation; labels are unaffected."""
    return degrade(adjust_colour(image, rng, config), rng, config)
