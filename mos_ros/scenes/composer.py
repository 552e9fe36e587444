"""Training scenes from real faces: the data engine's composer.

A scene is a background (a face-free photo or a procedural one), faces pasted from far to
near, and the photometric changes of a camera. Most faces are real photo faces turned to a new
pose by :mod:`mos_ros.scenes.reface`; a share are procedural faces (which reach the extreme
poses real sources cannot); some scenes are a training photo itself with its teacher-labelled
faces; some hold no face at all. Every label is known by construction. Scene ``i`` is a pure
function of ``(seed, i)`` and the bank, so a set is reproducible and worker-independent.
"""
from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mos_ros.core.labels import MIRRORED_LANDMARK_ORDER, FaceLabels
from mos_ros.core.pose import euler_to_matrix, mirror_pose
from mos_ros.scenes.backgrounds import render_background
from mos_ros.scenes.config import SceneConfig
from mos_ros.scenes.hands import free_hand, hand_near_face
from mos_ros.scenes.photometric import photometric
from mos_ros.scenes.procedural import draw_procedural_face
from mos_ros.scenes.reface import FaceSource, reachable_rotation, render_face, turn_angle_deg
from mos_ros.scenes.rotation import rotate_scene, sample_turn, visible_fraction
from mos_ros.scenes.sampling import overlap_fraction, sample_pose

BANK_FILE = "bank.pkl"


@dataclass(frozen=True)
class PhotoFaces:
    """A real training photo and its teacher-consensus faces."""

    image: np.ndarray
    labels: FaceLabels
    name: str


@dataclass(frozen=True)
class TinyFace:
    """A small face crop pasted as it is (too little texture to turn), with its labels in
    crop pixels: box, landmarks and the pose FaceMesh fitted on the upsampled crop."""

    crop: np.ndarray
    box: np.ndarray
    landmarks: np.ndarray
    pose: tuple[float, float, float]


@dataclass(frozen=True)
class FaceBank:
    """What scenes are made of: turnable photo faces (each with its mirror), face-free
    backgrounds, labelled training photos and small face crops."""

    faces: tuple[tuple[FaceSource, ...], ...]
    backgrounds: tuple[np.ndarray, ...]
    photos: tuple[PhotoFaces, ...] = ()
    tiny: tuple[TinyFace, ...] = ()

    def __post_init__(self) -> None:
        """A bank without faces cannot make scenes."""
        if not self.faces:
            raise ValueError("face bank has no photo faces: no training photo gave a FaceMesh "
                             "fit")


@dataclass
class _Faces:
    """Labels gathered while a scene is composed."""

    boxes: list = field(default_factory=list)
    landmarks: list = field(default_factory=list)
    poses: list = field(default_factory=list)
    has_landmarks: list = field(default_factory=list)
    has_pose: list = field(default_factory=list)
    #: Mesh points of each face where known (rendered photo faces), else None.
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
    if bank.backgrounds and rng.random() < config.photo_background_probability:
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


# --------------------------------------------------------------------------------------------
# Faces


def _free_centre(rng: np.random.Generator, config: SceneConfig, face_px: float,
                 placed: list[np.ndarray]) -> np.ndarray | None:
    """A face centre whose head region (1.6 face sizes) hides little of earlier faces."""
    size = np.float32([config.width, config.height])
    for _ in range(25):
        centre = rng.uniform(-0.2, 1.2, 2).astype(np.float32) * size
        head = np.concatenate([centre - 0.8 * face_px, centre + 0.8 * face_px])
        box = np.concatenate([centre - face_px / 2, centre + face_px / 2])
        if (visible_fraction(box, config.width, config.height) >= config.min_visible + 0.1
                and overlap_fraction(head, placed) <= config.max_overlap):
            return centre
    return None


def _paste(image: np.ndarray, rendered, centre: np.ndarray, rng: np.random.Generator,
           config: SceneConfig) -> np.ndarray:
    """Blend a turned face into ``image`` (in place) centred at ``centre``; returns the offset
    of the patch's origin in the image."""
    box_centre = (rendered.box[:2] + rendered.box[2:]) / 2
    offset = np.round(centre - box_centre).astype(int)
    h, w = rendered.alpha.shape
    x0, y0 = max(offset[0], 0), max(offset[1], 0)
    x1, y1 = min(offset[0] + w, image.shape[1]), min(offset[1] + h, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        return offset
    patch = rendered.patch[y0 - offset[1]:y1 - offset[1], x0 - offset[0]:x1 - offset[0]]
    alpha = rendered.alpha[y0 - offset[1]:y1 - offset[1], x0 - offset[0]:x1 - offset[0], None]
    region = image[y0:y1, x0:x1].astype(np.float32)
    patch = _match_colour(patch, alpha, region, rng, config)
    image[y0:y1, x0:x1] = np.clip(patch + region * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)
    return offset


def _match_colour(patch: np.ndarray, alpha: np.ndarray, region: np.ndarray,
                  rng: np.random.Generator, config: SceneConfig) -> np.ndarray:
    """Pull the face's mean colour part of the way to the scene's, plus a lighting gain."""
    weight = float(alpha.sum())
    if weight < 1:
        return patch
    face_mean = patch.reshape(-1, 3).sum(axis=0) / weight
    scene_mean = region.reshape(-1, 3).mean(axis=0)
    shift = (scene_mean - face_mean) * rng.uniform(0, config.colour_match)
    gain = rng.uniform(0.75, 1.2) * rng.uniform(0.92, 1.08, 3)
    return np.clip(patch * gain + shift * alpha, 0, None)


def _draw_real_face(image: np.ndarray, rng: np.random.Generator, config: SceneConfig,
                    bank: FaceBank, face_px: float, centre: np.ndarray, faces: _Faces) -> None:
    sources = bank.faces[rng.integers(len(bank.faces))]
    pose = sample_pose(rng, config)
    wanted = euler_to_matrix(*pose)
    source, rotation = reachable_rotation(sources, wanted, config.max_turn_deg,
                                          config.turn_in_plane_free)
    if config.procedural_beyond_deg and (turn_angle_deg(rotation, wanted)
                                         > config.procedural_beyond_deg):
        box, landmarks = draw_procedural_face(image, rng, config.procedural, pose, face_px,
                                              centre)
        faces.add(box, landmarks, pose)
        return
    rendered = render_face(source, rotation, face_px)
    offset = _paste(image, rendered, centre, rng, config)
    faces.add(rendered.box + np.tile(offset, 2), rendered.landmarks + offset, rendered.pose,
              rendered.outline + offset)


def _draw_tiny_face(image: np.ndarray, rng: np.random.Generator, tiny: TinyFace,
                    face_px: float, centre: np.ndarray, faces: _Faces) -> None:
    """Paste a small crop (mirrored half the time) so its face box is ``face_px`` long."""
    crop, box, landmarks = tiny.crop, tiny.box, tiny.landmarks
    yaw, pitch, roll = tiny.pose
    if rng.random() < 0.5:
        width = crop.shape[1]
        crop = np.ascontiguousarray(crop[:, ::-1])
        box = np.float32([width - box[2], box[1], width - box[0], box[3]])
        landmarks = np.stack([width - landmarks[:, 0], landmarks[:, 1]], axis=1)
        landmarks = landmarks[list(MIRRORED_LANDMARK_ORDER)]
        yaw, pitch, roll = mirror_pose(yaw, pitch, roll).as_tuple()
    scale = face_px / float(np.ptp(box.reshape(2, 2), axis=0).max())
    shift = np.asarray(centre, np.float32) - (box[:2] + box[2:]) / 2 * scale
    matrix = np.float32([[scale, 0, shift[0]], [0, scale, shift[1]]])
    size = (image.shape[1], image.shape[0])
    colour = cv2.warpAffine(crop, matrix, size, flags=cv2.INTER_AREA).astype(np.float32)
    mask = np.zeros(crop.shape[:2], np.float32)
    height, width = mask.shape
    cv2.ellipse(mask, (width // 2, height // 2), (width // 2, height // 2), 0, 0, 360, 1.0, -1)
    alpha = cv2.warpAffine(cv2.GaussianBlur(mask, (0, 0), 1.5), matrix, size)[..., None]
    blended = colour * alpha + image.astype(np.float32) * (1 - alpha)
    image[:] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    faces.add(box * scale + np.tile(shift, 2), landmarks * scale + shift, (yaw, pitch, roll))


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


def compose(rng: np.random.Generator, config: SceneConfig, bank: FaceBank
            ) -> tuple[np.ndarray, FaceLabels]:
    """One scene and its labels, all drawn from ``rng``."""
    faces = _Faces()
    if bank.photos and rng.random() < config.photo_scene_probability:
        image = _photo_scene(rng, config, bank.photos[rng.integers(len(bank.photos))], faces)
        count = int(rng.integers(0, 3))
    else:
        image = _background(rng, config, bank)
        crowd = rng.random() < config.crowd_probability
        low, high = config.crowd_range if crowd else config.faces_range
        count = 0 if rng.random() < config.empty_probability else int(rng.integers(low, high + 1))
    px_low, px_high = config.face_px_range
    if count >= config.crowd_range[0]:
        px_high = min(px_high, 60.0)
    sizes = np.sort(np.exp(rng.uniform(np.log(px_low), np.log(px_high), count)))
    placed = list(faces.boxes)
    for face_px in sizes:
        centre = _free_centre(rng, config, float(face_px), placed)
        if centre is None:
            continue
        if (bank.tiny and face_px < config.tiny_face_px
                and rng.random() < config.tiny_fraction):
            _draw_tiny_face(image, rng, bank.tiny[rng.integers(len(bank.tiny))],
                            float(face_px), centre, faces)
        elif rng.random() < config.procedural_fraction:
            pose = sample_pose(rng, config)
            box, landmarks = draw_procedural_face(image, rng, config.procedural, pose,
                                                  float(face_px), centre)
            faces.add(box, landmarks, pose)
        else:
            _draw_real_face(image, rng, config, bank, float(face_px), centre, faces)
        if rng.random() < config.occlusion_probability:
            _occlude(image, rng, faces.boxes[-1])
        # Settings at 0 draw no random number, so older sets render as they did.
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
# Writing a set


def save_bank(bank: FaceBank, path: str | Path) -> Path:
    """Store the bank for the render workers (a private cache of this module)."""
    path = Path(path)
    path.write_bytes(pickle.dumps(bank, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def load_bank(path: str | Path) -> FaceBank:
    """Read a bank written by :func:`save_bank`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"face bank not found: {path} (run `mos data bank` first)")
    bank = pickle.loads(path.read_bytes())
    if not isinstance(bank, FaceBank):
        raise ValueError(f"{path} does not hold a face bank")
    return bank


@functools.lru_cache(maxsize=1)
def _cached_bank(path: str) -> FaceBank:
    """The bank at ``path``, read once per process (each render worker reads its own)."""
    return load_bank(path)


@dataclass(frozen=True)
class BankScenes:
    """The data engine's scene composer (:func:`compose` with the bank stored at
    ``bank_path``); cheap to pickle, so each render worker loads the bank itself."""

    config: SceneConfig
    bank_path: str

    def __call__(self, rng: np.random.Generator) -> tuple[np.ndarray, FaceLabels]:
        return compose(rng, self.config, _cached_bank(self.bank_path))
