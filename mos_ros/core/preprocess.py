"""Turning a BGR image into the network input, and mapping network pixels back to the image."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """How an image was placed into the network input.

    The image is scaled by ``scale`` (same factor on both axes) and put at the top-left corner
    of an ``input_height`` x ``input_width`` canvas; the rest is filled with the mean colour,
    which is zero after mean subtraction.
    """

    scale: float
    image_height: int
    image_width: int
    input_height: int
    input_width: int

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2k) x/y coordinates in network-input pixels to image pixels."""
        return np.asarray(points, dtype=np.float64) / self.scale

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2k) x/y coordinates in image pixels to network-input pixels."""
        return np.asarray(points, dtype=np.float64) * self.scale


#: Network inputs are padded to a multiple of the coarsest stride so every level aligns.
SIZE_MULTIPLE = 32

InputSize = int | tuple[int, int] | None


def letterbox_for(image_hw: tuple[int, int], input_size: InputSize) -> Letterbox:
    """The placement of an image of size ``image_hw`` into the network input.

    ``input_size`` is a fixed (height, width) canvas, or an int: the long side the image is
    scaled to, the canvas then being padded up to a multiple of :data:`SIZE_MULTIPLE`;
    ``None`` feeds the image at its own size.
    """
    height, width = image_hw
    if input_size is None:
        return Letterbox(1.0, height, width, height, width)
    if isinstance(input_size, int):
        if input_size <= 0:
            raise ValueError(f"input long side must be positive, got {input_size}")
        scale = input_size / max(height, width)
        in_h, in_w = (_round_up(side * scale) for side in (height, width))
        return Letterbox(scale, height, width, in_h, in_w)
    in_h, in_w = input_size
    if in_h <= 0 or in_w <= 0:
        raise ValueError(f"input size must be positive, got {in_h}x{in_w}")
    scale = min(in_h / height, in_w / width)
    return Letterbox(scale, height, width, in_h, in_w)


def _round_up(length: float) -> int:
    """Smallest multiple of SIZE_MULTIPLE holding ``length`` pixels (rounded)."""
    pixels = max(1, round(length))
    return -(-pixels // SIZE_MULTIPLE) * SIZE_MULTIPLE


def prepare(image: np.ndarray, input_size: InputSize,
            mean: tuple[float, float, float]) -> tuple[np.ndarray, Letterbox]:
    """BGR uint8 (H, W, 3) -> float32 (1, 3, h, w) network input, mean subtracted, no scaling.

    The image is resized keeping its aspect ratio and padded at the bottom/right (see
    :func:`letterbox_for` for ``input_size``).
    """
    box = letterbox_for(image.shape[:2], input_size)
    resized_w = min(box.input_width, max(1, round(box.image_width * box.scale)))
    resized_h = min(box.input_height, max(1, round(box.image_height * box.scale)))
    if (resized_h, resized_w) != image.shape[:2]:
        interpolation = cv2.INTER_AREA if box.scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (resized_w, resized_h), interpolation=interpolation)
    batch = np.zeros((1, 3, box.input_height, box.input_width), dtype=np.float32)
    planes = image.transpose(2, 0, 1).astype(np.float32)
    planes -= np.asarray(mean, dtype=np.float32)[:, None, None]
    batch[0, :, :resized_h, :resized_w] = planes
    return batch, box
