"""The scene composer: every labelled training scene, procedural or real, is made by
:func:`compose`.

A scene is a background (a procedural one, a face-free photo, or a crop of a labelled photo
with its faces), faces drawn from far to near, each from one source
(:mod:`mos_ros.scenes.faces`: a procedural mesh face, a photo face turned to a new pose, or a
small crop), occluders and unlabelled hands, an optional turn of the whole scene with its
labels, and the photometric changes of a camera. Each face is placed so that its head hides
little of the faces before it. What a scene holds is set by :class:`SceneConfig` and by what
the :class:`FaceBank` offers; an empty bank gives procedural scenes
(:class:`ProceduralScenes`), the data engine's bank real-face scenes (:class:`BankScenes`).

Labels per face, in pixels of the returned image (origin at the top-left pixel's corner):

* box: the tight box of the face, forehead to chin and cheek to cheek (the extent WIDER FACE
  boxes mark); for mesh faces, of all projected mesh vertices;
* five landmarks in the RetinaFace order (image-left eye, image-right eye, nose tip,
  image-left and image-right mouth corner, "image-left" being the side on the image left when
  the face is frontal). An occluded landmark (the far eye of a profile) keeps its projected
  position;
* yaw, pitch, roll in degrees: the pose the face was drawn at.

Scene ``i`` of a set is a pure function of ``(seed, i)``, the settings and the bank, so a set
is reproducible and does not depend on the number of workers.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mos_ros.core.labels import FaceLabels
from mos_ros.core.pose import euler_to_matrix
from mos_ros.scenes.backgrounds import render_background
from mos_ros.scenes.bank import FaceBank, PhotoFaces, cached_bank
from mos_ros.scenes.config import SceneConfig, SyntheticConfig
from mos_ros.scenes.faces import CropFace, DrawnFace, PhotoFace, PreparedFace, ProceduralFace
from mos_ros.scenes.hands import free_hand, hand_near_face
from mos_ros.scenes.photometric import photometric
from mos_ros.scenes.procedural import pose_face, random_look
from mos_ros.scenes.reface import reachable_rotation, render_face, turn_angle_deg
from mos_ros.scenes.rotation import rotate_scene, sample_turn, visible_fraction
from mos_ros.scenes.sampling import overlap_fraction, sample_pose
from mos_ros.scenes.writer import write_scene_set

#: Crowds are of small faces: their long side stays below this many pixels.
CROWD_FACE_PX = 60.0


@dataclass
class _Faces:
    """Labels gathered while a scene is composed."""

    boxes: list = field(default_factory=list)
    landmarks: list = field(default_factory=list)
    poses: list = field(default_factory=list)
    has_landmarks: list = field(default_factory=list)
    has_pose: list = field(default_factory=list)
    #: Mesh points of each face where known (turned photo faces), else None.
    outlines: list = field(default_factory=list)

    def add(self, box, landmarks=None, pose=None, outline=None) -> None:
        self.outlines.append(outline)
        self.boxes.append(np.asarray(box, np.float32))
        self.landmarks.append(np.zeros((5, 2), np.float32) if landmarks is None
                              else np.asarray(landmarks, np.float32))
        self.poses.append(np.zeros(3, np.float32) if pose is None
                          else np.asarray(pose, np.float32))
        self.has_landmarks.append(landmarks is not None)
        self.has_pose.append(pose is not None)

    def add_drawn(self, face: DrawnFace) -> None:
        self.add(face.box, face.landmarks, face.pose, face.outline)

    def labels(self) -> FaceLabels:
        count = len(self.boxes)
        return FaceLabels(np.reshape(self.boxes, (count, 4)).astype(np.float32),
                          np.reshape(self.landmarks, (count, 5, 2)).astype(np.float32),
                          np.reshape(self.poses, (count, 3)).astype(np.float32),
                          np.array(self.has_landmarks, bool), np.array(self.has_pose, bool))


# --------------------------------------------------------------------------------------------
# Backgrounds


def _photo_crop(rng: np.random.Generator, photo: np.ndarray, width: int, height: int,
                zoom_range: tuple[float, float]) -> tuple[np.ndarray, float, np.ndarray]:
    """A random window of ``photo`` resized to the scene, ``zoom`` times (uniform in
    ``zoom_range``) the scale that just fills it; where the window leaves the photo (zoom
    below 1) the photo is mirrored. Returns the image, the scale and the window's top-left
    corner in the photo."""
    ph, pw = photo.shape[:2]
    scale = max(width / pw, height / ph) * rng.uniform(*zoom_range)
    crop_w, crop_h = width / scale, height / scale
    x0 = rng.uniform(min(pw - crop_w, 0), max(pw - crop_w, 0))
    y0 = rng.uniform(min(ph - crop_h, 0), max(ph - crop_h, 0))
    matrix = np.float32([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]])
    image = cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_AREA,
                           borderMode=cv2.BORDER_REFLECT)
    return image, scale, np.float32([x0, y0])


def _background(rng: np.random.Generator, config: SceneConfig, bank: FaceBank) -> np.ndarray:
    """A face-free photo of the bank (cropped, mirrored half the time) or a procedural one."""
    if (bank.backgrounds and config.photo_background_probability
            and rng.random() < config.photo_background_probability):
        photo = bank.backgrounds[rng.integers(len(bank.backgrounds))]
        image, _, _ = _photo_crop(rng, photo, config.width, config.height,
                                  config.background_zoom_range)
        return np.ascontiguousarray(image[:, ::-1]) if rng.random() < 0.5 else image
    return render_background(rng, config.procedural)


def _photo_scene(rng: np.random.Generator, config: SceneConfig, photo: PhotoFaces,
                 faces: _Faces) -> np.ndarray:
    """A crop of a labelled training photo; its faces that stay mostly inside are kept."""
    # Little zoom: a face cut by the border would stay in the picture without a label.
    image, scale, corner = _photo_crop(rng, photo.image, config.width, config.height,
                                       (1.0, 1.15))
    labels = photo.labels
    for i in range(len(labels)):
        box = (labels.boxes[i].reshape(2, 2) - corner) * scale
        if visible_fraction(box.reshape(4), config.width, config.height) < config.min_visible:
            continue
        landmarks = (labels.landmarks[i] - corner) * scale if labels.has_landmarks[i] else None
        pose = labels.poses[i] if labels.has_pose[i] else None
        faces.add(box.reshape(4), landmarks, pose)
    return image


def _backdrop(rng: np.random.Generator, config: SceneConfig, bank: FaceBank,
              faces: _Faces) -> tuple[np.ndarray, int, bool]:
    """The scene before its new faces, how many faces to add and whether it is a crowd."""
    if (bank.photos and config.photo_scene_probability
            and rng.random() < config.photo_scene_probability):
        image = _photo_scene(rng, config, bank.photos[rng.integers(len(bank.photos))], faces)
        return image, int(rng.integers(0, 3)), False
    image = _background(rng, config, bank)
    crowd = bool(config.crowd_probability) and rng.random() < config.crowd_probability
    low, high = config.crowd_range if crowd else config.faces_range
    if config.empty_probability and rng.random() < config.empty_probability:
        return image, 0, crowd
    return image, int(rng.integers(low, high + 1)), crowd


# --------------------------------------------------------------------------------------------
# Faces


def _procedural_face(rng: np.random.Generator, config: SceneConfig,
                     pose: tuple[float, float, float], face_px: float) -> ProceduralFace:
    geometry = pose_face(*pose, float(rng.uniform(*config.distance_range)))
    look = random_look(rng, config.procedural)
    return ProceduralFace(geometry, look, face_px / geometry.box_side, pose)


def _photo_face(rng: np.random.Generator, config: SceneConfig, bank: FaceBank,
                face_px: float) -> PreparedFace:
    """A bank face turned toward a sampled pose, at most ``max_turn_deg`` from a source
    copy; a pose further than ``procedural_beyond_deg`` beyond reach, or a size no bank face
    reaches within ``max_enlargement``, is a procedural face."""
    faces = bank.faces
    if config.max_enlargement:
        faces = [f for f in faces if f[0].face_px * config.max_enlargement >= face_px]
        if not faces:
            return _procedural_face(rng, config, sample_pose(rng, config), face_px)
    sources = faces[rng.integers(len(faces))]
    pose = sample_pose(rng, config)
    wanted = euler_to_matrix(*pose)
    source, rotation = reachable_rotation(sources, wanted, config.max_turn_deg,
                                          config.turn_in_plane_free)
    if config.procedural_beyond_deg and (turn_angle_deg(rotation, wanted)
                                         > config.procedural_beyond_deg):
        return _procedural_face(rng, config, pose, face_px)
    return PhotoFace(render_face(source, rotation, face_px), config.colour_match)


def _prepare_face(rng: np.random.Generator, config: SceneConfig, bank: FaceBank,
                  face_px: float) -> PreparedFace:
    """A face of long side ``face_px`` from one of the sources the bank and settings offer:
    a small crop (for small faces), a procedural face, or a turned photo face."""
    if (bank.tiny and face_px < config.tiny_face_px and config.tiny_fraction
            and rng.random() < config.tiny_fraction):
        tiny = bank.tiny[rng.integers(len(bank.tiny))]
        return CropFace.of(tiny, face_px, mirrored=bool(rng.random() < 0.5))
    if not bank.faces or rng.random() < config.procedural_fraction:
        return _procedural_face(rng, config, sample_pose(rng, config), face_px)
    return _photo_face(rng, config, bank, face_px)


def _place(rng: np.random.Generator, config: SceneConfig, face: PreparedFace,
           placed: list[np.ndarray]) -> np.ndarray | None:
    """Where the face's own coordinates go in the image (its offset) so that at most
    ``max_outside`` of its box leaves the picture and its head region (``head_margin`` around,
    ``neck_margin`` below) covers at most ``max_overlap`` of an earlier face box; None when
    ``placement_tries`` tries fail."""
    size = face.size
    around = np.full(2, size.max() * config.head_margin, np.float32)
    below = np.array([size.max() * config.head_margin, size.max() * config.neck_margin],
                     np.float32)
    low = -size * config.max_outside
    high = np.float32([config.width, config.height]) - size * (1.0 - config.max_outside)
    for _ in range(config.placement_tries):
        corner = low + rng.uniform(0, 1, 2) * (high - low)
        box = np.concatenate([corner, corner + size])
        head = np.concatenate([corner - around, corner + size + below])
        # The tolerance keeps a face wholly inside from failing on rounding.
        if (visible_fraction(box, config.width, config.height) >= 1.0 - config.max_outside - 1e-6
                and overlap_fraction(head, placed) <= config.max_overlap):
            return (corner - face.box[:2]).astype(np.float32)
    return None


def _occlude(image: np.ndarray, rng: np.random.Generator, box: np.ndarray) -> None:
    """Cover up to about 40% of a face with a hand-, cup- or scarf-like blob."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    side = rng.integers(4)
    depth = rng.uniform(0.15, 0.35)
    corners = {0: (x0, y1 - depth * h, x1, y1 + 0.2 * h),
               1: (x0 - 0.2 * w, y0, x0 + depth * w, y1),
               2: (x1 - depth * w, y0, x1 + 0.2 * w, y1),
               3: (x0, y0 - 0.2 * h, x1, y0 + depth * h)}
    ax0, ay0, ax1, ay1 = corners[int(side)]
    centre = (int((ax0 + ax1) / 2), int((ay0 + ay1) / 2))
    axes = (max(1, int((ax1 - ax0) / 2)), max(1, int((ay1 - ay0) / 2)))
    colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
    cv2.ellipse(image, centre, axes, float(rng.uniform(-20, 20)), 0, 360, colour, -1, cv2.LINE_AA)


def _face_sizes(rng: np.random.Generator, config: SceneConfig, count: int,
                crowd: bool) -> np.ndarray:
    """Long sides of ``count`` faces, log-uniform, small to large (drawn far to near)."""
    px_low, px_high = config.face_px_range
    if crowd:
        px_high = max(min(px_high, CROWD_FACE_PX), px_low)
    log_range = np.log([px_low, px_high])
    return np.sort(np.exp(rng.uniform(*log_range, count)))


def compose(rng: np.random.Generator, config: SceneConfig, bank: FaceBank = FaceBank()
            ) -> tuple[np.ndarray, FaceLabels]:
    """One scene (BGR uint8) and its labels, every random choice drawn from ``rng``."""
    faces = _Faces()
    image, count, crowd = _backdrop(rng, config, bank, faces)
    sizes = _face_sizes(rng, config, count, crowd)
    placed = list(faces.boxes)
    for face_px in sizes:
        face = _prepare_face(rng, config, bank, float(face_px))
        offset = _place(rng, config, face, placed)
        if offset is None:
            continue
        faces.add_drawn(face.draw(image, rng, offset))
        if config.occlusion_probability and rng.random() < config.occlusion_probability:
            _occlude(image, rng, faces.boxes[-1])
        if config.hand_probability and rng.random() < config.hand_probability:
            hand_near_face(image, rng, faces.boxes[-1], config.hands, placed)
        placed.append(faces.boxes[-1])
    if config.free_hand_probability and rng.random() < config.free_hand_probability:
        free_hand(image, rng, float(np.median(sizes)) if count else 60.0, config.hands,
                  faces.boxes)
    labels = faces.labels()
    if config.scene_turn_probability and rng.random() < config.scene_turn_probability:
        theta = sample_turn(rng, config.scene_turn_deg, config.scene_turn_max_deg,
                            config.scene_turn_wide_share)
        image, labels = rotate_scene(image, labels, theta, faces.outlines, config.min_visible)
    if rng.random() < config.augment_probability:
        image = photometric(image, rng, config.photometric)
    return image, labels


# --------------------------------------------------------------------------------------------
# Scene sets


@dataclass(frozen=True)
class ProceduralScenes:
    """Procedural scenes as ``config`` describes them (:meth:`SceneConfig.procedural_only`)."""

    config: SyntheticConfig = SyntheticConfig()

    @functools.cached_property
    def scene_config(self) -> SceneConfig:
        return SceneConfig.procedural_only(self.config)

    def __call__(self, rng: np.random.Generator) -> tuple[np.ndarray, FaceLabels]:
        return compose(rng, self.scene_config)


@dataclass(frozen=True)
class BankScenes:
    """Scenes of the bank stored at ``bank_path`` (:func:`mos_ros.scenes.bank.save_bank`);
    cheap to pickle, so each render worker loads the bank itself."""

    config: SceneConfig
    bank_path: str

    def __call__(self, rng: np.random.Generator) -> tuple[np.ndarray, FaceLabels]:
        return compose(rng, self.config, cached_bank(self.bank_path))


def write_synthetic_set(out_dir: str | Path, count: int, seed: int,
                        config: SyntheticConfig | None = None, workers: int = 1) -> Path:
    """A procedural set of ``count`` scenes in ``out_dir`` (see
    :func:`~mos_ros.scenes.writer.write_scene_set`); returns the label file path."""
    return write_scene_set(out_dir, count, seed, ProceduralScenes(config or SyntheticConfig()),
                           workers)
