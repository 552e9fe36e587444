"""Face quality for picking the shot to send to recognition.

Quality is a product of terms, each in [0, 1], so one bad aspect (a profile, a blur, a tiny
face) sinks the score however good the others are:

* detector score, as the detector gives it;
* pose: cos^2(yaw) * cos^2(pitch), the shape of the ISO/IEC 29794-5 pose measure (30 degrees
  of yaw gives 0.75). Roll is not penalised: alignment rotates it away;
* size: a sigmoid of the inter-eye distance in image pixels, the resolution recognition gets;
* sharpness: the variance of the Laplacian of Gaussian of the aligned gray crop's face
  region, mapped to [0, 1] by ``v / (v + half)``. The crop has a fixed size, so the measure
  does not depend on how large the face is in the image; the Gaussian removes the content near
  the crop's pixel frequency, whose strength depends on how the crop was resampled rather than
  on the face;
* exposure (optional): the mean brightness of the face region and the share of clipped pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from mos_ros.core.align import (TEMPLATE_SIZE, landmark_problem, template_for,
                                warp_to_template)
from mos_ros.core.image_io import to_bgr
from mos_ros.core.types import Face
from mos_ros.core.validation import Rule, Validated, setting

#: Indices of the two eyes in a face's landmarks (RetinaFace order).
LEFT_EYE, RIGHT_EYE = 0, 1

#: Beyond this angle (degrees) the face points away from the camera: the pose term is 0.
MAX_POSE_ANGLE_DEG = 90.0


@dataclass(frozen=True)
class QualityConfig(Validated):
    """Constants of the quality terms; defaults suit a 112x112 ArcFace crop."""

    size_centre_px: float = setting(30.0, "Inter-eye distance at which the size term is 0.5, "
                                    "image pixels", (0.0, 10000.0))
    size_slope_px: float = setting(5.0, "Width of the size sigmoid, pixels: the term goes "
                                   "from 0.27 to 0.73 over +-1 width", (0.0, 1000.0))
    crop_size: int = setting(TEMPLATE_SIZE, "Side of the aligned crop, pixels; the sharpness "
                             "calibration assumes 112", (32, 1024))
    sharpness_sigma_px: float = setting(1.0, "Gaussian smoothing before the Laplacian, crop "
                                        "pixels (see the module docstring)", (0.0, 5.0))
    sharpness_half_variance: float = setting(20.0, "Laplacian-of-Gaussian variance of the "
                                             "aligned crop at which the sharpness term is "
                                             "0.5, > 0", (0.0, 1e6))
    face_region_margin: float = setting(0.08, "Margin around the template landmarks' bounding "
                                        "box, as a fraction of the crop size, that delimits "
                                        "the face region measured (keeps the black fill of "
                                        "off-image areas out)", (0.0, 0.25))
    use_exposure: bool = setting(False, "Whether the exposure term is computed and multiplied "
                                 "into the total")
    exposure_target: float = setting(128.0, "Face-region mean brightness that scores exposure "
                                     "1, gray level", (0.0, 255.0))
    exposure_tolerance: float = setting(128.0, "Distance of the mean from the target at which "
                                        "exposure falls to 0, gray levels", (0.0, 255.0))
    dark_clip_level: int = setting(5, "Gray levels at or below this count as clipped to black",
                                   (0, 255))
    bright_clip_level: int = setting(250, "Gray levels at or above this count as clipped to "
                                     "white", (0, 255))

    def rules(self) -> list[Rule]:
        """Allowed values of each field."""
        return [
            ("size_centre_px", self.size_centre_px >= 0.0, ">= 0"),
            ("size_slope_px", self.size_slope_px > 0.0, "> 0"),
            ("crop_size", self.crop_size >= 32, "at least 32"),
            ("sharpness_sigma_px", 0.0 <= self.sharpness_sigma_px <= 5.0, "in [0, 5]"),
            ("sharpness_half_variance", self.sharpness_half_variance > 0.0, "> 0"),
            ("face_region_margin", 0.0 <= self.face_region_margin <= 0.25, "in [0, 0.25]"),
            ("exposure_target", 0.0 < self.exposure_target < 255.0, "in (0, 255)"),
            ("exposure_tolerance", self.exposure_tolerance > 0.0, "> 0"),
            ("dark_clip_level", 0 <= self.dark_clip_level < self.bright_clip_level,
             "in [0, bright_clip_level)"),
            ("bright_clip_level", self.bright_clip_level <= 255, "at most 255"),
        ]


@dataclass(frozen=True)
class QualityTerms:
    """The quality terms of one face, each in [0, 1]; ``exposure`` is None when not used."""

    detector: float
    pose: float
    size: float
    sharpness: float
    exposure: float | None = None

    @property
    def total(self) -> float:
        """Product of all terms in use: the face's quality in [0, 1]."""
        total = self.detector * self.pose * self.size * self.sharpness
        return total if self.exposure is None else total * self.exposure


@dataclass(frozen=True)
class QualityResult:
    """Quality of one face with what it was measured on.

    ``crop`` is the aligned BGR crop, ``matrix`` the 2x3 image-to-crop transform,
    ``inter_eye_px`` the eye distance in image pixels and ``laplacian_variance`` the raw
    sharpness measure (Laplacian-of-Gaussian variance on the crop's face region).
    """

    terms: QualityTerms
    crop: np.ndarray
    matrix: np.ndarray
    inter_eye_px: float
    laplacian_variance: float


def pose_term(yaw_deg: float, pitch_deg: float) -> float:
    """cos^2(yaw) * cos^2(pitch), 0 once either angle reaches 90 degrees."""
    yaw = math.radians(min(abs(yaw_deg), MAX_POSE_ANGLE_DEG))
    pitch = math.radians(min(abs(pitch_deg), MAX_POSE_ANGLE_DEG))
    return (math.cos(yaw) * math.cos(pitch)) ** 2


def inter_eye_distance(landmarks: np.ndarray) -> float:
    """Distance in pixels between the two eye landmarks."""
    points = np.asarray(landmarks, dtype=np.float64)
    return float(np.hypot(*(points[RIGHT_EYE] - points[LEFT_EYE])))


def size_term(inter_eye_px: float, config: QualityConfig = QualityConfig()) -> float:
    """Sigmoid of the inter-eye distance: 0.5 at ``size_centre_px``."""
    z = (inter_eye_px - config.size_centre_px) / config.size_slope_px
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    return math.exp(z) / (1.0 + math.exp(z))  # same value, no overflow for very negative z


def sharpness_term(laplacian_variance: float, config: QualityConfig = QualityConfig()) -> float:
    """Saturating map of the Laplacian variance to [0, 1]: 0.5 at ``sharpness_half_variance``."""
    variance = max(laplacian_variance, 0.0)
    return variance / (variance + config.sharpness_half_variance)


def face_region(config: QualityConfig = QualityConfig()) -> tuple[slice, slice]:
    """Rows and columns of the crop covering the eyes, nose and mouth, with a margin."""
    template = template_for(config.crop_size)
    pad = config.face_region_margin * config.crop_size
    x1, y1 = np.floor(template.min(axis=0) - pad).astype(int)
    x2, y2 = np.ceil(template.max(axis=0) + pad).astype(int)
    limit = config.crop_size
    return slice(max(y1, 0), min(y2, limit)), slice(max(x1, 0), min(x2, limit))


def laplacian_variance(gray_crop: np.ndarray, config: QualityConfig = QualityConfig()) -> float:
    """Variance of the Laplacian of Gaussian over the face region of a gray crop.

    High for in-focus edges and texture, low for blur. The whole crop is filtered before the
    region is cut, so the region's border sees real neighbours.
    """
    gray = gray_crop.astype(np.float32)
    if config.sharpness_sigma_px > 0.0:
        gray = cv2.GaussianBlur(gray, (0, 0), config.sharpness_sigma_px)
    rows, cols = face_region(config)
    return float(cv2.Laplacian(gray, cv2.CV_32F)[rows, cols].astype(np.float64).var())


def exposure_term(gray_region: np.ndarray, config: QualityConfig = QualityConfig()) -> float:
    """Exposure in [0, 1]: mean near the target, times the share of unclipped pixels."""
    mean = float(gray_region.mean())
    mean_score = max(0.0, 1.0 - abs(mean - config.exposure_target) / config.exposure_tolerance)
    clipped = np.count_nonzero((gray_region <= config.dark_clip_level)
                               | (gray_region >= config.bright_clip_level))
    return mean_score * (1.0 - clipped / gray_region.size)


def validate_face(face: Face, image_shape: tuple[int, ...]) -> str | None:
    """Why ``face`` cannot be assessed, or ``None`` when it can.

    Callers skip and count faces with a reason rather than let bad detector output (NaN or
    inf values, an empty box, landmarks far outside the image) stop the stream. Never raises.
    """
    try:
        score = float(face.score)
        box = np.asarray(face.box, dtype=np.float64)
        pose = (float(face.pose.yaw), float(face.pose.pitch), float(face.pose.roll))
        landmarks = np.asarray(face.landmarks, dtype=np.float64)
    except (AttributeError, TypeError, ValueError):
        return "not a face (missing or non-numeric fields)"
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        return "score not a probability in [0, 1]"
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        return "box is not 4 finite numbers"
    if box[2] <= box[0] or box[3] <= box[1]:
        return "zero-size box"
    if not all(math.isfinite(angle) for angle in pose):
        return "pose contains NaN or inf"
    return landmark_problem(landmarks, image_shape)


def assess(face: Face, image: np.ndarray,
           config: QualityConfig = QualityConfig()) -> QualityResult:
    """Align ``face`` and measure its quality terms on ``image`` (BGR uint8).

    Raises ``ValueError`` with the reason for a face :func:`validate_face` rejects and
    :class:`mos_ros.core.errors.ImageError` for an unusable image.
    """
    image = to_bgr(image)
    problem = validate_face(face, image.shape)
    if problem is not None:
        raise ValueError(problem)
    crop, matrix = warp_to_template(image, face.landmarks, config.crop_size)
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    rows, cols = face_region(config)
    eyes = inter_eye_distance(face.landmarks)
    variance = laplacian_variance(gray, config)
    terms = QualityTerms(
        detector=float(face.score),
        pose=pose_term(face.pose.yaw, face.pose.pitch),
        size=size_term(eyes, config),
        sharpness=sharpness_term(variance, config),
        exposure=exposure_term(gray[rows, cols], config) if config.use_exposure else None,
    )
    return QualityResult(terms=terms, crop=crop, matrix=matrix, inter_eye_px=eyes,
                         laplacian_variance=variance)
