"""Reading images and normalising arrays to 3-channel BGR uint8, with clear errors."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mos_ros.core.errors import ImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm",
                            ".pgm"})
#: Images whose side exceeds this are refused: decoding them would exhaust memory.
MAX_IMAGE_SIDE = 32768


@dataclass(frozen=True)
class Frame:
    """One image to process and the name its outputs get."""

    name: str
    image: np.ndarray | None
    error: str | None = None


def check_bgr_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` if it is a non-empty BGR uint8 (H, W, 3) array, else raise ImageError."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy BGR image, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ImageError(f"expected a BGR colour image of shape (H, W, 3), "
                         f"got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ImageError(f"expected uint8 pixels, got {image.dtype}")
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR uint8 (grayscale and alpha images are converted)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise ImageError(f"{path}: file is empty")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"{path}: not a readable image (unknown format or corrupt data)")
    try:
        return to_bgr(image)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a contiguous (H, W, 3) BGR uint8 array.

    Accepts (H, W) and (H, W, 1) grayscale, (H, W, 3) BGR and (H, W, 4) BGRA, in uint8 or
    uint16 (scaled down to 8 bits). Anything else raises :class:`ImageError` saying why.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy image array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {image.shape}")
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ImageError(f"image is empty ({height}x{width})")
    if max(height, width) > MAX_IMAGE_SIDE:
        raise ImageError(f"image is {width}x{height}; the largest side allowed is "
                         f"{MAX_IMAGE_SIDE}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(height, width), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)
