"""``mos eval head3d``: how far off are the 3-D head positions and orientations?

Rendered set. Real faces of the ``heldout`` photos (never trained on), lifted to 3-D by the
data engine (:mod:`mos_ros.scenes.reface`), are put in front of a 640x480 pinhole camera (60 deg
horizontal field of view) at known depths of the sellion (0.5 to 4 m), at a random place in the
image, turned to a random pose, scaled by a random face size (people differ: about 6 % standard
deviation), and rendered with a true perspective projection onto a face-free background photo.
One face per image. The truth is what was rendered: the sellion's position and the head
rotation in the optical frame.

Each image goes through the real detector; the detection that overlaps the rendered face
(IoU >= 0.4) is placed in 3-D by :func:`mos_ros.core.head3d.place_head`. Reported per distance:
the median relative depth error of our placement beside two baselines (the box width with a
mean face width; a constant depth, the median of the set), and the median angle between the
estimated and the true head rotation, beside the MOS angles read directly as optical-frame
angles (no correction for where the face is in the image) and a constant frontal face turned
towards the camera.
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mos_ros.core.camera import PinholeCamera
from mos_ros.core.head3d import (PIXEL_CORNER_TO_CENTRE, fit_translation, head_rotation,
                                 place_head, position_from_box, viewing_rotation)
from mos_ros.core.image_io import read_image
from mos_ros.core.nms import iou_matrix
from mos_ros.core.pose import euler_to_matrix
from mos_ros.core.types import Face, HeadPose
from mos_ros.data.sources import photos
from mos_ros.detector import FaceDetector
from mos_ros.evaluate.command import Report
from mos_ros.resources import default_model_path
from mos_ros.scenes.reface import reachable_rotation, render_projected

log = logging.getLogger(__name__)

#: Index of the sellion among the 468 FaceMesh vertices (the head frame's origin).
SELLION_VERTEX = 168
#: A detection must overlap the rendered face's box this much to be its detection.
MATCH_IOU = 0.4
CM_PER_M = 100.0


@dataclass(frozen=True)
class Head3DSetConfig:
    """What the rendered set holds. Angles are drawn uniformly within the limits, relative to
    the ray from the camera to the face (as a face looks in its image)."""

    distances_m: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
    faces_per_distance: int = 30
    width: int = 640
    height: int = 480
    hfov_deg: float = 60.0
    yaw_limit_deg: float = 60.0
    pitch_limit_deg: float = 25.0
    roll_limit_deg: float = 20.0
    #: Standard deviation of face size relative to the mean face.
    size_spread: float = 0.06
    #: The sellion stays this share of the image size away from its borders.
    margin: float = 0.2
    #: A photo face is turned at most this far from its pose in the photo (data engine's value).
    max_turn_deg: float = 40.0
    seed: int = 0

    @property
    def camera(self) -> PinholeCamera:
        """Square pixels, principal point at the image centre, ``hfov_deg`` wide."""
        focal = self.width / 2.0 / np.tan(np.radians(self.hfov_deg) / 2.0)
        return PinholeCamera(focal, focal, (self.width - 1) / 2.0, (self.height - 1) / 2.0,
                             self.width, self.height)


@dataclass(frozen=True)
class RenderedHead:
    """One rendered image and the truth: face box and five landmarks (pixels), sellion
    (metres) and R_cam_head."""

    image: np.ndarray
    box: np.ndarray
    landmarks: np.ndarray
    position: np.ndarray
    rotation: np.ndarray
    distance_m: float


def _sellion_at(rng: np.random.Generator, config: Head3DSetConfig, depth: float) -> np.ndarray:
    camera, margin = config.camera, config.margin
    u = rng.uniform(margin, 1.0 - margin) * config.width
    v = rng.uniform(margin, 1.0 - margin) * config.height
    xy = camera.normalized(np.array([[u, v]]) - PIXEL_CORNER_TO_CENTRE)[0]
    return np.array([xy[0] * depth, xy[1] * depth, depth])


def _background(rng: np.random.Generator, photos: Sequence[np.ndarray], width: int,
                height: int) -> np.ndarray:
    photo = photos[rng.integers(len(photos))]
    scale = max(width / photo.shape[1], height / photo.shape[0])
    resized = cv2.resize(photo, (int(np.ceil(photo.shape[1] * scale)),
                                 int(np.ceil(photo.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(resized[:height, :width]).astype(np.float32)


def render_head(rng: np.random.Generator, config: Head3DSetConfig, sources: Sequence,
                backgrounds: Sequence[np.ndarray], depth: float) -> RenderedHead:
    """One face of ``sources`` (pairs of FaceSource, photo and mirror) at sellion depth
    ``depth`` metres, posed, sized and placed at random, in perspective."""
    camera = config.camera
    sellion = _sellion_at(rng, config, depth)
    angles = [rng.uniform(-limit, limit) for limit in
              (config.yaw_limit_deg, config.pitch_limit_deg, config.roll_limit_deg)]
    source, seen = reachable_rotation(sources[rng.integers(len(sources))],
                                      euler_to_matrix(*angles), config.max_turn_deg)
    rotation = viewing_rotation(sellion / np.linalg.norm(sellion)) @ seen
    size = max(0.7, 1.0 + rng.normal(0.0, config.size_spread))
    shell = source.head_points.astype(np.float64)
    shell = (shell - shell[SELLION_VERTEX]) * (size / CM_PER_M)
    points = shell @ rotation.T + sellion
    pixels = camera.project(points) + PIXEL_CORNER_TO_CENTRE
    rendered = render_projected(source, pixels, points[:, 2], rotation)
    image = _background(rng, backgrounds, config.width, config.height)
    shift = np.float32([[1, 0, rendered.offset[0]], [0, 1, rendered.offset[1]]])
    size_wh = (config.width, config.height)
    alpha = cv2.warpAffine(rendered.alpha, shift, size_wh)[..., None]
    patch = cv2.warpAffine(rendered.patch, shift, size_wh)
    image = np.clip(patch + image * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
    box = np.concatenate([pixels[:468].min(axis=0), pixels[:468].max(axis=0)])
    return RenderedHead(image, box, rendered.landmarks + rendered.offset, sellion, rotation,
                        depth)


def rendered_set(config: Head3DSetConfig, sources: Sequence, backgrounds: Sequence[np.ndarray]):
    """Yield the set's :class:`RenderedHead` s, distance by distance (reproducible by seed)."""
    for index, depth in enumerate(config.distances_m):
        rng = np.random.default_rng([config.seed, index])
        for _ in range(config.faces_per_distance):
            yield render_head(rng, config, sources, backgrounds, depth)


def rotation_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation between rotations ``a`` and ``b``, degrees."""
    cosine = (np.trace(np.asarray(a) @ np.asarray(b).T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def _facing_camera(face: Face, camera: PinholeCamera) -> np.ndarray:
    return head_rotation(Face(face.box, face.score, face.landmarks, HeadPose(0.0, 0.0, 0.0)),
                         camera)


#: Depth estimators compared: name -> depth (m) of a detected face. The constant baseline is
#: added by :func:`summarise` (it needs the whole set).
DEPTH_METHODS: dict[str, Callable[[Face, PinholeCamera], float]] = {
    "landmarks + MOS pose": lambda face, camera: place_head(face, camera).position[2],
    "box width": lambda face, camera: float(
        position_from_box(face, head_rotation(face, camera), camera)[2]),
}
#: Orientation estimators compared: name -> R_cam_head of a detected face.
ROTATION_METHODS: dict[str, Callable[[Face, PinholeCamera], np.ndarray]] = {
    "MOS along the ray": head_rotation,
    "MOS as optical-frame angles": lambda face, camera: euler_to_matrix(
        face.pose.yaw, face.pose.pitch, face.pose.roll),
    "frontal, facing the camera": _facing_camera,
}
CONSTANT = "constant (set median)"
#: The mean face fitted to the rendered landmarks with the true rotation: the error a perfect
#: detector would leave, from faces that differ from the mean face.
FLOOR = "perfect landmarks and rotation"


@dataclass(frozen=True)
class Measurement:
    """What the estimators gave for one rendered head (depths in m, angle errors in degrees);
    empty dictionaries when the detector missed the face."""

    distance_m: float
    true_depth: float
    depths: dict
    angle_errors: dict
    method: str = ""


def measure(head: RenderedHead, detect: Callable[[np.ndarray], list[Face]],
            camera: PinholeCamera) -> Measurement:
    """Run the detector on one rendered head and every estimator on its detection."""
    faces = detect(head.image)
    if faces:
        overlaps = iou_matrix(np.array([f.box for f in faces], np.float64), head.box[None])[:, 0]
        best = int(np.argmax(overlaps))
    if not faces or overlaps[best] < MATCH_IOU:
        return Measurement(head.distance_m, float(head.position[2]), {}, {})
    face = faces[best]
    depths = {name: float(method(face, camera)) for name, method in DEPTH_METHODS.items()}
    depths[FLOOR] = float(fit_translation(head.landmarks, head.rotation, camera)[0][2])
    angles = {name: rotation_error_deg(method(face, camera), head.rotation)
              for name, method in ROTATION_METHODS.items()}
    return Measurement(head.distance_m, float(head.position[2]), depths, angles,
                       place_head(face, camera).method)


def summarise(measurements: Sequence[Measurement]) -> dict:
    """Per distance: faces, detected, share placed by landmarks, median relative depth error
    (%) per method with the constant baseline, median angle error (deg) per method."""
    constant = float(np.median([m.true_depth for m in measurements]))
    rows = []
    for distance in sorted({m.distance_m for m in measurements}):
        group = [m for m in measurements if m.distance_m == distance]
        found = [m for m in group if m.depths]
        row = {"distance_m": distance, "faces": len(group), "detected": len(found)}
        if found:
            depth_errors = {name: [abs(m.depths[name] - m.true_depth) / m.true_depth
                                   for m in found] for name in (*DEPTH_METHODS, FLOOR)}
            depth_errors[CONSTANT] = [abs(constant - m.true_depth) / m.true_depth
                                      for m in found]
            row["median_depth_error_pct"] = {name: round(100 * float(np.median(v)), 2)
                                             for name, v in depth_errors.items()}
            row["median_angle_error_deg"] = {
                name: round(float(np.median([m.angle_errors[name] for m in found])), 2)
                for name in ROTATION_METHODS}
            row["placed_by_landmarks"] = sum(m.method == "landmarks" for m in found)
        rows.append(row)
    return {"constant_depth_m": constant, "rows": rows}


def table(figures: dict) -> list[str]:
    """Markdown table of :func:`summarise`'s figures."""
    rows = [r for r in figures["rows"] if "median_depth_error_pct" in r]
    if not rows:
        return ["no face was detected"]
    depth_names = list(rows[0]["median_depth_error_pct"])
    angle_names = list(rows[0]["median_angle_error_deg"])
    header = (["distance (m)", "detected"] + [f"depth err. % {n}" for n in depth_names]
              + [f"angle err. deg {n}" for n in angle_names])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = ([f"{r['distance_m']:g}", f"{r['detected']}/{r['faces']}"]
                 + [f"{r['median_depth_error_pct'][n]:.1f}" for n in depth_names]
                 + [f"{r['median_angle_error_deg'][n]:.1f}" for n in angle_names])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot_depth_errors(figures: dict, path: Path) -> Path:
    """Median depth error against distance, one line per method."""
    import matplotlib  # optional (extra [train]): only when a plot is drawn
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in figures["rows"] if "median_depth_error_pct" in r]
    fig, axis = plt.subplots(figsize=(6, 4))
    for name in (rows[0]["median_depth_error_pct"] if rows else ()):
        axis.plot([r["distance_m"] for r in rows],
                  [r["median_depth_error_pct"][name] for r in rows], marker="o", label=name)
    axis.set_xlabel("distance of the face (m)")
    axis.set_ylabel("median depth error (%)")
    axis.set_yscale("log")  # the constant baseline is tens of times off at the ends
    axis.grid(alpha=0.3)
    axis.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def heldout_sources_and_backgrounds(root: Path | None = None):
    """Turnable faces of the held-out photos (data engine's bank) and face-free photos."""
    from mos_ros.data.bank import build_bank  # the data engine: only to build the set

    bank = build_bank(photos("heldout", root), [])
    backgrounds = [read_image(path) for path in photos("background", root)]
    return bank.faces, backgrounds


def evaluate_head3d(config: Head3DSetConfig, detect: Callable[[np.ndarray], list[Face]],
                    sources: Sequence, backgrounds: Sequence[np.ndarray]) -> dict:
    """Render the set, measure every head and summarise."""
    measurements = [measure(head, detect, config.camera)
                    for head in rendered_set(config, sources, backgrounds)]
    figures = summarise(measurements)
    figures["config"] = {"faces_per_distance": config.faces_per_distance,
                         "hfov_deg": config.hfov_deg, "size_spread": config.size_spread,
                         "image": [config.width, config.height], "seed": config.seed,
                         "source_faces": len(sources)}
    return figures


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``mos eval head3d``."""
    parser.add_argument("--model", type=Path, default=None, help="model (default: shipped)")
    parser.add_argument("--root", type=Path, default=None, help="data root of the photos")
    parser.add_argument("--faces", type=int, default=Head3DSetConfig.faces_per_distance,
                        help="rendered faces per distance")
    parser.add_argument("--size-spread", type=float, default=Head3DSetConfig.size_spread,
                        help="standard deviation of face size relative to the mean face "
                             "(0: every face has the mean size)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> Report:
    """Run ``mos eval head3d`` and return its report."""
    detector = FaceDetector.open(args.model or default_model_path("", ""))
    config = Head3DSetConfig(faces_per_distance=args.faces, size_spread=args.size_spread,
                             seed=args.seed)
    sources, backgrounds = heldout_sources_and_backgrounds(args.root)
    figures = evaluate_head3d(config, detector.detect, sources, backgrounds)
    plot = plot_depth_errors(figures, args.out / "head3d_depth_error.png")
    return Report(table(figures), figures, [plot])
