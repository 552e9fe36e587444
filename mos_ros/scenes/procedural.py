"""Procedural faces: the canonical face mesh posed, shaded, painted and drawn with a head.

Faces are rendered from the canonical face mesh (:mod:`mos_ros.scenes.face_mesh`) at a known
yaw/pitch/roll (convention of :mod:`mos_ros.core.pose`), with Lambert shading from a random
light, painted eyes, brows and lips, and a head, hair and neck behind them. Each face is
rendered in perspective about its own centre (a camera straight in front of it), so the pose
label matches the appearance wherever the face lands.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from mos_ros.core.pose import euler_to_matrix
from mos_ros.scenes.config import SyntheticConfig
from mos_ros.scenes.face_mesh import FaceMesh, load_face_mesh

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
_LID_BAND_CM = 0.35


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
class Look:
    """Colours and lighting of one face."""

    skin: np.ndarray
    hair: np.ndarray
    hair_style: int
    light: np.ndarray
    ambient: float
    tint: np.ndarray
    has_head: bool


_HAIR_BALD, _HAIR_SHORT, _HAIR_LONG = 0, 1, 2


def random_skin(rng: np.random.Generator) -> np.ndarray:
    position = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(position)
    high = min(low + 1, len(SKIN_TONES) - 1)
    skin = SKIN_TONES[low] + (SKIN_TONES[high] - SKIN_TONES[low]) * (position - low)
    return np.clip(skin * rng.uniform(0.9, 1.1, 3), 0, 255).astype(np.float32)


def random_look(rng: np.random.Generator, config: SyntheticConfig) -> Look:
    light = np.array([rng.uniform(-1.2, 1.2), rng.uniform(-1.2, 0.8), -1.0], np.float32)
    return Look(
        skin=random_skin(rng),
        hair=HAIR_TONES[rng.integers(len(HAIR_TONES))] * rng.uniform(0.8, 1.2),
        hair_style=int(rng.integers(3)),
        light=light / np.linalg.norm(light),
        ambient=float(rng.uniform(0.3, 0.65)),
        tint=rng.uniform(0.85, 1.15, 3).astype(np.float32),
        has_head=bool(rng.random() < config.head_probability))


def random_albedo(rng: np.random.Generator, look: Look) -> np.ndarray:
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


def _head_shapes(geometry: FaceGeometry, look: Look) -> list[tuple[np.ndarray, np.ndarray]]:
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
                      look: Look) -> tuple[np.ndarray, np.ndarray]:
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


def draw_face_patch(scene: np.ndarray, geometry: FaceGeometry, look: Look,
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
