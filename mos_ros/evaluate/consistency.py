"""``mos eval consistency``: label-free checks of pose and landmarks on real photos.

A model that reads head pose must answer a turned picture with a turned pose, and a mirrored
picture with a mirrored pose. Neither needs labels, so both run on the held-out photos of
:mod:`mos_ros.evaluate.real_photos` (every photo at its three scales, shrunk first to a long
side of at most 640 so the model sees the same pixels upright and turned).

Reference faces
    The model's upright detections that match a ground-truth face (IoU >= 0.5) with a long
    side of at least 40 px: real faces, not false positives.

Rotation by theta (OpenCV sign: theta > 0 turns the picture counter-clockwise on screen)
    The photo is turned about its centre on a canvas that keeps all of it in view. A reference
    face is *kept* when a detection overlaps its turned box (:func:`~mos_ros.core.pose.
    rotated_box`) at IoU >= 0.5. For kept faces: the eye-line change (angle of landmark 1 -
    landmark 0, clockwise positive like roll) against -theta, and roll, yaw and pitch against
    the upright reading turned through the rotation matrix (:func:`~mos_ros.core.pose.
    rotate_pose`). For a frontal face that is roll - theta with yaw and pitch put; for a
    turned one the nose axis turns with the picture, so yaw and pitch trade places and roll
    moves by a little more or less than theta. The JSON also holds the plain changes
    |roll' - roll + theta|, |yaw' - yaw| and |pitch' - pitch|.

Mirror
    The photo flipped left-right: |yaw + yaw'|, |roll + roll'| and |pitch - pitch'|.

Against FaceMesh
    Upright detections matched to ground-truth faces of at least 60 px: yaw/pitch/roll MAE
    against the FaceMesh fit that labels the held-out set, and the spread (standard
    deviation) of predicted and true angles.

Distinct faces
    Every photo is checked at its three scales, so one face can count up to three times.
    Beside each count stands the number of distinct faces (:func:`face_id`: photo and
    ground-truth index, whatever the scale), which is what the figures really rest on.

The constant predictor beside every figure gives every face the median FaceMesh pose and the
upright five-point template. It never changes its answer, so under rotation its roll and
eye-line errors are |theta|; it is perfectly consistent under mirroring only if its constant
is frontal, so the mirror checks show symmetry, not information: the FaceMesh MAE and spread
are what tell a model from a constant.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mos_ros.core.labels import LabelledFace
from mos_ros.core.pose import expanded_rotation, rotate_pose, rotated_box
from mos_ros.core.postprocess import DecodeSettings
from mos_ros.detector import FaceDetector
from mos_ros.evaluate.contestants import MOS_MAX_INPUT_SIZE, DetectFn
from mos_ros.evaluate.metrics import greedy_matches
from mos_ros.evaluate.pose import ANGLES
from mos_ros.evaluate.real_photos import (
    MOSAIC_NAME, SMALL_FACE_PX, HeldOutImage)
from mos_ros.evaluate.real_photos import held_out_set
from mos_ros.resources import default_model_path

log = logging.getLogger(__name__)

#: In-plane rotations tried, degrees (OpenCV sign).
ROTATIONS: tuple[float, ...] = (-45.0, -30.0, -15.0, 15.0, 30.0, 45.0)
#: Smallest reference face (long side, px) and smallest face compared with FaceMesh.
REFERENCE_MIN_PX = SMALL_FACE_PX
FACEMESH_MIN_PX = 60.0
#: IoU for a detection to be the (turned, mirrored) reference face or a ground-truth face.
FOLLOW_IOU = 0.5


def wrap_deg(angle):
    """Angle(s) in degrees wrapped to [-180, 180)."""
    return (np.asarray(angle, np.float64) + 180.0) % 360.0 - 180.0


def eye_line_deg(landmarks: np.ndarray) -> float:
    """Image angle of the line from landmark 0 to landmark 1 (the eyes), degrees; clockwise on
    screen is positive (image y points down), as for roll."""
    dx, dy = np.asarray(landmarks, np.float64)[1] - np.asarray(landmarks, np.float64)[0]
    return float(np.degrees(np.arctan2(dy, dx)))


def face_id(image_name: str, index: int) -> str:
    """One name for a ground-truth face at every scale of its photo: ``<photo>#<index>``
    (held-out image names are ``<photo>@<scale>``, and each scale keeps the truth's order)."""
    return f"{image_name.split('@')[0]}#{index}"


def long_side(box: np.ndarray) -> float:
    """The longer side of a box (x1, y1, x2, y2), pixels."""
    return float(max(box[2] - box[0], box[3] - box[1]))


# --------------------------------------------------------------------------------------------
# Per-face errors


def rotation_errors(upright: LabelledFace, turned: LabelledFace, theta: float) -> dict[str, float]:
    """Absolute errors (degrees) of one face read upright and in the picture turned by theta:
    ``eye_line`` (its change against -theta), ``roll``, ``yaw`` and ``pitch`` (against the
    upright pose turned through the rotation matrix, where a frontal face's roll changes by
    -theta), and the plain changes: ``roll_change`` against -theta, ``yaw_change`` and
    ``pitch_change`` against 0."""
    expected = rotate_pose(*upright.pose, theta)
    eye_change = eye_line_deg(turned.landmarks) - eye_line_deg(upright.landmarks)
    return {"roll": abs(float(wrap_deg(turned.pose[2] - expected.roll))),
            "eye_line": abs(float(wrap_deg(eye_change + theta))),
            "yaw": abs(turned.pose[0] - expected.yaw),
            "pitch": abs(turned.pose[1] - expected.pitch),
            "roll_change": abs(float(wrap_deg(turned.pose[2] - upright.pose[2] + theta))),
            "yaw_change": abs(turned.pose[0] - upright.pose[0]),
            "pitch_change": abs(turned.pose[1] - upright.pose[1])}


def mirror_errors(upright: LabelledFace, mirrored: LabelledFace) -> dict[str, float]:
    """|yaw + yaw'|, |roll + roll'| and |pitch - pitch'| (degrees) of one face."""
    return {"yaw": abs(upright.pose[0] + mirrored.pose[0]),
            "roll": abs(upright.pose[2] + mirrored.pose[2]),
            "pitch": abs(upright.pose[1] - mirrored.pose[1])}


def constant_rotation_errors(constant: Sequence[float], theta: float) -> dict[str, float]:
    """:func:`rotation_errors` of a predictor that answers ``constant`` and the upright
    landmark template whatever the picture."""
    expected = rotate_pose(*constant, theta)
    return {"roll": abs(float(wrap_deg(constant[2] - expected.roll))),
            "eye_line": abs(float(theta)),
            "yaw": abs(constant[0] - expected.yaw), "pitch": abs(constant[1] - expected.pitch),
            "roll_change": abs(float(theta)), "yaw_change": 0.0, "pitch_change": 0.0}


def constant_mirror_errors(constant: Sequence[float]) -> dict[str, float]:
    """:func:`mirror_errors` of a predictor that always answers ``constant``."""
    return {"yaw": 2 * abs(constant[0]), "roll": 2 * abs(constant[2]), "pitch": 0.0}


def follow(references: Sequence[LabelledFace], expected_boxes: np.ndarray,
           found: Sequence[LabelledFace], iou: float = FOLLOW_IOU) -> list[LabelledFace | None]:
    """For each reference face, the detection on its expected box (IoU >= ``iou``, greedy by
    score), or None where the face was lost."""
    matches = greedy_matches(np.reshape(expected_boxes, (-1, 4)),
                             np.reshape([d.box for d in found], (-1, 4)),
                             [d.score for d in found], iou)
    by_reference = {t: d for d, t in matches.items()}
    return [found[by_reference[i]] if i in by_reference else None
            for i in range(len(references))]


# --------------------------------------------------------------------------------------------
# Running the checks on images


def rotate_picture(image: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` turned by ``theta`` on a canvas that holds all of it (corners filled with its
    mean colour), and the 2x3 map of its pixels."""
    matrix, size = expanded_rotation(theta, image.shape[1], image.shape[0])
    fill = tuple(float(v) for v in image.reshape(-1, image.shape[-1]).mean(axis=0))
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=fill), matrix


def mirrored_box(box: np.ndarray, width: int) -> np.ndarray:
    """A box in the left-right mirrored image of ``width`` pixels."""
    return np.array([width - box[2], box[1], width - box[0], box[3]], np.float64)


def reference_faces(image: HeldOutImage, found: Sequence[LabelledFace],
                    min_px: float = REFERENCE_MIN_PX) -> list[tuple[LabelledFace, int]]:
    """Upright detections on a ground-truth face of at least ``min_px``, with that face's
    index."""
    truth = np.reshape([f.box for f in image.faces], (-1, 4))
    matches = greedy_matches(truth, np.reshape([d.box for d in found], (-1, 4)),
                             [d.score for d in found], FOLLOW_IOU)
    return [(found[d], t) for d, t in sorted(matches.items())
            if image.faces[t].long_side >= min_px]


@dataclass(frozen=True)
class ConsistencyResult:
    """Per-face errors of every check; ``kept`` counts reference faces found again."""

    rotation: dict[float, tuple[dict[str, float], ...]]
    kept: dict[float, tuple[int, int]]
    mirror: tuple[dict[str, float], ...]
    mirror_kept: tuple[int, int]
    #: (predicted, FaceMesh) yaw, pitch, roll of upright faces >= FACEMESH_MIN_PX.
    facemesh: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]
    #: :func:`face_id` of each reference face, and of each face in ``facemesh`` (same order).
    reference_ids: tuple[str, ...] = ()
    facemesh_ids: tuple[str, ...] = ()


def check_image(image: HeldOutImage, detect: DetectFn,
                rotations: Sequence[float] = ROTATIONS) -> ConsistencyResult:
    """Every check on one image (its faces' long sides as given: shrink it first)."""
    upright = detect(image.image)
    references = reference_faces(image, upright)
    faces = [face for face, _ in references]
    rotation, kept = {}, {}
    for theta in rotations:
        turned_image, matrix = rotate_picture(image.image, theta)
        boxes = np.reshape([rotated_box(f.box, matrix) for f in faces], (-1, 4))
        turned = follow(faces, boxes, detect(turned_image))
        rotation[theta] = tuple(rotation_errors(f, t, theta)
                                for f, t in zip(faces, turned) if t is not None)
        kept[theta] = (sum(t is not None for t in turned), len(faces))
    width = image.image.shape[1]
    flipped = follow(faces, np.reshape([mirrored_box(f.box, width) for f in faces], (-1, 4)),
                     detect(np.ascontiguousarray(image.image[:, ::-1])))
    mirror = tuple(mirror_errors(f, m) for f, m in zip(faces, flipped) if m is not None)
    compared = [(face, t) for face, t in reference_faces(image, upright, FACEMESH_MIN_PX)
                if image.faces[t].pose is not None]
    facemesh = tuple((tuple(map(float, face.pose)), tuple(map(float, image.faces[t].pose)))
                     for face, t in compared)
    return ConsistencyResult(rotation, kept, mirror,
                             (sum(m is not None for m in flipped), len(faces)), facemesh,
                             tuple(face_id(image.name, t) for _, t in references),
                             tuple(face_id(image.name, t) for _, t in compared))


def combine(results: Sequence[ConsistencyResult]) -> ConsistencyResult:
    """The checks of several images as one result."""
    thetas = results[0].rotation if results else {}
    return ConsistencyResult(
        {t: sum((r.rotation[t] for r in results), ()) for t in thetas},
        {t: tuple(np.sum([r.kept[t] for r in results], axis=0).tolist()) for t in thetas},
        sum((r.mirror for r in results), ()),
        tuple(np.sum([r.mirror_kept for r in results], axis=0).tolist()) if results else (0, 0),
        sum((r.facemesh for r in results), ()),
        sum((r.reference_ids for r in results), ()),
        sum((r.facemesh_ids for r in results), ()))


def shrink(image: HeldOutImage, max_side: int = MOS_MAX_INPUT_SIZE) -> HeldOutImage:
    """``image`` and its faces scaled to a long side of at most ``max_side`` (never up)."""
    factor = min(1.0, max_side / max(image.image.shape[:2]))
    if factor == 1.0:
        return image
    size = (round(image.image.shape[1] * factor), round(image.image.shape[0] * factor))
    small = cv2.resize(image.image, size, interpolation=cv2.INTER_AREA)
    return HeldOutImage(image.name, small, tuple(f.scaled(factor) for f in image.faces))


# --------------------------------------------------------------------------------------------
# Summaries and the report

#: Rotation figures in the table: JSON key and column title.
ROTATION_COLUMNS = (("roll", "roll vs turned"), ("eye_line", "eye line Δ vs −θ"),
                    ("yaw", "yaw vs turned"), ("pitch", "pitch vs turned"))


def _median(values) -> float | None:
    values = list(values)
    return float(np.median(values)) if values else None


def _fraction(pair) -> float | None:
    found, total = pair
    return found / total if total else None


@dataclass(frozen=True)
class ConsistencyReport:
    """The checks over the held-out photos, summarised beside the constant predictor."""

    result: ConsistencyResult
    model: str
    images: int
    seconds: float

    @property
    def constant(self) -> tuple[float, float, float]:
        """The constant predictor's pose: the median FaceMesh pose of the compared faces."""
        truth = [t for _, t in self.result.facemesh]
        return tuple(np.median(truth, axis=0).tolist()) if truth else (0.0, 0.0, 0.0)

    def reference_summary(self) -> dict:
        """How many reference faces the checks start from, and how many distinct faces."""
        return {"faces": len(self.result.reference_ids), "min_px": REFERENCE_MIN_PX,
                "distinct_faces": len(set(self.result.reference_ids))}

    def rotation_summary(self) -> dict[float, dict]:
        """Per |theta| (both signs pooled): median errors, kept share, and the constant's."""
        summary = {}
        for size in sorted({abs(t) for t in self.result.rotation}):
            thetas = [t for t in self.result.rotation if abs(t) == size]
            errors = [e for t in thetas for e in self.result.rotation[t]]
            found = sum(self.result.kept[t][0] for t in thetas)
            total = sum(self.result.kept[t][1] for t in thetas)
            constant = [constant_rotation_errors(self.constant, t) for t in thetas]
            summary[size] = {
                "faces": len(errors), "kept": _fraction((found, total)),
                "kept_count": [found, total],
                "median": {k: _median(e[k] for e in errors) for k in errors[0]} if errors else {},
                "constant": {k: _median(c[k] for c in constant) for k in constant[0]}}
        return summary

    def mirror_summary(self) -> dict:
        """Median mirror errors, the faces found again, and the constant's errors."""
        errors = self.result.mirror
        return {"faces": len(errors), "kept": _fraction(self.result.mirror_kept),
                "kept_count": list(self.result.mirror_kept),
                "median": {k: _median(e[k] for e in errors) for k in ("yaw", "roll", "pitch")},
                "constant": constant_mirror_errors(self.constant)}

    def facemesh_summary(self) -> dict:
        """MAE against FaceMesh, the constant's MAE, the mean signed error (model - FaceMesh: an
        offset of the model's zero shows here) and the spread of both, per angle; the pairs
        themselves under ``pairs``."""
        pairs = self.result.facemesh
        if not pairs:
            return {"faces": 0}
        predicted, truth = (np.array([p[i] for p in pairs]) for i in (0, 1))
        constant = np.array(self.constant)
        return {"faces": len(pairs), "min_px": FACEMESH_MIN_PX,
                "distinct_faces": len(set(self.result.facemesh_ids)),
                "mae": dict(zip(ANGLES, np.abs(predicted - truth).mean(axis=0).tolist())),
                "constant_mae": dict(zip(ANGLES, np.abs(constant - truth).mean(axis=0).tolist())),
                "bias": dict(zip(ANGLES, (predicted - truth).mean(axis=0).tolist())),
                "pairs": [{"predicted": dict(zip(ANGLES, p.tolist())),
                           "facemesh": dict(zip(ANGLES, t.tolist()))}
                          for p, t in zip(predicted, truth)],
                "std_predicted": dict(zip(ANGLES, predicted.std(axis=0).tolist())),
                "std_facemesh": dict(zip(ANGLES, truth.std(axis=0).tolist()))}

    def as_dict(self) -> dict:
        """JSON-able figures of every check, with per-signed-theta medians."""
        signed = {f"{t:+g}": {"kept": list(self.result.kept[t]),
                              "median": {k: _median(e[k] for e in errs) for k in
                                         (errs[0] if errs else {})}}
                  for t, errs in self.result.rotation.items()}
        return {"model": self.model, "images": self.images, "seconds": self.seconds,
                "constant_pose": list(self.constant),
                "rotation": {f"{k:g}": v for k, v in self.rotation_summary().items()},
                "rotation_signed": signed, "mirror": self.mirror_summary(),
                "facemesh": self.facemesh_summary(), "references": self.reference_summary()}

    def markdown(self) -> list[str]:
        """Three small tables, each figure with the constant predictor's in brackets."""
        references = self.reference_summary()
        lines = [f"Consistency of {self.model} on {self.images} held-out images "
                 "(median |error| in degrees; constant predictor in brackets); "
                 f"{references['faces']} reference faces ≥ {REFERENCE_MIN_PX:g} px, "
                 f"{references['distinct_faces']} distinct (each photo at three scales)", "",
                 "| rotation | faces kept | " + " | ".join(t for _, t in ROTATION_COLUMNS)
                 + " |", "|---" * (2 + len(ROTATION_COLUMNS)) + "|"]
        for size, row in self.rotation_summary().items():
            cells = [f"±{size:g}°", _kept_cell(row["kept"], row["kept_count"])]
            cells += [_pair(row["median"].get(key), row["constant"][key])
                      for key, _ in ROTATION_COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        mirror = self.mirror_summary()
        lines += ["", "| mirror | faces kept | yaw + yaw′ | roll + roll′ | pitch − pitch′ |",
                  "|---|---|---|---|---|",
                  "| flip | " + _kept_cell(mirror["kept"], mirror["kept_count"]) + " | "
                  + " | ".join(_pair(mirror["median"][k], mirror["constant"][k])
                               for k in ("yaw", "roll", "pitch")) + " |"]
        mesh = self.facemesh_summary()
        if mesh["faces"]:
            lines += ["", f"| vs FaceMesh, faces ≥ {FACEMESH_MIN_PX:g} px (n={mesh['faces']}, "
                      f"{mesh['distinct_faces']} distinct) | MAE | spread (std) predicted / "
                      "FaceMesh |", "|---|---|---|"]
            lines += [f"| {a} | {_pair(mesh['mae'][a], mesh['constant_mae'][a])} | "
                      f"{mesh['std_predicted'][a]:.1f} / {mesh['std_facemesh'][a]:.1f} |"
                      for a in ANGLES]
        return lines + ["", "Rotation: OpenCV sign (θ > 0 counter-clockwise on screen), ±θ "
                        "pooled; roll, yaw and pitch are compared with the upright reading "
                        "turned through the rotation matrix (roll − θ for a frontal face; "
                        "plain changes in the JSON). Constant "
                        f"predictor: median FaceMesh pose {_pose(self.constant)} and the "
                        "upright landmark template, whatever the picture."]


def _pair(value: float | None, constant: float) -> str:
    return "–" if value is None else f"{value:.1f} ({constant:.1f})"


def _kept_cell(share: float | None, count: Sequence[int]) -> str:
    return "–" if share is None else f"{100 * share:.0f} % ({count[0]}/{count[1]})"


def _pose(pose: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in pose) + ")"


def native_detect(backend) -> DetectFn:
    """``detect(image)`` of our model in ``backend`` at the default decode settings and the
    image's own size (the images are shrunk beforehand, so upright and turned share one
    scale)."""
    detector = FaceDetector(backend, settings=DecodeSettings(), input_size=None)

    def detect(image: np.ndarray) -> list[LabelledFace]:
        return [LabelledFace.from_face(f) for f in detector.detect(image)]
    return detect


def open_detector(model_path: Path | str | None = None) -> DetectFn:
    """:func:`native_detect` of a model file (default: the shipped one)."""
    return native_detect(FaceDetector.open(model_path or default_model_path()).backend)


def evaluate_consistency(model_path: Path | str | None = None, root: Path | str | None = None,
                         images: Sequence[HeldOutImage] | None = None,
                         detect: DetectFn | None = None,
                         rotations: Sequence[float] = ROTATIONS) -> ConsistencyReport:
    """Every check on the held-out photos (or on ``images``) with our model (or ``detect``)."""
    start = time.perf_counter()
    if images is None:
        images = [image for image in held_out_set(root) if image.name != MOSAIC_NAME]
    model = "the given detector" if detect else str(model_path or default_model_path())
    detect = detect or open_detector(model_path)
    results = [check_image(shrink(image), detect, rotations) for image in images]
    return ConsistencyReport(combine(results), model, len(images), time.perf_counter() - start)
