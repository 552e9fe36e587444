"""The canonical face mesh used to render synthetic faces, in the head frame of core.pose.

The mesh ships in ``mos_ros/scenes/data`` (MediaPipe canonical face model, Apache-2.0; see the
README there). Its own axes are x toward the image right of a frontal face (the subject's
left), y up and z toward the viewer, in centimetres. :func:`load_face_mesh` re-expresses the
vertices in the head body frame of :mod:`mos_ros.core.pose` (x forward out of the face,
y toward the subject's left ear, z up), so that ``euler_to_matrix(yaw, pitch, roll) @ v``
places them in the camera frame with exactly the labelled pose.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"

#: Eye rings (MediaPipe vertex indices). The first ring lies on the image left of a frontal face.
IMAGE_LEFT_EYE_RING = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161,
                       246)
IMAGE_RIGHT_EYE_RING = (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385,
                        384, 398)
NOSE_TIP = (1,)
IMAGE_LEFT_MOUTH_CORNER = (61,)
IMAGE_RIGHT_MOUTH_CORNER = (291,)

#: Vertex groups averaged into the five landmarks, in the RetinaFace order (image-left eye,
#: image-right eye, nose tip, image-left and image-right mouth corner of a frontal face).
LANDMARK_GROUPS: tuple[tuple[int, ...], ...] = (
    IMAGE_LEFT_EYE_RING, IMAGE_RIGHT_EYE_RING, NOSE_TIP,
    IMAGE_LEFT_MOUTH_CORNER, IMAGE_RIGHT_MOUTH_CORNER)

#: Maps mesh axes (x right, y up, z to viewer) to head body axes (x forward, y left, z up).
MESH_TO_HEAD = np.array([[0.0, 0.0, 1.0],
                         [1.0, 0.0, 0.0],
                         [0.0, 1.0, 0.0]], dtype=np.float32)


@dataclass(frozen=True)
class FaceMesh:
    """Vertices in the head body frame (cm), triangles, and where the facial features are.

    ``landmarks`` holds the five landmark points (5, 3) in the head frame; ``frontal_xy``
    is each vertex as seen on a frontal face (x image-right, y up), used to paint features.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    landmarks: np.ndarray
    frontal_xy: np.ndarray

    @property
    def height_cm(self) -> float:
        """Extent of the mesh from chin to forehead in centimetres."""
        return float(np.ptp(self.frontal_xy[:, 1]))


def _read_array(name: str) -> np.ndarray:
    path = DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"face mesh data file is missing: {path}")
    return np.load(path)


@lru_cache(maxsize=1)
def load_face_mesh() -> FaceMesh:
    """Load the shipped mesh once; arrays are read-only because the mesh is shared."""
    mesh_vertices = _read_array("canon_v.npy").astype(np.float32)
    triangles = _read_array("tris.npy").astype(np.int32)
    if mesh_vertices.shape != (468, 3) or triangles.ndim != 2 or triangles.shape[1] != 3:
        raise ValueError("face mesh data has unexpected shapes "
                         f"{mesh_vertices.shape} and {triangles.shape}")
    vertices = mesh_vertices @ MESH_TO_HEAD.T
    landmarks = np.stack([vertices[list(group)].mean(axis=0) for group in LANDMARK_GROUPS])
    frontal_xy = mesh_vertices[:, :2].copy()
    for array in (vertices, triangles, landmarks, frontal_xy):
        array.setflags(write=False)
    return FaceMesh(vertices=vertices, triangles=triangles, landmarks=landmarks,
                    frontal_xy=frontal_xy)
