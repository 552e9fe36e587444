"""Hands and forearms near faces: unlabelled hard negatives for the scene composer.

Real photos put hands next to faces (a chin on a fist, a hand waving, an arm across the
chest), in the face's own skin tone. A detector that has never seen them calls them faces.
Each hand is drawn procedurally: a palm (rotated ellipse), four fingers and a thumb (round
capped strokes, slightly curled), optionally on a tapering forearm, shaded as a rounded body
(brighter along each part's middle, from the distance to its outline) under a directional
light, with skin noise and a soft anti-aliased edge. Nothing here is labelled: a hand is
background to the detector.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from mos_ros.scenes.config import HandConfig
from mos_ros.scenes.procedural import SKIN_TONES

#: Hands shorter than this (px) are drawn larger and averaged down (anti-aliasing), at most
#: ``_MAX_SUPERSAMPLING`` times.
_MIN_DRAW_PX = 96.0
_MAX_SUPERSAMPLING = 3


def face_tone(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """Median BGR of the cheeks-and-nose middle of a face box (its skin), or None if the box
    is outside the image."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    inner = np.round([x0 + 0.3 * w, y0 + 0.45 * h, x1 - 0.3 * w, y1 - 0.25 * h]).astype(int)
    inner[[0, 2]] = np.clip(inner[[0, 2]], 0, image.shape[1])
    inner[[1, 3]] = np.clip(inner[[1, 3]], 0, image.shape[0])
    patch = image[inner[1]:inner[3], inner[0]:inner[2]]
    return np.median(patch.reshape(-1, 3), axis=0).astype(np.float32) if patch.size else None


def _supersampling(length: float) -> int:
    return int(np.clip(np.ceil(_MIN_DRAW_PX / max(length, 1.0)), 1, _MAX_SUPERSAMPLING))


def _hand_mask(length: float, angle_deg: float, rng: np.random.Generator, arm: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """A hand (and ``arm`` hand lengths of forearm behind the wrist) as a uint8 mask drawn
    :func:`_supersampling` times larger, pointing at ``angle_deg`` (0 = fingers up, clockwise
    on screen), and the wrist's position in the mask (mask pixels)."""
    scale = length * _supersampling(length)
    reach = scale * (1.2 + arm)
    side = int(np.ceil(2 * reach)) + 4
    mask = np.zeros((side, side), np.uint8)
    centre = np.array([side / 2, side / 2])
    direction = np.array([np.sin(np.radians(angle_deg)), -np.cos(np.radians(angle_deg))])
    across = np.array([-direction[1], direction[0]])
    wrist = centre - direction * 0.5 * scale
    palm = wrist + direction * 0.3 * scale
    palm_axes = (max(1, int(0.22 * scale * rng.uniform(0.9, 1.1))), max(1, int(0.26 * scale)))
    cv2.ellipse(mask, _point(palm), palm_axes, float(angle_deg), 0, 360, 255, -1)
    spread = rng.uniform(4, 16)
    curl = rng.uniform(0, 0.5)                       # folded fingers: a fist at 0.5
    for index, offset in enumerate((-0.15, -0.05, 0.05, 0.15)):
        base = palm + direction * 0.2 * scale + across * offset * scale
        finger_angle = np.radians(angle_deg + (index - 1.5) * spread)
        finger = np.array([np.sin(finger_angle), -np.cos(finger_angle)])
        finger_length = scale * (0.42 if index in (1, 2) else 0.34) * (1 - curl)
        tip = base + finger * finger_length
        cv2.line(mask, _point(base), _point(tip), 255, max(1, int(0.085 * scale)), cv2.LINE_AA)
    side_sign = rng.choice([-1.0, 1.0])
    thumb_base = palm + across * side_sign * 0.18 * scale
    thumb_angle = np.radians(angle_deg + side_sign * rng.uniform(35, 70))
    thumb_tip = thumb_base + np.array([np.sin(thumb_angle), -np.cos(thumb_angle)]) * 0.3 * scale
    cv2.line(mask, _point(thumb_base), _point(thumb_tip), 255, max(1, int(0.1 * scale)),
             cv2.LINE_AA)
    if arm > 0:
        elbow = wrist - direction * arm * scale
        width_wrist, width_elbow = 0.2 * scale, 0.28 * scale
        polygon = np.array([wrist + across * width_wrist, wrist - across * width_wrist,
                            elbow - across * width_elbow, elbow + across * width_elbow])
        cv2.fillConvexPoly(mask, np.round(polygon).astype(np.int32), 255, cv2.LINE_AA)
    return mask, wrist


def _point(xy: np.ndarray) -> tuple[int, int]:
    return int(round(xy[0])), int(round(xy[1]))


def _shade(mask: np.ndarray, tone: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """BGR float layer of a rounded skin body in ``tone``: brighter along the middle of each
    part, a directional light across the whole, and fine skin noise."""
    solid = (mask > 127).astype(np.uint8)
    depth = cv2.distanceTransform(solid, cv2.DIST_L2, 3)
    roundness = np.sqrt(depth / max(float(depth.max()), 1e-6))
    light = rng.normal(size=2)
    light /= np.linalg.norm(light) + 1e-9
    ys, xs = np.mgrid[0:mask.shape[0], 0:mask.shape[1]].astype(np.float32)
    ramp = ((xs * light[0] + ys * light[1]) / max(mask.shape)).astype(np.float32)
    brightness = 0.5 + 0.5 * roundness + 0.3 * (ramp - ramp.mean())
    texture = rng.normal(0.0, 0.03, mask.shape).astype(np.float32)
    brightness = cv2.GaussianBlur(brightness + texture, (0, 0), 1.0)
    return np.clip(brightness[..., None] * tone[None, None, :], 0, 255)


def draw_hand(image: np.ndarray, rng: np.random.Generator, wrist_xy: np.ndarray,
              length: float, angle_deg: float, tone: np.ndarray, arm: float = 0.0) -> np.ndarray:
    """Draw a hand into ``image`` (in place) with its wrist at ``wrist_xy``, ``length`` px from
    wrist to finger tips, pointing at ``angle_deg`` (0 = up, clockwise on screen), and ``arm``
    hand lengths of forearm behind the wrist. Returns the hand's mask in image pixels
    (float32, 0..1)."""
    supersampling = _supersampling(float(length))
    mask, wrist = _hand_mask(float(length), float(angle_deg), rng, float(arm))
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return np.zeros(image.shape[:2], np.float32)
    margin = 2 * supersampling
    x0, y0 = max(xs.min() - margin, 0), max(ys.min() - margin, 0)
    mask = mask[y0:ys.max() + margin + 1, x0:xs.max() + margin + 1]
    wrist = wrist - [x0, y0]
    colour = _shade(mask, np.asarray(tone, np.float32), rng)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), supersampling / 2)
    size = (max(1, mask.shape[1] // supersampling), max(1, mask.shape[0] // supersampling))
    colour = cv2.resize(colour * alpha[..., None], size, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    corner = np.round(np.asarray(wrist_xy) - wrist / supersampling).astype(int)
    return _blend(image, colour, alpha, corner)


def _blend(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray, corner: np.ndarray
           ) -> np.ndarray:
    """Alpha-blend a premultiplied layer into ``image`` at ``corner`` (clipped to the image);
    returns the layer's alpha in image pixels."""
    height, width = image.shape[:2]
    x0, y0 = max(corner[0], 0), max(corner[1], 0)
    x1 = min(corner[0] + alpha.shape[1], width)
    y1 = min(corner[1] + alpha.shape[0], height)
    placed = np.zeros((height, width), np.float32)
    if x1 <= x0 or y1 <= y0:
        return placed
    part = (slice(y0 - corner[1], y1 - corner[1]), slice(x0 - corner[0], x1 - corner[0]))
    a = alpha[part][..., None]
    region = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.clip(colour[part] + region * (1 - a) + 0.5, 0, 255).astype(np.uint8)
    placed[y0:y1, x0:x1] = alpha[part]
    return placed


def _tone(image: np.ndarray, box: np.ndarray | None, rng: np.random.Generator,
          config: HandConfig) -> np.ndarray:
    """The face's skin (jittered) or, sometimes or without a face, a stock tone."""
    tone = face_tone(image, box) if box is not None else None
    if tone is None or rng.random() >= config.face_tone_probability:
        tone = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    return np.clip(tone * rng.uniform(0.85, 1.1) * rng.uniform(0.95, 1.05, 3), 0, 255)


#: Where a hand goes around a face: (wrist offset in face sizes from the box centre, the
#: direction the fingers point, degrees, 0 = up).
_PLACES = (((0.0, 0.95), 0.0),      # fist or palm under the chin
           ((-1.0, 0.4), 20.0),     # raised beside the face, left
           ((1.0, 0.4), -20.0),     # and right
           ((-1.3, 0.9), 60.0),     # reaching across below
           ((1.3, 0.9), -60.0),
           ((-0.9, 1.6), 10.0),     # waving lower down
           ((0.9, 1.6), -10.0))


def covered_share(mask: np.ndarray, box: np.ndarray) -> float:
    """Share of ``box`` (x1, y1, x2, y2) that a 0..1 ``mask`` covers."""
    x0, y0, x1, y1 = np.round(box).astype(int)
    inside = mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)]
    return float(inside.sum()) / max((x1 - x0) * (y1 - y0), 1)


def hand_near_face(image: np.ndarray, rng: np.random.Generator, box: np.ndarray,
                   config: HandConfig, others: Sequence[np.ndarray] = ()
                   ) -> np.ndarray | None:
    """Draw a hand (maybe on a forearm) beside face ``box``, in place, covering at most
    ``config.max_face_cover`` of it and of every box in ``others`` (faces already in the
    scene); returns the hand's mask, or None when every try would hide too much."""
    box = np.asarray(box, np.float64)
    face = float(max(box[2] - box[0], box[3] - box[1]))
    centre = (box[:2] + box[2:]) / 2
    length = face * rng.uniform(*config.length_range)
    arm = rng.uniform(0.8, 1.6) if rng.random() < config.arm_probability else 0.0
    tone = _tone(image, box, rng, config)
    for _ in range(4):
        offset, angle = _PLACES[rng.integers(len(_PLACES))]
        wrist = centre + np.asarray(offset) * face + rng.normal(0, 0.1, 2) * face
        angle = angle + rng.normal(0, 15)
        trial = image.copy()
        mask = draw_hand(trial, rng, wrist, length, angle, tone, arm)
        if all(covered_share(mask, face_box) <= config.max_face_cover
               for face_box in (box, *others)):
            image[:] = trial
            return mask
    return None


def free_hand(image: np.ndarray, rng: np.random.Generator, face_px: float,
              config: HandConfig, others: Sequence[np.ndarray] = ()) -> np.ndarray | None:
    """A hand (maybe on a forearm) anywhere in the scene, sized for a ``face_px`` face,
    covering at most ``config.max_face_cover`` of each box in ``others``; None when every
    try would hide too much of a face."""
    height, width = image.shape[:2]
    arm = rng.uniform(0.8, 1.6) if rng.random() < config.arm_probability else 0.0
    length = face_px * rng.uniform(*config.length_range)
    tone = _tone(image, None, rng, config)
    for _ in range(4):
        trial = image.copy()
        mask = draw_hand(trial, rng, rng.uniform([0, 0], [width, height]), length,
                         rng.uniform(-180, 180), tone, arm)
        if all(covered_share(mask, box) <= config.max_face_cover for box in others):
            image[:] = trial
            return mask
    return None
