"""Five-point face alignment to the common ArcFace 112x112 template.

Recognition networks trained on ArcFace-style data expect a face warped so that its five
landmarks land on fixed positions of a 112x112 crop. The warp is the least-squares similarity
transform (rotation, uniform scale, translation; never a reflection) from the detected
landmarks to that template (Umeyama, 1991), applied with ``cv2.warpAffine``.
"""
from __future__ import annotations

import cv2
import numpy as np

from mos_ros.core.errors import ImageError

#: Side in pixels of the crop the template is defined for.
TEMPLATE_SIZE = 112

#: Landmark positions (x, y) in a 112x112 crop used by ArcFace/InsightFace recognition models,
#: in the RetinaFace order of :class:`mos_ros.core.types.Face`: image-left eye, image-right eye,
#: nose tip, image-left mouth corner, image-right mouth corner. Eyes are ~35 px apart and the
#: face is centred horizontally, leaving room above the eyes for the forehead.
ARCFACE_TEMPLATE_112 = np.array([
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
], dtype=np.float64)
ARCFACE_TEMPLATE_112.setflags(write=False)

#: Landmarks may lie outside the image (a face cut by the border) by at most this fraction of
#: the image's width/height; beyond that they are detector garbage, not a face.
LANDMARK_MARGIN = 0.25

#: Smallest root-mean-square distance (pixels) of the landmarks from their centroid; below it
#: the points are (nearly) identical and define no scale or rotation.
MIN_LANDMARK_SPREAD_PX = 1.0

#: Smallest ratio of the minor to the major principal spread of the landmarks; below it they
#: are (nearly) collinear, which no face produces, and the fitted rotation would be arbitrary.
MIN_LANDMARK_ASPECT = 0.05

NUM_LANDMARKS = 5


def template_for(size: int = TEMPLATE_SIZE) -> np.ndarray:
    """Template landmarks scaled to a ``size`` x ``size`` crop."""
    return template_in(size, size)


def template_in(width: int, height: int) -> np.ndarray:
    """Template landmarks in a ``width`` x ``height`` crop: scaled to its shorter side and
    centred, so a crop that is not square has the template's face with margins on two sides."""
    side = min(width, height)
    margins = np.array([width - side, height - side], dtype=np.float64) / 2.0
    return ARCFACE_TEMPLATE_112 * (float(side) / TEMPLATE_SIZE) + margins


def landmark_problem(landmarks: np.ndarray, image_shape: tuple[int, ...] | None = None,
                     margin: float = LANDMARK_MARGIN) -> str | None:
    """Why ``landmarks`` cannot be aligned, or ``None`` when they can.

    Checks the shape (5, 2), finiteness, that the points lie within ``margin`` of the image
    (when ``image_shape`` is given) and that they are neither identical nor collinear.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (NUM_LANDMARKS, 2):
        return f"landmarks must have shape (5, 2), got {points.shape}"
    if not np.all(np.isfinite(points)):
        return "landmarks contain NaN or inf"
    if image_shape is not None and not _inside_image(points, image_shape, margin):
        return "landmarks far outside the image"
    return _degeneracy(points)


def _inside_image(points: np.ndarray, image_shape: tuple[int, ...], margin: float) -> bool:
    """Whether every point lies within ``margin`` (fraction of the size) of the image."""
    height, width = image_shape[:2]
    low = -margin * np.array([width, height], dtype=np.float64)
    high = (1.0 + margin) * np.array([width, height], dtype=np.float64)
    return bool(np.all((points >= low) & (points <= high)))


def _degeneracy(points: np.ndarray) -> str | None:
    """Reason why the points define no similarity transform (identical or collinear)."""
    centred = points - points.mean(axis=0)
    spreads = np.linalg.svd(centred, compute_uv=False) / np.sqrt(len(points))
    if np.hypot(*spreads) < MIN_LANDMARK_SPREAD_PX:
        return "landmarks are (nearly) identical points"
    if spreads[1] < MIN_LANDMARK_ASPECT * spreads[0]:
        return "landmarks are (nearly) collinear"
    return None


def fit_similarity(src_points: np.ndarray, dst_points: np.ndarray
                   ) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares ``dst ~ scale * R @ src + t`` for (N, D) point sets: scale, R (D x D), t.

    Umeyama's closed form (IEEE TPAMI 1991) restricted to proper rotations (det R = +1), so a
    mirrored point set is fitted by the best rotation rather than a reflection. Used for 2-D
    landmark alignment and for fitting the 3-D face mesh. Raises ``ValueError`` for unusable
    points.
    """
    src = np.asarray(src_points, dtype=np.float64)
    dst = np.asarray(dst_points, dtype=np.float64)
    if src.ndim != 2 or src.shape != dst.shape or len(src) < src.shape[1]:
        raise ValueError(f"need two (N, D) point sets of equal shape with N >= D, got "
                         f"{src.shape} and {dst.shape}")
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(dst))):
        raise ValueError("points contain NaN or inf")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_variance = np.sum(src_c ** 2) / len(src)
    if src_variance < MIN_LANDMARK_SPREAD_PX ** 2:
        raise ValueError("source points are (nearly) identical; no scale or rotation defined")
    u, singular, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    signs = np.ones(src.shape[1])
    signs[-1] = 1.0 if np.linalg.det(u @ vt) > 0 else -1.0
    rotation = u @ np.diag(signs) @ vt
    scale = float(np.sum(singular * signs)) / src_variance
    return scale, rotation, dst_mean - scale * rotation @ src_mean


def similarity_transform(src_points: np.ndarray, dst_points: np.ndarray) -> np.ndarray:
    """Least-squares similarity (2x3) mapping (N, 2) ``src_points`` onto ``dst_points``
    (:func:`fit_similarity` in matrix form). Raises ``ValueError`` for unusable points."""
    src = np.asarray(src_points, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2:
        raise ValueError(f"need two (N, 2) point sets of equal shape, got {src.shape} "
                         f"and {np.shape(dst_points)}")
    scale, rotation, translation = fit_similarity(src, dst_points)
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = translation
    return matrix


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a 2x3 affine matrix."""
    points = np.asarray(points, dtype=np.float64)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def align_face(image_bgr: np.ndarray, landmarks: np.ndarray, size: int = TEMPLATE_SIZE,
               antialias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Warp the face to the ArcFace template: (``size`` x ``size`` x 3 uint8 crop, 2x3 matrix).

    The matrix maps image pixels to crop pixels. Areas outside the image are black, as in the
    data recognition models are trained on. With ``antialias``, a face larger than the crop is
    first area-averaged down to the crop's scale, so that pixel noise does not alias into the
    crop and the crop's detail does not depend on how large the face was in the image.
    Raises :class:`ImageError` for an unusable image and ``ValueError`` naming the problem for
    unusable landmarks.
    """
    _check_image(image_bgr)
    if size < 1:
        raise ValueError(f"crop size must be at least 1 pixel, got {size}")
    problem = landmark_problem(landmarks, image_bgr.shape)
    if problem is not None:
        raise ValueError(problem)
    return warp_to_template(image_bgr, landmarks, size, antialias)


def warp_to_template(image_bgr: np.ndarray, landmarks: np.ndarray, size: int = TEMPLATE_SIZE,
                     antialias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """:func:`align_face` without its input checks, for callers that have made them."""
    matrix = similarity_transform(landmarks, template_for(size))
    return warp(image_bgr, matrix, size, size, antialias), matrix


def warp(image_bgr: np.ndarray, matrix: np.ndarray, width: int, height: int,
         antialias: bool = True) -> np.ndarray:
    """The ``width`` x ``height`` crop that the 2x3 similarity ``matrix`` (image pixels to crop
    pixels) makes of ``image_bgr``; black outside the image. With ``antialias``, a region
    shrunk by the warp is area-averaged to the crop's scale first (see :func:`align_face`)."""
    source, source_matrix = image_bgr, matrix
    if antialias and _scale_of(matrix) < 1.0:
        source, source_matrix = _area_reduced(image_bgr, matrix, width, height)
    return cv2.warpAffine(source, source_matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def _scale_of(matrix: np.ndarray) -> float:
    """Uniform scale factor of a 2x3 similarity matrix."""
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def _area_reduced(image: np.ndarray, matrix: np.ndarray, crop_width: int,
                  crop_height: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-resize the image region under the crop to the crop's scale; return it and its matrix.

    Only the region under the crop (plus a pixel of the reduced image for interpolation) is
    resized, so the cost depends on the face, not on the image size.
    """
    scale = _scale_of(matrix)
    inverse = cv2.invertAffineTransform(matrix)
    corners = apply_transform(inverse, np.array([[0, 0], [crop_width, 0], [0, crop_height],
                                                [crop_width, crop_height]]))
    pad = 2.0 / scale
    height, width = image.shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(axis=0) - pad), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0) + pad), [width, height]).astype(int)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image, matrix  # the crop lies (almost) entirely outside the image
    out_w, out_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    reduced = cv2.resize(image[y0:y1, x0:x1], (out_w, out_h), interpolation=cv2.INTER_AREA)
    # Reduced pixel r has its centre at image pixel (r + 0.5) / s - 0.5 + origin.
    sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
    to_image = np.array([[1.0 / sx, 0.0, 0.5 / sx - 0.5 + x0],
                         [0.0, 1.0 / sy, 0.5 / sy - 0.5 + y0]])
    combined = np.empty((2, 3))
    combined[:, :2] = matrix[:, :2] @ to_image[:, :2]
    combined[:, 2] = matrix[:, :2] @ to_image[:, 2] + matrix[:, 2]
    return reduced, combined


def _check_image(image: np.ndarray) -> None:
    """Raise :class:`ImageError` unless ``image`` is a non-empty (H, W, 3) uint8 array."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy image array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"expected a non-empty HxWx3 BGR image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ImageError(f"expected uint8 pixels, got {image.dtype}")
