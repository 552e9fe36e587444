"""The faces a scene is made of, one kind per source: procedural mesh faces, photo faces
turned to a new pose, and small photo crops pasted as they are.

Each kind is made in two steps around the composer's placement
(:func:`mos_ros.scenes.composer.compose`): the face is first prepared at its size (its pose,
shape and look drawn, so its box is known), then drawn where it was placed, at ``offset``
(where the prepared face's own coordinates land in the image). Drawing returns the face's
labels in image pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from mos_ros.core.labels import MIRRORED_LANDMARK_ORDER
from mos_ros.core.pose import mirror_pose
from mos_ros.scenes.bank import TinyFace
from mos_ros.scenes.procedural import FaceGeometry, Look, draw_face_patch, random_albedo
from mos_ros.scenes.reface import RenderedFace


@dataclass(frozen=True)
class DrawnFace:
    """Labels of a face as drawn, in image pixels; ``outline`` holds its mesh points where
    known (turned photo faces), so that a scene turn can follow the face's true extent."""

    box: np.ndarray
    landmarks: np.ndarray
    pose: tuple[float, float, float]
    outline: np.ndarray | None = None


class PreparedFace(Protocol):
    """A face ready to be placed: its box and side lengths in its own pixel coordinates."""

    @property
    def box(self) -> np.ndarray: ...

    @property
    def size(self) -> np.ndarray: ...

    def draw(self, image: np.ndarray, rng: np.random.Generator, offset: np.ndarray
             ) -> DrawnFace: ...


@dataclass(frozen=True)
class ProceduralFace:
    """A mesh face posed and lit, scaled to its pixel size; drawn with a fresh albedo."""

    geometry: FaceGeometry
    look: Look
    scale: float
    pose: tuple[float, float, float]

    @property
    def box(self) -> np.ndarray:
        return self.geometry.box * self.scale

    @property
    def size(self) -> np.ndarray:
        return (self.geometry.box[2:] - self.geometry.box[:2]) * self.scale

    def draw(self, image: np.ndarray, rng: np.random.Generator, offset: np.ndarray
             ) -> DrawnFace:
        geometry, scale = self.geometry, self.scale
        draw_face_patch(image, geometry, self.look, random_albedo(rng, self.look), scale, offset)
        return DrawnFace(geometry.box * scale + np.tile(offset, 2),
                         geometry.landmarks * scale + offset, self.pose)


@dataclass(frozen=True)
class PhotoFace:
    """A photo face turned to a new pose; drawn blended into the scene, its colour pulled
    part of the way (up to ``colour_match``) to the scene's around it."""

    rendered: RenderedFace
    colour_match: float

    @property
    def box(self) -> np.ndarray:
        return self.rendered.box

    @property
    def size(self) -> np.ndarray:
        return self.rendered.box[2:] - self.rendered.box[:2]

    def draw(self, image: np.ndarray, rng: np.random.Generator, offset: np.ndarray
             ) -> DrawnFace:
        rendered = self.rendered
        offset = np.round(offset).astype(int)
        h, w = rendered.alpha.shape
        x0, y0 = max(offset[0], 0), max(offset[1], 0)
        x1, y1 = min(offset[0] + w, image.shape[1]), min(offset[1] + h, image.shape[0])
        if x1 > x0 and y1 > y0:
            window = (slice(y0 - offset[1], y1 - offset[1]), slice(x0 - offset[0], x1 - offset[0]))
            alpha = rendered.alpha[window][..., None]
            region = image[y0:y1, x0:x1].astype(np.float32)
            patch = self._match_colour(rendered.patch[window], alpha, region, rng)
            image[y0:y1, x0:x1] = np.clip(patch + region * (1 - alpha) + 0.5, 0,
                                          255).astype(np.uint8)
        return DrawnFace(rendered.box + np.tile(offset, 2), rendered.landmarks + offset,
                         rendered.pose, rendered.outline + offset)

    def _match_colour(self, patch: np.ndarray, alpha: np.ndarray, region: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
        """Pull the face's mean colour part of the way to the scene's, plus a lighting gain."""
        weight = float(alpha.sum())
        if weight < 1:
            return patch
        face_mean = patch.reshape(-1, 3).sum(axis=0) / weight
        scene_mean = region.reshape(-1, 3).mean(axis=0)
        shift = (scene_mean - face_mean) * rng.uniform(0, self.colour_match)
        gain = rng.uniform(0.75, 1.2) * rng.uniform(0.92, 1.08, 3)
        return np.clip(patch * gain + shift * alpha, 0, None)


@dataclass(frozen=True)
class CropFace:
    """A small face crop, mirrored or not, scaled so its face box has the wanted size;
    drawn with a soft elliptic edge."""

    crop: np.ndarray
    scale: float
    crop_box: np.ndarray
    crop_landmarks: np.ndarray
    pose: tuple[float, float, float]

    @classmethod
    def of(cls, tiny: TinyFace, face_px: float, mirrored: bool) -> CropFace:
        crop, box, landmarks, pose = tiny.crop, tiny.box, tiny.landmarks, tiny.pose
        if mirrored:
            width = crop.shape[1]
            crop = np.ascontiguousarray(crop[:, ::-1])
            box = np.float32([width - box[2], box[1], width - box[0], box[3]])
            landmarks = np.stack([width - landmarks[:, 0], landmarks[:, 1]], axis=1)
            landmarks = landmarks[list(MIRRORED_LANDMARK_ORDER)]
            pose = mirror_pose(*pose).as_tuple()
        scale = face_px / float(np.ptp(np.reshape(box, (2, 2)), axis=0).max())
        return cls(crop, scale, np.asarray(box, np.float32), landmarks, tuple(pose))

    @property
    def box(self) -> np.ndarray:
        return self.crop_box * self.scale

    @property
    def size(self) -> np.ndarray:
        return self.box[2:] - self.box[:2]

    def draw(self, image: np.ndarray, rng: np.random.Generator, offset: np.ndarray
             ) -> DrawnFace:
        offset = np.asarray(offset, np.float32)
        matrix = np.float32([[self.scale, 0, offset[0]], [0, self.scale, offset[1]]])
        size = (image.shape[1], image.shape[0])
        colour = cv2.warpAffine(self.crop, matrix, size, flags=cv2.INTER_AREA)
        mask = np.zeros(self.crop.shape[:2], np.float32)
        height, width = mask.shape
        cv2.ellipse(mask, (width // 2, height // 2), (width // 2, height // 2), 0, 0, 360, 1.0,
                    -1)
        alpha = cv2.warpAffine(cv2.GaussianBlur(mask, (0, 0), 1.5), matrix, size)[..., None]
        blended = colour.astype(np.float32) * alpha + image.astype(np.float32) * (1 - alpha)
        image[:] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return DrawnFace(self.box + np.tile(offset, 2), self.crop_landmarks * self.scale + offset,
                         self.pose)
