"""Geometric augmentation for training: horizontal mirror, random square crop, resizing.

Photometric changes live in :mod:`mos_ros.scenes.photometric`. Labels travel with the image
as :class:`FaceLabels` in pixel coordinates (x right, y down, origin at the top-left corner of
the top-left pixel). Every function takes an explicit ``numpy.random.Generator`` so a sample
is reproducible from its seed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from mos_ros.core.labels import MIRRORED_LANDMARK_ORDER, FaceLabels
from mos_ros.core.pose import mirror_poses


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
    poses = mirror_poses(labels.poses)
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
