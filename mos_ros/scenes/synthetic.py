"""Synthetic face scenes with exact box, landmark and head-pose labels.

Procedural faces (:mod:`mos_ros.scenes.procedural`) are placed on cluttered backgrounds
(:mod:`mos_ros.scenes.backgrounds`) that include face-free heads and skin-coloured blobs as
hard negatives.

Labels per face, in pixels of the returned image (origin at the top-left pixel's corner):

* box: the tight box of all projected mesh vertices, forehead to chin and cheek to cheek
  (the extent WIDER FACE boxes mark);
* five landmarks in the RetinaFace order (image-left eye, image-right eye, nose tip, image-left
  and image-right mouth corner, where "image-left" is the side that is on the image left when
  the face is frontal). An occluded landmark (the far eye of a profile face) still gets its
  projected position;
* yaw, pitch, roll in degrees, exactly the angles the mesh was rotated by.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mos_ros.core.labels import FaceLabels
from mos_ros.scenes.backgrounds import render_background
from mos_ros.scenes.config import SyntheticConfig
from mos_ros.scenes.photometric import photometric
from mos_ros.scenes.procedural import (
    FaceGeometry, draw_face_patch, pose_face, random_albedo, random_look)
from mos_ros.scenes.sampling import overlap_fraction, sample_pose
from mos_ros.scenes.writer import write_scene_set

#: Reach of head/hair around and of the neck below a face box, in face sizes (placement).
_HEAD_MARGIN = 0.6
_NECK_MARGIN = 1.1


@dataclass(frozen=True)
class Scene:
    """A rendered scene: the background alone, the image and the labels of its faces."""

    background: np.ndarray
    image: np.ndarray
    labels: FaceLabels


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
        if overlap_fraction(region, placed) <= config.max_occlusion:
            return scale, (corner - geometry.box[:2] * scale).astype(np.float32)
    return None


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
        look = random_look(rng, config)
        placement = _place_face(rng, config, geometry, float(face_px), boxes)
        if placement is None:
            continue
        scale, offset = placement
        draw_face_patch(image, geometry, look, random_albedo(rng, look), scale, offset)
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


@dataclass(frozen=True)
class ProceduralScenes:
    """The scene composer of procedural sets (:func:`compose_scene` under ``config``)."""

    config: SyntheticConfig = SyntheticConfig()

    def __call__(self, rng: np.random.Generator) -> tuple[np.ndarray, FaceLabels]:
        scene = compose_scene(rng, self.config)
        return scene.image, scene.labels


def write_synthetic_set(out_dir: str | Path, count: int, seed: int,
                        config: SyntheticConfig | None = None, workers: int = 1) -> Path:
    """A procedural set of ``count`` scenes in ``out_dir`` (see
    :func:`~mos_ros.scenes.writer.write_scene_set`); returns the label file path."""
    return write_scene_set(out_dir, count, seed, ProceduralScenes(config or SyntheticConfig()),
                           workers)
