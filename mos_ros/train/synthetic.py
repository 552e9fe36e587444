"""Synthetic face scenes with exact box, landmark and head-pose labels.

Faces are rendered from the canonical face mesh (:mod:`mos_ros.train.face_mesh`) at a known
yaw/pitch/roll (convention of :mod:`mos_ros.core.pose`), with Lambert shading from a random
light, painted eyes, brows and lips, and a head, hair and neck behind them, onto cluttered
backgrounds that include face-free heads and skin-coloured blobs as hard negatives.

Labels per face, in pixels of the returned image (origin at the top-left pixel's corner):

* box: the tight box of all projected mesh vertices, forehead to chin and cheek to cheek
  (the extent WIDER FACE boxes mark);
* five landmarks in the RetinaFace order (image-left eye, image-right eye, nose tip, image-left
  and image-right mouth corner, where "image-left" is the side that is on the image left when
  the face is frontal). An occluded landmark (the far eye of a profile face) still gets its
  projected position;
* yaw, pitch, roll in degrees, exactly the angles the mesh was rotated by.

Each face is rendered in perspective about its own centre (a camera straight in front of it),
then placed in the scene, so the pose label matches the appearance wherever the face lands.
"""
from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from mos_ros.core.pose import euler_to_matrix
from mos_ros.train.augment import FaceLabels, PhotometricConfig, add_noise, photometric
from mos_ros.train.face_mesh import FaceMesh, load_face_mesh
from mos_ros.train.labels import IMAGES_DIR_NAME, LabelledImage, write_label_file

LOG = logging.getLogger(__name__)

#: Sub-pixel bits for cv2 polygon filling (coordinates are scaled by 2**bits).
_SHIFT_BITS = 4
_SHIFT_SCALE = float(1 << _SHIFT_BITS)
_OPAQUE = 255

#: Representative skin albedos (BGR, 0..255) from light to dark; faces interpolate between them.
SKIN_TONES = np.array([[196, 214, 244], [160, 190, 232], [128, 166, 214], [98, 138, 190],
                       [70, 104, 152], [48, 74, 112], [34, 52, 80]], dtype=np.float32)
#: Hair colours (BGR): black, dark brown, brown, auburn, blond, grey.
HAIR_TONES = np.array([[20, 20, 22], [28, 38, 56], [40, 62, 96], [40, 60, 130],
                       [100, 160, 200], [160, 160, 165]], dtype=np.float32)

#: Head geometry in the head body frame (cm): ellipsoid centre and semi-axes
#: (front-back, left-right, up-down), neck centre line and radius.
HEAD_CENTRE = np.array([-2.5, 0.0, 2.5], dtype=np.float32)
HEAD_RADII = np.array([10.0, 8.2, 12.0], dtype=np.float32)
HAIRLINE_HEIGHT_CM = 6.5
NECK_TOP = np.array([-3.5, 0.0, -6.0], dtype=np.float32)
NECK_LENGTH_CM = 14.0
NECK_RADIUS_CM = 5.5

#: Points on a unit sphere used to project the head ellipsoid's silhouette.
_SPHERE_POINTS = 160

#: Brow vertex indices (MediaPipe), image-left and image-right of a frontal face.
_BROWS = ((46, 53, 52, 65, 55, 70, 63, 105, 66, 107),
          (276, 283, 282, 295, 285, 300, 293, 334, 296, 336))
#: Outer lip contour (MediaPipe).
_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40,
         185)
_EYE_RINGS = ((33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
              (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398))
_IRIS_RADIUS_CM = 0.5
#: Grid size of the coarse gradient image that is resized to the scene.
_COARSE = 16
_BACKGROUND_NOISE_SIGMA = (2.0, 12.0)
#: Reach of head/hair around and of the neck below a face box, in face sizes (placement).
_HEAD_MARGIN = 0.6
_NECK_MARGIN = 1.1
_LID_BAND_CM = 0.35


@dataclass(frozen=True)
class SyntheticConfig:
    """What a synthetic scene looks like; every random choice is drawn from these ranges.

    Face size is the long side of the face box in pixels, drawn log-uniformly. Angles are drawn
    from a Gaussian around frontal with probability ``frontal_fraction``, else uniformly within
    the limits. ``distance_range`` is the camera distance in face heights (perspective).
    """

    width: int = 640
    height: int = 640
    faces_range: tuple[int, int] = (1, 8)
    face_px_range: tuple[float, float] = (12.0, 400.0)
    yaw_limit_deg: float = 90.0
    pitch_limit_deg: float = 45.0
    roll_limit_deg: float = 40.0
    frontal_fraction: float = 0.6
    yaw_sigma_deg: float = 25.0
    pitch_sigma_deg: float = 12.0
    roll_sigma_deg: float = 10.0
    distance_range: tuple[float, float] = (2.5, 12.0)
    max_occlusion: float = 0.15
    placement_tries: int = 30
    head_probability: float = 0.9
    negatives_range: tuple[int, int] = (0, 6)
    clutter_range: tuple[int, int] = (0, 40)
    augment_probability: float = 0.8
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)

    def __post_init__(self) -> None:
        """Reject ranges that cannot produce a scene."""
        if self.width < 16 or self.height < 16:
            raise ValueError("scene must be at least 16x16 pixels, "
                             f"got {self.width}x{self.height}")
        low, high = self.face_px_range
        if not 0 < low <= high <= min(self.width, self.height):
            raise ValueError(f"face_px_range {self.face_px_range} must lie in "
                             f"(0, {min(self.width, self.height)}] and be ordered")
        if not 0 <= self.faces_range[0] <= self.faces_range[1]:
            raise ValueError(f"faces_range {self.faces_range} must be ordered and >= 0")
        if not 0 < self.distance_range[0] <= self.distance_range[1]:
            raise ValueError(f"distance_range {self.distance_range} must be positive, ordered")


@dataclass(frozen=True)
class Scene:
    """A rendered scene: the background alone, the image and the labels of its faces."""

    background: np.ndarray
    image: np.ndarray
    labels: FaceLabels


# --------------------------------------------------------------------------------------------
# Mesh painting (computed once)


@dataclass(frozen=True)
class _Paint:
    """Per-triangle feature masks of the mesh, computed once from the frontal layout."""

    sclera: np.ndarray
    iris: np.ndarray
    lid: np.ndarray
    brow: np.ndarray
    lips: np.ndarray


def _inside(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    contour = polygon.reshape(-1, 1, 2).astype(np.float32)
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0
                     for x, y in points])


@lru_cache(maxsize=1)
def _paint_masks() -> _Paint:
    mesh = load_face_mesh()
    xy = mesh.frontal_xy
    centroids = xy[mesh.triangles].mean(axis=1)
    eye = np.zeros(len(centroids), bool)
    iris = np.zeros_like(eye)
    lid = np.zeros_like(eye)
    for ring in _EYE_RINGS:
        ring_xy = xy[list(ring)]
        inside = _inside(ring_xy, centroids)
        eye |= inside
        iris |= inside & (np.linalg.norm(centroids - ring_xy.mean(0), axis=1) < _IRIS_RADIUS_CM)
        top = ring_xy[:, 1].max()
        near_x = (centroids[:, 0] > ring_xy[:, 0].min()) & (centroids[:, 0] < ring_xy[:, 0].max())
        above = ((centroids[:, 1] >= top - _LID_BAND_CM / 2)
                 & (centroids[:, 1] < top + _LID_BAND_CM))
        lid |= near_x & above & ~inside
    brow = np.zeros_like(eye)
    for indices in _BROWS:
        hull = cv2.convexHull(xy[list(indices)].astype(np.float32))
        brow |= _inside(hull.reshape(-1, 2), centroids)
    lips = _inside(xy[list(_LIPS)], centroids)
    return _Paint(sclera=eye & ~iris, iris=iris, lid=lid, brow=brow, lips=lips)


@lru_cache(maxsize=1)
def _unit_sphere() -> np.ndarray:
    """Evenly spread points on the unit sphere (Fibonacci lattice)."""
    index = np.arange(_SPHERE_POINTS) + 0.5
    polar = np.arccos(1.0 - 2.0 * index / _SPHERE_POINTS)
    azimuth = np.pi * (1.0 + 5 ** 0.5) * index
    return np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar),
                     np.cos(polar)], axis=1).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Random face appearance


@dataclass(frozen=True)
class _Look:
    """Colours and lighting of one face."""

    skin: np.ndarray
    hair: np.ndarray
    hair_style: int
    light: np.ndarray
    ambient: float
    tint: np.ndarray
    has_head: bool


_HAIR_BALD, _HAIR_SHORT, _HAIR_LONG = 0, 1, 2


def _random_skin(rng: np.random.Generator) -> np.ndarray:
    position = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(position)
    high = min(low + 1, len(SKIN_TONES) - 1)
    skin = SKIN_TONES[low] + (SKIN_TONES[high] - SKIN_TONES[low]) * (position - low)
    return np.clip(skin * rng.uniform(0.9, 1.1, 3), 0, 255).astype(np.float32)


def _random_look(rng: np.random.Generator, config: SyntheticConfig) -> _Look:
    light = np.array([rng.uniform(-1.2, 1.2), rng.uniform(-1.2, 0.8), -1.0], np.float32)
    return _Look(
        skin=_random_skin(rng),
        hair=HAIR_TONES[rng.integers(len(HAIR_TONES))] * rng.uniform(0.8, 1.2),
        hair_style=int(rng.integers(3)),
        light=light / np.linalg.norm(light),
        ambient=float(rng.uniform(0.3, 0.65)),
        tint=rng.uniform(0.85, 1.15, 3).astype(np.float32),
        has_head=bool(rng.random() < config.head_probability))


def _albedo(rng: np.random.Generator, look: _Look) -> np.ndarray:
    """Per-triangle base colour: skin with painted sclera, iris, lids, brows and lips."""
    paint = _paint_masks()
    count = len(paint.iris)
    albedo = np.repeat(look.skin[None], count, axis=0)
    albedo *= rng.normal(1.0, 0.035, (count, 1)).astype(np.float32)
    lip_colour = look.skin * np.float32([0.62, 0.6, 0.85]) * rng.uniform(0.75, 1.0)
    brow_colour = look.hair * 0.8 + look.skin * 0.2 * rng.uniform(0.3, 1.0)
    albedo[paint.lips] = lip_colour
    albedo[paint.brow] = brow_colour
    albedo[paint.lid] = look.skin * rng.uniform(0.25, 0.5)
    albedo[paint.sclera] = rng.uniform(170, 235) * np.float32([1.0, 1.0, 0.97])
    albedo[paint.iris] = rng.uniform(15, 70) * rng.uniform(0.7, 1.0, 3)
    return albedo


def _sample_angle(rng: np.random.Generator, limit: float, sigma: float,
                  frontal_fraction: float) -> float:
    if rng.random() < frontal_fraction:
        return float(np.clip(rng.normal(0.0, sigma), -limit, limit))
    return float(rng.uniform(-limit, limit))


def sample_pose(rng: np.random.Generator, config: SyntheticConfig) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees, concentrated near frontal (see :class:`SyntheticConfig`)."""
    return (_sample_angle(rng, config.yaw_limit_deg, config.yaw_sigma_deg,
                          config.frontal_fraction),
            _sample_angle(rng, config.pitch_limit_deg, config.pitch_sigma_deg,
                          config.frontal_fraction),
            _sample_angle(rng, config.roll_limit_deg, config.roll_sigma_deg,
                          config.frontal_fraction))


# --------------------------------------------------------------------------------------------
# Geometry


@dataclass(frozen=True)
class FaceGeometry:
    """A face posed in the camera frame and projected to unit-scale image coordinates.

    ``project(points)`` results are in "units" where the face box's long side is
    ``box_side``; multiply by a pixel scale and add an offset to place the face.
    """

    rotation: np.ndarray
    depth_cm: float
    vertices: np.ndarray
    camera_vertices: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray

    @property
    def box_side(self) -> float:
        """Long side of the unit-scale face box."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    def project(self, head_points: np.ndarray) -> np.ndarray:
        """Perspective projection of head-frame points (cm) about the face's own centre."""
        camera = head_points @ self.rotation.T
        return camera[:, :2] * (self.depth_cm / (camera[:, 2:3] + self.depth_cm))


def pose_face(yaw: float, pitch: float, roll: float, distance_faces: float,
              mesh: FaceMesh | None = None) -> FaceGeometry:
    """Rotate the mesh by ``euler_to_matrix(yaw, pitch, roll)`` and project it.

    ``distance_faces`` is the camera distance in face heights; larger is flatter.
    """
    mesh = mesh or load_face_mesh()
    rotation = euler_to_matrix(yaw, pitch, roll).astype(np.float32)
    depth = float(distance_faces * mesh.height_cm)
    camera = mesh.vertices @ rotation.T
    projected = camera[:, :2] * (depth / (camera[:, 2:3] + depth))
    landmarks_camera = mesh.landmarks @ rotation.T
    landmarks = landmarks_camera[:, :2] * (depth / (landmarks_camera[:, 2:3] + depth))
    box = np.concatenate([projected.min(axis=0), projected.max(axis=0)])
    return FaceGeometry(rotation=rotation, depth_cm=depth, vertices=projected,
                        camera_vertices=camera, landmarks=landmarks, box=box)


def _head_shapes(geometry: FaceGeometry, look: _Look) -> list[tuple[np.ndarray, np.ndarray]]:
    """Convex outlines (unit-scale points) and colours drawn behind the face, back first."""
    if not look.has_head:
        return []
    sphere = _unit_sphere() * HEAD_RADII + HEAD_CENTRE
    neck_ring = _unit_sphere() * np.float32([NECK_RADIUS_CM, NECK_RADIUS_CM, 0.0])
    neck = np.concatenate([neck_ring + NECK_TOP,
                           neck_ring + NECK_TOP - np.float32([0, 0, NECK_LENGTH_CM])])
    skin_shadow = look.skin * 0.75
    shapes = [(geometry.project(neck), skin_shadow)]
    if look.hair_style == _HAIR_LONG:
        shapes.append((geometry.project(sphere * np.float32([1.05, 1.1, 1.05])), look.hair))
    shapes.append((geometry.project(sphere), skin_shadow * 1.1))
    if look.hair_style != _HAIR_BALD:
        cap = sphere[sphere[:, 2] > HAIRLINE_HEIGHT_CM] * np.float32([1.04, 1.04, 1.0])
        back = sphere[sphere[:, 0] < HEAD_CENTRE[0] - HEAD_RADII[0] * 0.4]
        shapes.append((geometry.project(np.concatenate([cap, back * 1.02])), look.hair))
    return shapes


def _triangle_colours(geometry: FaceGeometry, albedo: np.ndarray,
                      look: _Look) -> tuple[np.ndarray, np.ndarray]:
    """Visible triangles back to front and their Lambert-shaded colours."""
    mesh = load_face_mesh()
    corners = geometry.camera_vertices[mesh.triangles]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-9
    centroids = corners.mean(axis=1) + np.float32([0, 0, geometry.depth_cm])
    facing = np.einsum("ij,ij->i", normals, centroids) < 0
    order = np.flatnonzero(facing)
    order = order[np.argsort(-centroids[order, 2], kind="stable")]
    # Visible normals point toward the camera, as does ``look.light`` (surface to light).
    diffuse = np.clip(normals[order] @ look.light, 0.0, 1.0)
    shade = look.ambient + (1.0 - look.ambient) * diffuse
    colours = np.clip(albedo[order] * shade[:, None] * look.tint, 0, 255)
    return order, colours


# --------------------------------------------------------------------------------------------
# Drawing


def _supersampling(face_px: float) -> int:
    """Render small faces at a higher resolution and average down (anti-aliasing)."""
    if face_px < 32:
        return 4
    if face_px < 120:
        return 2
    return 1


def _fixed_point(points: np.ndarray) -> np.ndarray:
    # Continuous coordinates have pixel centres at +0.5; cv2 puts them at integers.
    return np.round((points - 0.5) * _SHIFT_SCALE).astype(np.int32)


def _draw_face_patch(scene: np.ndarray, geometry: FaceGeometry, look: _Look,
                     albedo: np.ndarray, scale: float, offset: np.ndarray) -> None:
    """Draw head shapes and mesh into ``scene`` (in place), anti-aliased and alpha-blended."""
    height, width = scene.shape[:2]
    shapes = [(points * scale + offset, colour) for points, colour in _head_shapes(geometry, look)]
    face_points = geometry.vertices * scale + offset
    every = np.concatenate([face_points] + [points for points, _ in shapes])
    x0, y0 = np.maximum(np.floor(every.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(every.max(axis=0)).astype(int) + 1, (width, height))
    if x1 <= x0 or y1 <= y0:
        return
    ss = _supersampling(geometry.box_side * scale)
    patch = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss, 4), np.uint8)
    origin = np.float32([x0, y0])
    for points, colour in shapes:
        hull = cv2.convexHull(_fixed_point((points - origin) * ss))
        cv2.fillConvexPoly(patch, hull, (*colour.tolist(), _OPAQUE), cv2.LINE_8, _SHIFT_BITS)
    order, colours = _triangle_colours(geometry, albedo, look)
    corners = _fixed_point((face_points - origin) * ss)[load_face_mesh().triangles[order]]
    for triangle, colour in zip(corners, colours.tolist()):
        cv2.fillConvexPoly(patch, triangle, (*colour, _OPAQUE), cv2.LINE_8, _SHIFT_BITS)
    _composite(scene, patch, ss, x0, y0)


def _composite(scene: np.ndarray, patch: np.ndarray, ss: int, x0: int, y0: int) -> None:
    """Average the supersampled premultiplied patch down and blend it over the scene."""
    if ss > 1:
        patch = cv2.resize(patch, (patch.shape[1] // ss, patch.shape[0] // ss),
                           interpolation=cv2.INTER_AREA)
    h, w = patch.shape[:2]
    alpha = patch[..., 3:4].astype(np.float32) / _OPAQUE
    region = scene[y0:y0 + h, x0:x0 + w].astype(np.float32)
    blended = patch[..., :3].astype(np.float32) + region * (1.0 - alpha)
    scene[y0:y0 + h, x0:x0 + w] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Backgrounds


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
    skin = _random_skin(rng)
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


# --------------------------------------------------------------------------------------------
# Scenes


def _overlap_fraction(region: np.ndarray, boxes: list[np.ndarray]) -> float:
    """Largest share of an earlier face box that ``region`` would cover."""
    if not boxes:
        return 0.0
    placed = np.asarray(boxes)
    inter = np.clip(np.minimum(region[2:], placed[:, 2:]) - np.maximum(region[:2], placed[:, :2]),
                    0, None).prod(axis=1)
    areas = np.maximum((placed[:, 2:] - placed[:, :2]).prod(axis=1), 1e-6)
    return float((inter / areas).max())


def _place_face(rng: np.random.Generator, config: SyntheticConfig, geometry: FaceGeometry,
                face_px: float, placed: list[np.ndarray]) -> tuple[float, np.ndarray] | None:
    """Scale and offset putting the face box inside the image, not hiding earlier faces."""
    scale = face_px / geometry.box_side
    size = (geometry.box[2:] - geometry.box[:2]) * scale
    # Head and hair reach about 0.6 face sizes beyond the box, the neck a face size below.
    before = np.full(2, size.max() * _HEAD_MARGIN, np.float32)
    after = np.array([size.max() * _HEAD_MARGIN, size.max() * _NECK_MARGIN], np.float32)
    for _ in range(config.placement_tries):
        corner = rng.uniform(0, 1, 2) * (np.float32([config.width, config.height]) - size)
        region = np.concatenate([corner - before, corner + size + after])
        if _overlap_fraction(region, placed) <= config.max_occlusion:
            return scale, (corner - geometry.box[:2] * scale).astype(np.float32)
    return None


def draw_procedural_face(image: np.ndarray, rng: np.random.Generator, config: SyntheticConfig,
                         pose: tuple[float, float, float], face_px: float,
                         centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw one procedural face (in place) with its box of long side ``face_px`` centred at
    ``centre``; returns its box (4,) and landmarks (5, 2) in image pixels."""
    geometry = pose_face(*pose, float(rng.uniform(*config.distance_range)))
    look = _random_look(rng, config)
    scale = face_px / geometry.box_side
    offset = (np.asarray(centre, np.float32)
              - (geometry.box[:2] + geometry.box[2:]) / 2 * scale).astype(np.float32)
    _draw_face_patch(image, geometry, look, _albedo(rng, look), scale, offset)
    return geometry.box * scale + np.tile(offset, 2), geometry.landmarks * scale + offset


def compose_scene(rng: np.random.Generator, config: SyntheticConfig) -> Scene:
    """Render background and faces, then the photometric augmentation; all from ``rng``.

    Faces are drawn from small to large (far to near), each placed so that its head does not
    cover more than ``max_occlusion`` of an earlier face box.
    """
    background = render_background(rng, config)
    image = background.copy()
    count = int(rng.integers(config.faces_range[0], config.faces_range[1] + 1))
    sizes = np.sort(np.exp(rng.uniform(*np.log(config.face_px_range), count)))
    boxes, landmarks, poses = [], [], []
    for face_px in sizes:
        pose = sample_pose(rng, config)
        geometry = pose_face(*pose, float(rng.uniform(*config.distance_range)))
        look = _random_look(rng, config)
        placement = _place_face(rng, config, geometry, float(face_px), boxes)
        if placement is None:
            continue
        scale, offset = placement
        _draw_face_patch(image, geometry, look, _albedo(rng, look), scale, offset)
        boxes.append(geometry.box * scale + np.tile(offset, 2))
        landmarks.append(geometry.landmarks * scale + offset)
        poses.append(pose)
    labels = FaceLabels.complete(np.reshape(boxes, (-1, 4)), np.reshape(landmarks, (-1, 5, 2)),
                                 np.reshape(poses, (-1, 3)))
    final = image
    if rng.random() < config.augment_probability:
        final = photometric(image, rng, config.photometric)
    return Scene(background=background, image=final, labels=labels)


def render_scene(rng: np.random.Generator, config: SyntheticConfig
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic scene and its labels, deterministic given the generator's state.

    Returns the BGR uint8 image (H, W, 3), boxes (M, 4) x1y1x2y2 pixels, landmarks (M, 5, 2)
    pixels and poses (M, 3) yaw, pitch, roll degrees, all float32.
    """
    scene = compose_scene(rng, config)
    labels = scene.labels
    return scene.image, labels.boxes, labels.landmarks, labels.poses


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for scene ``index`` of the set with ``seed`` (independent streams)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


# --------------------------------------------------------------------------------------------
# Writing a set to disk


LABEL_FILE = "label.txt"
_JPEG_QUALITY = 95


def _render_and_write(args: tuple[Path, int, int, SyntheticConfig]) -> LabelledImage:
    out_dir, seed, index, config = args
    scene = compose_scene(scene_rng(seed, index), config)
    relative = f"{index // 1000:04d}/{index:07d}.jpg"
    path = out_dir / IMAGES_DIR_NAME / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), scene.image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
        raise OSError(f"could not write synthetic image {path}")
    return LabelledImage(relative, scene.labels)


def write_synthetic_set(out_dir: str | Path, count: int, seed: int,
                        config: SyntheticConfig | None = None, workers: int = 1) -> Path:
    """Render ``count`` scenes into ``out_dir/images`` and their labels into ``label.txt``.

    The label file uses the RetinaFace/MOS format (see :mod:`mos_ros.train.labels`), so the
    same reader serves this set and WIDER FACE. Scene i is rendered from ``(seed, i)``, so the
    set does not depend on ``workers``. Returns the label file path.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    config = config or SyntheticConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(out_dir, seed, index, config) for index in range(count)]
    start = time.perf_counter()
    if workers > 1:
        spawn = multiprocessing.get_context("spawn")  # forked OpenCV thread pools can hang
        with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
            items = list(pool.map(_render_and_write, jobs, chunksize=16))
    else:
        items = [_render_and_write(job) for job in jobs]
    label_path = write_label_file(out_dir / LABEL_FILE, items)
    LOG.info("wrote %d synthetic scenes to %s in %.1f s", count, out_dir,
             time.perf_counter() - start)
    return label_path
