"""Faces in 3-D: where a detected head is and how it is turned, in the camera's optical frame.

Position. The head frame's origin is the sellion (the deepest point of the nose bridge, between
the eyes; the face frame origin of ROS4HRI, REP 155). A mean adult face (:data:`MEAN_FACE_M`,
five landmarks in metres, from the shipped canonical face mesh whose eyes are 63 mm apart) is
turned by the head rotation and moved until its projection matches the five detected landmarks.
With the rotation fixed, the camera projection is linear in the translation, so this is one
small least-squares solve (no iteration, no local minimum). Where that fit fails or disagrees
with the landmarks, the box width and a mean face width give the distance instead.

Orientation. MOS gives yaw, pitch and roll as the face looks in its image patch, that is
relative to the ray from the camera to the face, not to the optical axis (the network never
learnt where in the image a face was). The rotation in the optical frame is therefore the
rotation of the optical axis onto that ray, times the MOS rotation in the convention of
:mod:`mos_ros.core.pose`. For a face at the image centre the two are the same.

Sizes vary between people (eye distance about +-6 %), which no monocular method can see: the
distance of a face a little larger than the mean comes out a little short.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mos_ros.core.camera import PinholeCamera
from mos_ros.core.pose import euler_to_matrix, matrix_to_quaternion
from mos_ros.core.types import Face

#: Five landmarks of the mean face (RetinaFace order: image-left eye, image-right eye, nose tip,
#: image-left and image-right mouth corner of a frontal face), metres, in the head frame of
#: :mod:`mos_ros.core.pose` (x out of the face, y to the subject's left ear, z up), origin at
#: the sellion. Taken from the canonical face mesh (``mos_ros/scenes/data``); a test keeps them
#: equal.
MEAN_FACE_M = np.array([[-0.01610, -0.03160, -0.00628],
                        [-0.01610, 0.03160, -0.00628],
                        [0.02240, 0.0, -0.04398],
                        [-0.00952, -0.02456, -0.07614],
                        [-0.00952, 0.02456, -0.07614]])
MEAN_FACE_M.setflags(write=False)
#: Width of a frontal mean face's box (the extent of the face mesh, the training box convention).
MEAN_FACE_WIDTH_M = 0.155
#: How far the sellion sits above the box centre of an upright face (head z axis), metres.
SELLION_ABOVE_BOX_CENTRE_M = 0.038
#: The gaze frame of REP-155 in the head frame (columns: its axes): collocated with the head,
#: z along the gaze, x to the person's right and y down, as an optical frame looking where the
#: face looks. MOS estimates the head, not the eyes, so the gaze is the head's x axis.
GAZE_IN_HEAD = np.array([[0.0, 0.0, 1.0],
                         [-1.0, 0.0, 0.0],
                         [0.0, -1.0, 0.0]])
GAZE_IN_HEAD.setflags(write=False)
#: :data:`GAZE_IN_HEAD` as a unit quaternion (x, y, z, w).
GAZE_QUATERNION = tuple(float(v) for v in matrix_to_quaternion(GAZE_IN_HEAD))
#: Detector pixels have their origin at the top-left pixel's corner; K's at its centre.
PIXEL_CORNER_TO_CENTRE = 0.5
#: A landmark fit is refused, and the box used, when it puts the head nearer than this ...
MIN_DEPTH_M = 0.05
#: ... or when its landmarks miss the detected ones by more than this share of the box width.
MAX_REPROJECTION_SHARE = 0.15


@dataclass(frozen=True)
class Head3D:
    """A head placed in the optical frame of the image it was found in.

    ``position``: the sellion, metres (x right, y down, z forward). ``orientation``: the head
    frame as a unit quaternion (x, y, z, w). ``method``: ``"landmarks"`` or ``"box"``, what
    gave the distance. ``reprojection_px``: RMS miss of the fitted mean face's landmarks
    (0 for the box method).
    """

    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float]
    method: str
    reprojection_px: float = 0.0

    @property
    def distance(self) -> float:
        """Straight-line distance from the camera to the sellion, metres."""
        return float(np.linalg.norm(self.position))


def viewing_rotation(ray: np.ndarray) -> np.ndarray:
    """The smallest rotation (3x3) that turns the optical axis (0, 0, 1) onto unit ``ray``."""
    ray = np.asarray(ray, np.float64) / np.linalg.norm(ray)
    axis = np.array([-ray[1], ray[0], 0.0])
    sine = np.linalg.norm(axis)
    if sine < 1e-12:
        return np.eye(3)
    angle = np.arctan2(sine, ray[2])
    rotation, _ = cv2.Rodrigues(axis / sine * angle)
    return rotation


def box_centre(face: Face) -> np.ndarray:
    """Centre of the face box, pixels (detector convention)."""
    x1, y1, x2, y2 = face.box
    return np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0])


def head_rotation(face: Face, camera: PinholeCamera) -> np.ndarray:
    """R_cam_head (3x3) in the optical frame: the MOS rotation seen along the face's ray."""
    ray = camera.rays(box_centre(face) - PIXEL_CORNER_TO_CENTRE)[0]
    pose = face.pose
    return viewing_rotation(ray) @ euler_to_matrix(pose.yaw, pose.pitch, pose.roll)


def fit_translation(landmarks: np.ndarray, rotation: np.ndarray, camera: PinholeCamera,
                    model: np.ndarray = MEAN_FACE_M) -> tuple[np.ndarray, float] | None:
    """Translation (3,) that projects ``rotation @ model`` onto ``landmarks`` (N, 2), and the
    RMS miss in pixels; None when the landmarks cannot fix it (degenerate layout).

    With q = R m for each model point, x = (t_x + q_x) / (t_z + q_z) gives
    t_x - x t_z = x q_z - q_x (the same for y): linear in t.
    """
    xy = camera.normalized(np.asarray(landmarks, np.float64) - PIXEL_CORNER_TO_CENTRE)
    turned = np.asarray(model, np.float64) @ np.asarray(rotation, np.float64).T
    count = len(xy)
    a = np.zeros((2 * count, 3))
    a[:count, 0] = 1.0
    a[count:, 1] = 1.0
    a[:count, 2] = -xy[:, 0]
    a[count:, 2] = -xy[:, 1]
    b = np.concatenate([xy[:, 0] * turned[:, 2] - turned[:, 0],
                        xy[:, 1] * turned[:, 2] - turned[:, 1]])
    solution, _, rank, _ = np.linalg.lstsq(a, b, rcond=None)
    if rank < 3:
        return None
    points = turned + solution
    if np.any(points[:, 2] <= 0):
        return solution, float("inf")
    miss = camera.project(points) + PIXEL_CORNER_TO_CENTRE - landmarks
    return solution, float(np.sqrt(np.mean(np.sum(miss ** 2, axis=1))))


def position_from_box(face: Face, rotation: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """Sellion (3,) from the box alone: distance from its width and the mean face width,
    direction through its centre, lifted to the sellion along the head's up axis."""
    depth = camera.fx * MEAN_FACE_WIDTH_M / max(face.width, 1e-6)
    xy = camera.normalized(box_centre(face) - PIXEL_CORNER_TO_CENTRE)[0]
    centre = np.array([xy[0] * depth, xy[1] * depth, depth])
    return centre + np.asarray(rotation)[:, 2] * SELLION_ABOVE_BOX_CENTRE_M


def place_head(face: Face, camera: PinholeCamera) -> Head3D:
    """Position and orientation of one detected face in the optical frame."""
    rotation = head_rotation(face, camera)
    quaternion = tuple(float(v) for v in matrix_to_quaternion(rotation))
    fit = fit_translation(face.landmarks, rotation, camera)
    if fit is not None:
        translation, miss_px = fit
        if (translation[2] >= MIN_DEPTH_M
                and miss_px <= MAX_REPROJECTION_SHARE * max(face.width, 1.0)):
            return Head3D(tuple(float(v) for v in translation), quaternion, "landmarks",
                          miss_px)
    position = position_from_box(face, rotation, camera)
    return Head3D(tuple(float(v) for v in position), quaternion, "box")


def place_heads(faces: Sequence[Face], camera: PinholeCamera) -> tuple[Head3D, ...]:
    """:func:`place_head` for every face, in order."""
    return tuple(place_head(face, camera) for face in faces)
