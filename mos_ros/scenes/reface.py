"""Re-render a real face at a new head pose, with labels known by construction.

A face in a photo is lifted to 3-D with its fitted FaceMesh (468 points in the head frame of
:mod:`mos_ros.core.pose`) plus two rings of head anchors beyond the face outline that carry
hair, ears and neck along. Rotating that textured shell and projecting it gives the face at a
new pose; the texture is the photo itself, so skin, eyes and hair stay real. Labels follow from
the geometry: the box is the extent of the 468 projected points (the project's box
convention), the five landmarks are the projected :data:`LANDMARK_GROUPS`, and the pose is the
rotation applied.

Rendering is one piecewise-affine warp: triangles are painted back to front into an id map
(hidden ones are overdrawn), every pixel takes its triangle's affine map back into the photo,
and one ``cv2.remap`` samples the colour. Parts turned away in the photo have no texture, so a
face is never turned more than ``max_turn_deg`` from its source: each photo face is kept with
its mirror image and the copy nearer the wanted pose is used.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from mos_ros.core.align import fit_similarity
from mos_ros.core.pose import euler_to_matrix, matrix_to_euler, split_in_plane, turn_in_plane
from mos_ros.scenes.face_mesh import LANDMARK_GROUPS, load_face_mesh

#: Head anchor rings: (spread of the face outline about its centre, depth pushed back in cm).
#: The inner ring reaches hair line, ears and jaw; the outer one fades out into the scene.
ANCHOR_RINGS = ((1.28, 3.5), (1.6, 8.0))
#: The neck hangs lower than the outline alone would reach: extra spread below the centre.
NECK_STRETCH = 1.35
#: Smallest face the shell is painted at before averaging down (anti-aliasing).
MIN_RENDER_PX = 64
MAX_SUPERSAMPLING = 4


@lru_cache(maxsize=1)
def face_outline() -> np.ndarray:
    """Indices of the canonical mesh's outer boundary loop (the face oval), in order."""
    triangles = load_face_mesh().triangles
    edges = Counter(tuple(sorted((int(a), int(b)))) for t in triangles
                    for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])))
    neighbours: dict[int, list[int]] = defaultdict(list)
    for (a, b), count in edges.items():
        if count == 1:
            neighbours[a].append(b)
            neighbours[b].append(a)
    start = min(neighbours)
    loop, previous = [start], None
    while True:
        step = [n for n in neighbours[loop[-1]] if n != previous and n not in loop]
        if not step:
            break
        previous = loop[-1]
        loop.append(step[0])
    return np.asarray(loop, np.int32)


@lru_cache(maxsize=1)
def mirror_pairs() -> np.ndarray:
    """``pairs[i]``: the canonical vertex that mirrors vertex ``i`` across the face's midline."""
    vertices = load_face_mesh().vertices.astype(np.float64)
    mirrored = vertices * np.array([1.0, -1.0, 1.0])
    distances = np.linalg.norm(vertices[:, None, :] - mirrored[None, :, :], axis=2)
    return distances.argmin(axis=1).astype(np.int32)


def _anchor_rings(head_points: np.ndarray) -> np.ndarray:
    """Anchor points (rings x outline, 3) in the head frame, built from the fitted outline."""
    outline = head_points[face_outline()]
    centre = outline.mean(axis=0)
    rings = []
    for spread, depth in ANCHOR_RINGS:
        lateral = outline[:, 1:] - centre[1:]
        lateral = lateral * spread
        below = lateral[:, 1] < 0
        lateral[below, 1] *= NECK_STRETCH
        ring = np.empty_like(outline)
        ring[:, 0] = outline[:, 0] - depth
        ring[:, 1:] = centre[1:] + lateral
        rings.append(ring)
    return np.concatenate(rings)


@lru_cache(maxsize=1)
def shell_triangles() -> np.ndarray:
    """Mesh triangles plus the quads joining outline -> inner ring -> outer ring, all wound
    so that a face seen from the front has positive signed area in image coordinates."""
    mesh = load_face_mesh()
    outline = face_outline()
    count, n = len(mesh.vertices), len(outline)
    inner = count + np.arange(n)
    outer = count + n + np.arange(n)
    quads = []
    for a_ring, b_ring in ((outline, inner), (inner, outer)):
        for i in range(n):
            j = (i + 1) % n
            quads += [(a_ring[i], a_ring[j], b_ring[i]), (a_ring[j], b_ring[j], b_ring[i])]
    triangles = np.concatenate([mesh.triangles, np.asarray(quads, np.int32)])
    frontal = _frontal_image_points(np.concatenate([mesh.vertices,
                                                    _anchor_rings(mesh.vertices)]))
    flip = _signed_areas(frontal, triangles) < 0
    triangles[flip] = triangles[flip][:, ::-1]
    return triangles


def _frontal_image_points(head_points: np.ndarray) -> np.ndarray:
    """Image x (right) and y (down) of head-frame points on a frontal face (orthographic)."""
    return (head_points @ euler_to_matrix(0.0, 0.0, 0.0).T)[:, :2]


def _signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (points[triangles[:, k]] for k in range(3))
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1])
                  - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


@dataclass(frozen=True)
class FaceSource:
    """A photo face ready to be turned: its shell in the head frame and where each shell point
    lies in the photo. ``texture`` is the photo as BGRA, A the soft shell mask (1 on the face
    and inner ring, falling to 0 at the outer ring)."""

    texture: np.ndarray
    head_points: np.ndarray
    texture_xy: np.ndarray
    rotation: np.ndarray
    face_px: float
    name: str = ""

    @property
    def yaw_pitch_roll(self) -> tuple[float, float, float]:
        """Pose of the face in its photo, degrees."""
        pose = matrix_to_euler(self.rotation)
        return pose.yaw, pose.pitch, pose.roll


def face_source(image: np.ndarray, points: np.ndarray, name: str = "") -> FaceSource:
    """Lift a photo face with its 468 FaceMesh points (camera-frame pixels: x, y, depth)."""
    points = np.asarray(points, np.float64)
    if points.shape != (468, 3):
        raise ValueError(f"face_source needs 468 FaceMesh points (x, y, z), got {points.shape}")
    scale, rotation, translation = fit_similarity(load_face_mesh().vertices, points)
    head_points = (points - translation) @ rotation / scale
    shell = np.concatenate([head_points, _anchor_rings(head_points)])
    shell_in_photo = (shell @ rotation.T * scale + translation)[:, :2]
    image, corner = _crop_around(image, shell_in_photo)
    texture_xy = (shell_in_photo - corner).astype(np.float32)
    texture = np.dstack([image, _shell_mask(image.shape[:2], texture_xy)])
    face_px = float(np.ptp(points[:, :2], axis=0).max())
    return FaceSource(texture=texture, head_points=shell.astype(np.float32),
                      texture_xy=texture_xy, rotation=rotation, face_px=face_px, name=name)


def _crop_around(image: np.ndarray, points: np.ndarray, margin: int = 4
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The part of the photo under ``points`` (plus a margin) and its top-left corner."""
    height, width = image.shape[:2]
    x0, y0 = np.clip(np.floor(points.min(axis=0)).astype(int) - margin, 0, (width - 1, height - 1))
    x1, y1 = np.clip(np.ceil(points.max(axis=0)).astype(int) + margin, (x0 + 1, y0 + 1),
                     (width, height))
    return np.ascontiguousarray(image[y0:y1, x0:x1]), np.array([x0, y0], np.float64)


def _shell_mask(shape: tuple[int, int], texture_xy: np.ndarray) -> np.ndarray:
    """Soft mask in photo space: opaque inside the inner ring, fading to 0 at the outer ring."""
    count, n = 468, len(face_outline())
    inner = texture_xy[count:count + n]
    outer = texture_xy[count + n:]
    gap = float(np.median(np.linalg.norm(outer - inner, axis=1)))
    mask = np.zeros(shape, np.float32)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1.0)
    sigma = max(gap / 2.5, 0.8)
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return np.clip(mask * 255.0, 0, 255).astype(np.uint8)


def mirror_points(points: np.ndarray, width: int) -> np.ndarray:
    """FaceMesh points of the horizontally mirrored photo (vertex ``i`` takes its partner)."""
    mirrored = np.asarray(points, np.float64)[mirror_pairs()].copy()
    mirrored[:, 0] = width - mirrored[:, 0]
    return mirrored


def face_sources(image: np.ndarray, points: np.ndarray, name: str = "") -> tuple[FaceSource, ...]:
    """The face as photographed and its mirror image (twice the poses within reach)."""
    flipped = np.ascontiguousarray(image[:, ::-1])
    return (face_source(image, points, name),
            face_source(flipped, mirror_points(points, image.shape[1]), name + " (mirrored)"))


def turn_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation taking ``a`` to ``b``, degrees."""
    cosine = (np.trace(np.asarray(b) @ np.asarray(a).T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def reachable_rotation(sources: tuple[FaceSource, ...], wanted: np.ndarray, max_turn_deg: float,
                       free_in_plane: bool = False) -> tuple[FaceSource, np.ndarray]:
    """The source copy nearest ``wanted`` and the rotation at most ``max_turn_deg`` from it
    on the way to ``wanted``.

    With ``free_in_plane`` the part of the turn about the optical axis does not count: it
    only spins the projected shell in the image, which shows no texture the photo lacks. The
    wanted rotation is split into that image turn and a rest nearest the source
    (:func:`~mos_ros.core.pose.split_in_plane`); only the rest is limited, and the image turn
    is put back in full.
    """
    wanted = np.asarray(wanted, np.float64)
    if not free_in_plane:
        source = min(sources, key=lambda s: turn_angle_deg(s.rotation, wanted))
        return source, _towards(source.rotation, wanted, max_turn_deg)
    splits = [(s, *split_in_plane(wanted, s.rotation)) for s in sources]
    source, theta, rest = min(splits, key=lambda item: turn_angle_deg(item[0].rotation, item[2]))
    return source, turn_in_plane(_towards(source.rotation, rest, max_turn_deg), theta)


def _towards(start: np.ndarray, end: np.ndarray, max_turn_deg: float) -> np.ndarray:
    """``end``, or the rotation ``max_turn_deg`` from ``start`` on the way to it."""
    angle = turn_angle_deg(start, end)
    if angle <= max_turn_deg:
        return end
    ends = Rotation.from_matrix(np.stack([start, end]))
    return Slerp([0.0, 1.0], ends)([max_turn_deg / angle]).as_matrix()[0]


@dataclass(frozen=True)
class RenderedFace:
    """A turned face: premultiplied BGR patch and alpha, and its labels in patch pixels.

    ``offset`` is where the patch's top-left corner lies in the coordinates the shell was
    projected to (see :func:`render_projected`); patch pixel p is at p + offset there.
    """

    patch: np.ndarray
    alpha: np.ndarray
    box: np.ndarray
    landmarks: np.ndarray
    pose: tuple[float, float, float]
    offset: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    #: The 468 projected mesh points in patch pixels: their extent is ``box``.
    outline: np.ndarray | None = None


def render_face(source: FaceSource, rotation: np.ndarray, face_px: float) -> RenderedFace:
    """Draw ``source`` posed by ``rotation`` (R_cam_head) with a face box of ``face_px``
    (orthographic projection: the face is far compared with its depth)."""
    camera = source.head_points.astype(np.float64) @ np.asarray(rotation).T
    face_extent = float(np.ptp(camera[:468, :2], axis=0).max())
    return render_projected(source, camera[:, :2] * (face_px / face_extent), camera[:, 2],
                            rotation)


def render_projected(source: FaceSource, image_points: np.ndarray, depth: np.ndarray,
                     rotation: np.ndarray) -> RenderedFace:
    """Draw ``source`` with its shell points at ``image_points`` (N, 2; pixels, corner
    origin) from any projection, ``depth`` (N,) ordering what hides what (larger is farther)
    and ``rotation`` the pose it shows."""
    face_px = float(np.ptp(image_points[:468], axis=0).max())
    supersampling = int(np.clip(np.ceil(MIN_RENDER_PX / max(face_px, 1.0)), 1, MAX_SUPERSAMPLING))
    points = np.asarray(image_points, np.float64) * supersampling
    origin = np.floor(points.min(axis=0)) - 2
    points = points - origin
    size = np.ceil(points.max(axis=0)).astype(int) + 3
    ids = _paint_triangles(points, np.asarray(depth), (int(size[1]), int(size[0])))
    colour = _sample_texture(source, points, ids)
    if supersampling > 1:
        out_size = (max(1, int(size[0] // supersampling)), max(1, int(size[1] // supersampling)))
        colour = cv2.resize(colour, out_size, interpolation=cv2.INTER_AREA)
    alpha = colour[..., 3] / 255.0
    premultiplied = colour[..., :3] * alpha[..., None]
    labels_points = points[:468] / supersampling
    landmarks = np.stack([labels_points[list(group)].mean(axis=0) for group in LANDMARK_GROUPS])
    box = np.concatenate([labels_points.min(axis=0), labels_points.max(axis=0)])
    pose = matrix_to_euler(rotation)
    return RenderedFace(patch=premultiplied.astype(np.float32), alpha=alpha.astype(np.float32),
                        box=box.astype(np.float32), landmarks=landmarks.astype(np.float32),
                        pose=(pose.yaw, pose.pitch, pose.roll),
                        offset=(origin / supersampling).astype(np.float32),
                        outline=labels_points.astype(np.float32))


def _paint_triangles(points: np.ndarray, depth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Id map (uint16, 0 = empty, k = triangle k-1) of the front-facing triangles, far first."""
    triangles = shell_triangles()
    front = _signed_areas(points, triangles) > 1e-3
    order = np.argsort(-depth[triangles].mean(axis=1))
    ids = np.zeros(shape, np.uint16)
    corners = np.round(points * 16).astype(np.int32)[triangles]
    for index in order[front[order]]:
        cv2.fillConvexPoly(ids, corners[index], int(index) + 1, cv2.LINE_8, 4)
    return ids


def _sample_texture(source: FaceSource, points: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """BGRA float32 patch: each painted pixel mapped back into the photo by its triangle."""
    triangles = shell_triangles()
    destination = points[triangles]                       # (T, 3, 2)
    texture = source.texture_xy.astype(np.float64)[triangles]
    homogeneous = np.concatenate([destination, np.ones((len(triangles), 3, 1))], axis=2)
    determinants = np.linalg.det(homogeneous)
    usable = np.abs(determinants) > 1e-9
    affine = np.zeros((len(triangles), 3, 2))
    affine[usable] = np.linalg.solve(homogeneous[usable], texture[usable])
    painted = ids > 0
    ys, xs = np.nonzero(painted)
    coefficients = affine[ids[painted].astype(np.int64) - 1]
    pixel = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs, np.float64)], axis=1)
    mapped = np.einsum("nk,nkj->nj", pixel, coefficients) - 0.5
    map_x = np.full(ids.shape, -1.0, np.float32)
    map_y = np.full(ids.shape, -1.0, np.float32)
    map_x[painted], map_y[painted] = mapped[:, 0], mapped[:, 1]
    colour = cv2.remap(source.texture, map_x, map_y, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    colour[~painted] = 0.0
    return colour
