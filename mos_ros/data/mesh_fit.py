"""FaceMesh fit: the mesh-extent box, five landmarks and head pose of a face in a photo.

MediaPipe FaceMesh runs on a square crop around a given box; its 468 points are fitted to the
canonical face mesh (:mod:`mos_ros.scenes.face_mesh`) by a similarity transform, which gives
the face's box (the mesh extent), its five landmarks and its head pose. MediaPipe is an
optional dependency (the data engine's), imported on the first fit.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from mos_ros.core.align import fit_similarity
from mos_ros.core.image_io import check_bgr_image
from mos_ros.core.pose import matrix_to_euler
from mos_ros.scenes.face_mesh import LANDMARK_GROUPS, load_face_mesh

#: Crop around the given box: margin on each side in face sizes, and the face size it gets.
MESH_CROP_MARGIN = 0.6
MESH_CROP_FACE_PX = 200.0
#: FaceMesh may find neighbours in the crop; the one nearest the box centre is kept.
MESH_MAX_FACES = 3


@dataclass(frozen=True)
class MeshFit:
    """MediaPipe FaceMesh points in image pixels and the similarity fit of the canonical mesh.

    ``points`` are camera-frame pixels: x, y image pixels and z depth in pixels, into the scene.
    ``rotation`` is R_cam_head of :mod:`mos_ros.core.pose`; the fit is
    ``points ~ scale * rotation @ vertex + translation`` for the canonical head-frame vertices
    (cm). ``residual`` is the RMS 3-D fit error divided by the fitted face height.
    """

    points: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray
    yaw: float
    pitch: float
    roll: float
    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    residual: float

    @property
    def pose(self) -> tuple[float, float, float]:
        """Yaw, pitch, roll in degrees."""
        return (self.yaw, self.pitch, self.roll)


@lru_cache(maxsize=1)
def _face_mesh():
    """The process's one FaceMesh graph (static images, 468 points, no iris refinement)."""
    from mediapipe.python.solutions import face_mesh
    return face_mesh.FaceMesh(static_image_mode=True, max_num_faces=MESH_MAX_FACES,
                              refine_landmarks=False, min_detection_confidence=0.5)


def _check_box(box) -> np.ndarray:
    """A finite x1y1x2y2 box with positive size, as float64."""
    values = np.asarray(box, dtype=np.float64).reshape(-1)
    if values.size != 4 or not np.all(np.isfinite(values)):
        raise ValueError(f"expected a finite x1, y1, x2, y2 box, got {box!r}")
    if values[2] <= values[0] or values[3] <= values[1]:
        raise ValueError(f"box {values.tolist()} has no area (need x2 > x1 and y2 > y1)")
    return values


def _square_crop(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """A square crop around ``box`` (border replicated), resized so the face is ~200 px.

    Returns the crop, the image position of its top-left corner and the image pixels per crop
    pixel.
    """
    face = max(box[2] - box[0], box[3] - box[1])
    side = int(np.ceil(face * (1.0 + 2.0 * MESH_CROP_MARGIN)))
    x0 = int(np.floor((box[0] + box[2] - side) / 2))
    y0 = int(np.floor((box[1] + box[3] - side) / 2))
    height, width = image.shape[:2]
    inside = image[max(y0, 0):min(y0 + side, height), max(x0, 0):min(x0 + side, width)]
    if inside.size == 0:
        raise ValueError(f"box {box.tolist()} lies outside the {width}x{height} image")
    padded = cv2.copyMakeBorder(inside, max(-y0, 0), max(y0 + side - height, 0),
                                max(-x0, 0), max(x0 + side - width, 0), cv2.BORDER_REPLICATE)
    out = max(32, round(side * MESH_CROP_FACE_PX / face))
    shrinking = out < side
    crop = cv2.resize(padded, (out, out),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return crop, np.array([x0, y0], np.float64), side / out


def mesh_fit_from_points(points: np.ndarray) -> MeshFit:
    """Fit the canonical mesh to 468 camera-frame points (pixels) and derive the labels."""
    points = np.asarray(points, np.float32).reshape(468, 3)
    mesh = load_face_mesh()
    scale, rotation, translation = fit_similarity(mesh.vertices, points)
    fitted = scale * mesh.vertices.astype(np.float64) @ rotation.T + translation
    rms = float(np.sqrt(np.mean(np.sum((fitted - points) ** 2, axis=1))))
    pose = matrix_to_euler(rotation)
    landmarks = np.stack([points[list(group), :2].mean(axis=0) for group in LANDMARK_GROUPS])
    box = np.concatenate([points[:, :2].min(axis=0), points[:, :2].max(axis=0)])
    return MeshFit(points=points, landmarks=landmarks.astype(np.float32),
                   box=box.astype(np.float32), yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll,
                   scale=scale, rotation=rotation, translation=translation,
                   residual=rms / (scale * mesh.height_cm))


def _mesh_points(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """FaceMesh points (468, 3) in image pixels of the face nearest the box centre, or None."""
    crop, origin, pixel = _square_crop(image, box)
    result = _face_mesh().process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
    if not result.multi_face_landmarks:
        return None
    side = crop.shape[1] * pixel  # the crop's side in image pixels
    candidates = [np.array([(p.x, p.y, p.z) for p in face.landmark]) * side
                  for face in result.multi_face_landmarks]
    for points in candidates:
        points[:, :2] += origin
    centre = (box[:2] + box[2:]) / 2
    return min(candidates, key=lambda p: np.linalg.norm(p[:, :2].mean(axis=0) - centre))


def fit_face_mesh(image: np.ndarray, box: np.ndarray) -> MeshFit | None:
    """FaceMesh on a crop around ``box`` and the canonical-mesh fit; None if no face is found.

    MediaPipe's normalised x, y, z (z smaller = nearer, on the scale of x) become image
    pixels and a depth into the scene, i.e. the camera optical frame of :mod:`mos_ros.core.pose`,
    so the fitted rotation is R_cam_head directly.
    """
    points = _mesh_points(check_bgr_image(image), _check_box(box))
    return None if points is None else mesh_fit_from_points(points)
