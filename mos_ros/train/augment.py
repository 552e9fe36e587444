"""Image augmentation for training: photometric changes, horizontal mirror, random square crop.

Labels travel with the image as :class:`FaceLabels` in pixel coordinates (x right, y down,
origin at the top-left corner of the top-left pixel). Every function takes an explicit
``numpy.random.Generator`` so a sample is reproducible from its seed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from mos_ros.train.face_mesh import MIRRORED_LANDMARK_ORDER

_MAX_UINT8 = 255.0
_NOISE_FIELD_SIZE = 1024
_NOISE_FIELD_SEED = 20211122


@dataclass(frozen=True)
class FaceLabels:
    """Per-face labels of one image; M faces.

    ``boxes`` (M, 4) x1y1x2y2 pixels; ``landmarks`` (M, 5, 2) pixels in the RetinaFace order;
    ``poses`` (M, 3) yaw, pitch, roll degrees (:mod:`mos_ros.core.pose`); ``has_landmarks`` and
    ``has_pose`` (M,) say which faces carry those labels (others are masked in the loss).
    """

    boxes: np.ndarray
    landmarks: np.ndarray
    poses: np.ndarray
    has_landmarks: np.ndarray
    has_pose: np.ndarray

    @classmethod
    def complete(cls, boxes, landmarks, poses) -> FaceLabels:
        """Labels where every face has landmarks and a pose (the synthetic case)."""
        count = len(boxes)
        return cls(np.asarray(boxes, np.float32).reshape(count, 4),
                   np.asarray(landmarks, np.float32).reshape(count, 5, 2),
                   np.asarray(poses, np.float32).reshape(count, 3),
                   np.ones(count, bool), np.ones(count, bool))

    def __len__(self) -> int:
        """Number of faces."""
        return len(self.boxes)

    def select(self, keep: np.ndarray) -> FaceLabels:
        """The faces where ``keep`` (bool mask or indices) selects them."""
        return FaceLabels(self.boxes[keep], self.landmarks[keep], self.poses[keep],
                          self.has_landmarks[keep], self.has_pose[keep])


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


def flip_horizontal(image: np.ndarray, labels: FaceLabels) -> tuple[np.ndarray, FaceLabels]:
    """Mirror image and labels left-right.

    x becomes width - x; the eyes and the mouth corners swap so the first eye stays the
    image-left one; yaw and roll change sign (a mirror reverses rotations about the vertical
    and the optical axis), pitch is unchanged.
    """
    width = image.shape[1]
    boxes = labels.boxes.copy()
    boxes[:, [0, 2]] = width - labels.boxes[:, [2, 0]]
    landmarks = labels.landmarks[:, list(MIRRORED_LANDMARK_ORDER)].copy()
    landmarks[..., 0] = width - landmarks[..., 0]
    poses = labels.poses * np.array([-1.0, 1.0, -1.0], dtype=np.float32)
    flipped = replace(labels, boxes=boxes, landmarks=landmarks, poses=poses)
    return np.ascontiguousarray(image[:, ::-1]), flipped


@dataclass(frozen=True)
class CropConfig:
    """Random square crop (RetinaFace style) as fractions of the image's short side.

    A face is kept when its box centre lies inside the crop and its size in the network input
    is at least ``min_face_px``; kept boxes and landmarks are clipped to the crop only for the
    box (landmarks may lie outside, they are still regressed).
    """

    scales: tuple[float, ...] = (0.5, 0.7, 0.85, 1.0, 1.0)
    min_face_px: float = 4.0
    tries: int = 25


def random_square_crop(image: np.ndarray, labels: FaceLabels, rng: np.random.Generator,
                       config: CropConfig, output_size: int) -> tuple[np.ndarray, FaceLabels]:
    """Crop a random square holding at least one face centre, resized to ``output_size``.

    Falls back to the whole image padded to a square when no try keeps a face (an image
    without faces is a valid all-negative sample).
    """
    height, width = image.shape[:2]
    for _ in range(config.tries):
        side = int(config.scales[rng.integers(len(config.scales))] * min(height, width))
        x0 = int(rng.integers(0, width - side + 1))
        y0 = int(rng.integers(0, height - side + 1))
        cropped = _crop_labels(labels, x0, y0, side, output_size / side, config.min_face_px)
        if len(cropped) or not len(labels):
            patch = image[y0:y0 + side, x0:x0 + side]
            return _resize_square(patch, output_size), cropped
    return pad_to_square(image, labels, output_size)


def pad_to_square(image: np.ndarray, labels: FaceLabels,
                  output_size: int) -> tuple[np.ndarray, FaceLabels]:
    """Place the whole image at the top-left of a square canvas and resize it."""
    height, width = image.shape[:2]
    side = max(height, width)
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[:height, :width] = image
    return _resize_square(canvas, output_size), scale_labels(labels, output_size / side)


def _resize_square(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size:
        return np.ascontiguousarray(image)
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def scale_labels(labels: FaceLabels, factor: float) -> FaceLabels:
    """Labels of the image resized by ``factor`` on both axes."""
    return replace(labels, boxes=labels.boxes * factor, landmarks=labels.landmarks * factor)


def _crop_labels(labels: FaceLabels, x0: int, y0: int, side: int, factor: float,
                 min_face_px: float) -> FaceLabels:
    centres = (labels.boxes[:, :2] + labels.boxes[:, 2:]) / 2.0
    inside = np.all((centres >= (x0, y0)) & (centres < (x0 + side, y0 + side)), axis=1)
    shifted = replace(labels, boxes=labels.boxes - np.float32([x0, y0, x0, y0]),
                      landmarks=labels.landmarks - np.float32([x0, y0]))
    kept = shifted.select(inside)
    boxes = np.clip(kept.boxes, 0, side) * factor
    sizes = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    large = sizes >= min_face_px
    return replace(kept, boxes=boxes, landmarks=kept.landmarks * factor).select(large)
