"""``mos eval real``: our model and the teachers on real photos that were never trained on.

The default model trains on scenes built from a few real ``train`` photos; this evaluation
measures it on the ``heldout`` photos of :mod:`mos_ros.data.sources`, side by side with the
teacher detectors that labelled its training data.

Ground truth (:func:`held_out_set`)
    Each held-out photo at scale 1, 0.5 and 0.25 (``cv2.INTER_AREA``), so faces under 40 px
    exist, plus one mosaic of the 20 held-out LFW faces and 20 held-out LFW non-faces at their
    native 25 px on grey. Photo faces are the :func:`~mos_ros.data.teachers.consensus` of
    yuface, centerface and blazeface (at least 2 votes; box, landmarks and pose from the
    FaceMesh fit) computed ONCE on the full-resolution photo and scaled to each size. That is
    the more truthful choice, checked on these photos: where consensus also finds a face on
    the downscaled image, both labels agree (box IoU >= 0.91, pose within ~3 deg, landmarks
    within 2.5 % of the face size), but on the downscaled images the teachers lose real faces
    (basketball's profile face at 0.5, every basketball and messi face at 0.25), which would
    vanish from the truth and turn correct detections into false positives. Mosaic faces are
    labelled by :func:`~mos_ros.data.bank.tiny_faces` (FaceMesh on the upsampled crop, as for
    training crops); a face crop it cannot fit is left out of the mosaic, non-face crops carry
    no label. The labels are cached as JSON under the data root, since teachers are slow.

Scoring (:func:`score_detections`)
    A detection matches a ground-truth face at IoU >= 0.5, greedily by score, one to one.
    Recall is split by the ground-truth box's long side (>= 40 px, < 40 px). A false positive
    is an unmatched detection, except one overlapping a still UNMATCHED ground-truth face at
    IoU >= 0.3: that is a badly placed box on a face already counted as a miss, and is not
    counted twice. So a duplicate on a face that was matched counts as one false positive.
    Landmark NME is the mean point error over sqrt(w*h) of the ground-truth box
    (:mod:`.landmarks`); yaw/pitch/roll MAE follow :mod:`.pose`.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mos_ros.core.image_io import read_image
from mos_ros.core.labels import LabelledFace
from mos_ros.core.nms import iou_matrix
from mos_ros.data.sources import data_root, lfw_crops, photos
from mos_ros.data.teachers import consensus, open_teacher
from mos_ros.evaluate.contestants import (
    CONTESTANTS, MOS_MAX_INPUT_SIZE, TRUTH_TEACHERS, open_contestant)
from mos_ros.evaluate.metrics import MATCH_IOU, greedy_matches, nme
from mos_ros.evaluate.pose import ANGLES, evaluate_pose
from mos_ros.evaluate.widerface_io import EvaluationDataError
from mos_ros.resources import default_model_path

log = logging.getLogger(__name__)

#: Scales of each held-out photo (1 = as shipped).
SCALES: tuple[float, ...] = (1.0, 0.5, 0.25)
TRUTH_MIN_VOTES = 2
#: Ground-truth boxes with a long side under this (px) count in the small-face recall.
SMALL_FACE_PX = 40.0
#: IoU for a detection to match a face; IoU with a missed face that excuses a false positive.
MISPLACED_IOU = 0.3
#: A false positive overlapping a true face above this IoU lies beside it (a second box).
BESIDE_FACE_IOU = 0.1
#: The ground-truth cache, relative to the data root; bump the version when labels change.
TRUTH_FILE = "heldout_truth.json"
TRUTH_VERSION = 1
#: The LFW mosaic: its name, grey level, crops per row and the gap around each crop (px).
MOSAIC_NAME = "lfw_heldout_mosaic"
MOSAIC_GREY = 128
MOSAIC_COLUMNS = 10
MOSAIC_GAP = 25
#: Drawn images with a shorter long side are enlarged (nearest neighbour) to at least this.
DRAW_MIN_SIDE = 900


# --------------------------------------------------------------------------------------------
# What is compared


@dataclass(frozen=True)
class HeldOutImage:
    """One evaluation image (BGR uint8) and its ground-truth faces."""

    name: str
    image: np.ndarray = field(repr=False)
    faces: tuple[LabelledFace, ...]


# --------------------------------------------------------------------------------------------
# Scoring


@dataclass(frozen=True)
class Score:
    """Counts and per-face errors of one contestant on some images; scores add up."""

    images: int = 0
    large_faces: int = 0
    large_found: int = 0
    small_faces: int = 0
    small_found: int = 0
    false_positives: int = 0
    #: Per matched face with landmarks on both sides: mean point error / sqrt(w*h).
    nme: tuple[float, ...] = ()
    #: Per matched face with a pose on both sides: (predicted, true) yaw, pitch, roll.
    poses: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = ()

    def __add__(self, other: Score) -> Score:
        return Score(self.images + other.images, self.large_faces + other.large_faces,
                     self.large_found + other.large_found, self.small_faces + other.small_faces,
                     self.small_found + other.small_found,
                     self.false_positives + other.false_positives, self.nme + other.nme,
                     self.poses + other.poses)

    @property
    def recall_large(self) -> float | None:
        """Found / faces with a long side >= SMALL_FACE_PX; None without such faces."""
        return self.large_found / self.large_faces if self.large_faces else None

    @property
    def recall_small(self) -> float | None:
        """Found / faces with a long side < SMALL_FACE_PX; None without such faces."""
        return self.small_found / self.small_faces if self.small_faces else None

    @property
    def fp_per_image(self) -> float | None:
        """False positives per image; None for no image."""
        return self.false_positives / self.images if self.images else None

    @property
    def mean_nme(self) -> float | None:
        """Mean landmark NME over the matched faces; None when none had landmarks."""
        return float(np.mean(self.nme)) if self.nme else None

    def pose_mae(self) -> dict[str, float] | None:
        """Yaw/pitch/roll (and mean) MAE in degrees by :func:`evaluate_pose`; None if none."""
        if not self.poses:
            return None
        predicted, truth = (np.array([pair[i] for pair in self.poses]) for i in (0, 1))
        try:
            return evaluate_pose(predicted, truth).mae
        except EvaluationDataError:  # every true angle beyond the Hopenet limit
            return None

    def to_dict(self) -> dict:
        """JSON-able counts and summaries (None where a column has nothing to count)."""
        return {"images": self.images, "large_faces": self.large_faces,
                "large_found": self.large_found, "small_faces": self.small_faces,
                "small_found": self.small_found, "false_positives": self.false_positives,
                "recall_large": self.recall_large, "recall_small": self.recall_small,
                "fp_per_image": self.fp_per_image, "nme": self.mean_nme,
                "nme_faces": len(self.nme), "pose_mae_deg": self.pose_mae(),
                "pose_faces": len(self.poses)}


def _matches(truth: Sequence[LabelledFace], detections: Sequence[LabelledFace],
             match_iou: float) -> tuple[dict[int, int], np.ndarray, np.ndarray]:
    """Greedy matches (detection -> truth index), the truth boxes and the detection boxes."""
    truth_boxes = np.reshape([f.box for f in truth], (-1, 4))
    boxes = np.reshape([d.box for d in detections], (-1, 4))
    return greedy_matches(truth_boxes, boxes, [d.score for d in detections], match_iou), \
        truth_boxes, boxes


def false_positive_indices(truth: Sequence[LabelledFace], detections: Sequence[LabelledFace],
                           match_iou: float = MATCH_IOU,
                           misplaced_iou: float = MISPLACED_IOU) -> list[int]:
    """The detections that count as false positives (rules: module docstring)."""
    matches, truth_boxes, boxes = _matches(truth, detections, match_iou)
    missed = np.ones(len(truth), bool)
    missed[list(matches.values())] = False
    overlap = iou_matrix(boxes, truth_boxes)
    return [d for d in range(len(detections))
            if d not in matches and not (overlap[d, missed] >= misplaced_iou).any()]


def score_detections(truth: Sequence[LabelledFace], detections: Sequence[LabelledFace],
                     match_iou: float = MATCH_IOU, misplaced_iou: float = MISPLACED_IOU,
                     small_px: float = SMALL_FACE_PX) -> Score:
    """Score one image's detections against its ground truth (rules: module docstring)."""
    matches, _, _ = _matches(truth, detections, match_iou)
    small = np.array([f.long_side < small_px for f in truth], bool)
    found = np.zeros(len(truth), bool)
    found[list(matches.values())] = True
    false_positives = len(false_positive_indices(truth, detections, match_iou, misplaced_iou))
    pairs = [(detections[d], truth[t]) for d, t in matches.items()]
    return Score(images=1, large_faces=int((~small).sum()),
                 large_found=int((found & ~small).sum()), small_faces=int(small.sum()),
                 small_found=int((found & small).sum()), false_positives=false_positives,
                 nme=tuple(nme(d.landmarks, t.landmarks, t.box) for d, t in pairs
                           if d.landmarks is not None and t.landmarks is not None),
                 poses=tuple((tuple(map(float, d.pose)), tuple(map(float, t.pose)))
                             for d, t in pairs if d.pose is not None and t.pose is not None))


@dataclass(frozen=True)
class FalsePositive:
    """A detection that counts as a false positive: where it is, how sure the contestant
    was, its size, and whether it lies beside a face (IoU above :data:`BESIDE_FACE_IOU` with
    one: a second or misplaced box) or away from every face (something taken for a face)."""

    image: str
    score: float
    long_side: float
    beside_face: bool

    def to_dict(self) -> dict:
        """JSON-able fields."""
        return {"image": self.image, "score": self.score, "long_side": self.long_side,
                "beside_face": self.beside_face}


def false_positives(image: HeldOutImage,
                    detections: Sequence[LabelledFace]) -> list[FalsePositive]:
    """The false positives among one image's detections (as :func:`score_detections` counts)."""
    truth_boxes = np.reshape([f.box for f in image.faces], (-1, 4))
    found = []
    for index in false_positive_indices(image.faces, detections):
        face = detections[index]
        overlap = iou_matrix(np.reshape(face.box, (1, 4)), truth_boxes)
        found.append(FalsePositive(image.name, float(face.score), float(face.long_side),
                                   bool(overlap.size and overlap.max() > BESIDE_FACE_IOU)))
    return found


# --------------------------------------------------------------------------------------------
# The held-out set and its cached ground truth


def held_out_set(root: Path | str | None = None,
                 truth_path: Path | str | None = None) -> list[HeldOutImage]:
    """Held-out photos at :data:`SCALES` and the LFW mosaic, with their ground truth.

    The labels are read from ``truth_path`` (default ``<data root>/heldout_truth.json``), or
    computed by the teachers and written there when it is missing or stale.
    """
    paths = photos("heldout", root)
    crops = lfw_crops("heldout", root)
    cache = Path(truth_path) if truth_path else data_root(root) / TRUTH_FILE
    truth = _cached_truth(cache, [_photo_name(p) for p in paths], len(crops[0]))
    if truth is None:
        truth = _label_truth(paths, crops[0])
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(truth, indent=1) + "\n")
        log.info("wrote held-out ground truth to %s", cache)
    images = [scaled for path in paths
              for scaled in _scaled_images(read_image(path), _photo_name(path),
                                           _faces(truth["photos"][_photo_name(path)]))]
    return images + [_mosaic(crops, truth["lfw_faces"])]


def _photo_name(path: Path) -> str:
    """The catalogue name of a fetched photo (``<package key>/<file>``)."""
    return f"{path.parent.name}/{path.name}"


def _faces(records: Sequence[Mapping]) -> tuple[LabelledFace, ...]:
    return tuple(LabelledFace.from_dict(r) for r in records)


def _cached_truth(path: Path, photo_names: Sequence[str], crop_count: int) -> dict | None:
    """The cached labels if they exist and fit this catalogue; None means recompute."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        log.warning("%s is not valid JSON; recomputing the held-out ground truth", path)
        return None
    fits = (data.get("version") == TRUTH_VERSION
            and sorted(data.get("photos", {})) == sorted(photo_names)
            and len(data.get("lfw_faces", [])) == crop_count)
    if not fits:
        log.info("%s is stale; recomputing the held-out ground truth", path)
    return data if fits else None


def _label_truth(paths: Sequence[Path], face_crops: np.ndarray) -> dict:
    """Teacher consensus of each full-resolution photo and FaceMesh labels of each LFW face
    crop (None where it cannot be fitted), as JSON-able records."""
    from mos_ros.data.bank import tiny_faces  # the data engine (scipy): only on a cache miss

    teachers = [open_teacher(name) for name in TRUTH_TEACHERS]
    labelled = {}
    for path in paths:
        agreed = consensus(read_image(path), teachers, min_votes=TRUTH_MIN_VOTES)
        labelled[_photo_name(path)] = [
            LabelledFace(np.asarray(f.box, np.float64), None if f.landmarks is None
                         else np.asarray(f.landmarks, np.float64), f.pose).to_dict()
            for f in agreed]
    lfw = []
    for crop in face_crops:
        fitted = tiny_faces(crop[None])
        lfw.append(LabelledFace(np.asarray(fitted[0].box, np.float64),
                                np.asarray(fitted[0].landmarks, np.float64),
                                fitted[0].pose).to_dict() if fitted else None)
    return {"version": TRUTH_VERSION, "teachers": list(TRUTH_TEACHERS),
            "min_votes": TRUTH_MIN_VOTES, "photos": labelled, "lfw_faces": lfw}


def _scaled_images(image: np.ndarray, name: str, faces: tuple[LabelledFace, ...]
                   ) -> list[HeldOutImage]:
    """``image`` at each of :data:`SCALES`, its full-resolution labels scaled alike."""
    height, width = image.shape[:2]
    scaled = []
    for scale in SCALES:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        factor = np.array([size[0] / width, size[1] / height] * 2)
        scaled.append(HeldOutImage(f"{name}@{scale:g}", small, tuple(
            f.scaled(factor) for f in faces)))
    return scaled


def _mosaic(crops: tuple[np.ndarray, np.ndarray], labels: Sequence[Mapping | None]
            ) -> HeldOutImage:
    """Face crops that have labels, then the non-face crops, tiled on grey in rows."""
    faces, non_faces = crops
    tiles = [(crop, LabelledFace.from_dict(label)) for crop, label in zip(faces, labels) if label]
    tiles += [(crop, None) for crop in non_faces]
    side = faces.shape[1] + MOSAIC_GAP
    rows = -(-len(tiles) // MOSAIC_COLUMNS)
    canvas = np.full((rows * side + MOSAIC_GAP, MOSAIC_COLUMNS * side + MOSAIC_GAP, 3),
                     MOSAIC_GREY, np.uint8)
    truth = []
    for index, (crop, label) in enumerate(tiles):
        x = MOSAIC_GAP + (index % MOSAIC_COLUMNS) * side
        y = MOSAIC_GAP + (index // MOSAIC_COLUMNS) * side
        canvas[y:y + crop.shape[0], x:x + crop.shape[1]] = crop[..., None]
        if label is not None:
            truth.append(label.moved((x, y)))
    return HeldOutImage(MOSAIC_NAME, canvas, tuple(truth))


# --------------------------------------------------------------------------------------------
# Running and reporting


@dataclass(frozen=True)
class ContestantResult:
    """One contestant's detections and score on each image, and the seconds it took."""

    name: str
    detections: tuple[tuple[LabelledFace, ...], ...]
    scores: tuple[Score, ...]
    seconds: float

    @property
    def total(self) -> Score:
        """The score over all images."""
        return sum(self.scores, Score())


@dataclass(frozen=True)
class RealPhotoReport:
    """Every contestant's result on the held-out images; one markdown table, or JSON."""

    images: tuple[HeldOutImage, ...]
    results: tuple[ContestantResult, ...]
    model: str
    seconds: float

    def markdown(self) -> str:
        """One table, a row per contestant, counts in each cell, notes on the truth, and the
        mos model's false positives."""
        return "\n".join(markdown_table(self.results) + [""] + self.notes()
                         + [""] + self.false_positive_lines())

    def false_positives(self, contestant: str = "mos") -> list[FalsePositive]:
        """``contestant``'s false positives over all images, the most confident first."""
        result = next((r for r in self.results if r.name == contestant), None)
        if result is None:
            return []
        found = [fp for image, detections in zip(self.images, result.detections)
                 for fp in false_positives(image, detections)]
        return sorted(found, key=lambda fp: -fp.score)

    def fp_rate_interval(self, contestant: str = "mos", level: float = 0.95,
                         resamples: int = 2000, seed: int = 0) -> tuple[float, float] | None:
        """How far ``contestant``'s false positives per image could move on another set of
        photos like these: a bootstrap interval that resamples whole photos (a photo's
        scales are not independent images); None when the contestant did not run."""
        result = next((r for r in self.results if r.name == contestant), None)
        if result is None:
            return None
        by_photo: dict[str, list[int]] = {}
        for image, score in zip(self.images, result.scores):
            counts = by_photo.setdefault(image.name.split("@")[0], [0, 0])
            counts[0] += score.false_positives
            counts[1] += score.images
        counts = np.array(list(by_photo.values()), np.float64)
        draws = np.random.default_rng(seed).integers(0, len(counts), (resamples, len(counts)))
        rates = counts[draws, 0].sum(axis=1) / counts[draws, 1].sum(axis=1)
        tail = (1.0 - level) / 2 * 100
        low, high = np.percentile(rates, [tail, 100 - tail])
        return float(low), float(high)

    def false_positive_lines(self, contestant: str = "mos") -> list[str]:
        """One line per false positive of ``contestant`` (the place to start a look with
        ``--draw``), after their count and its bootstrap interval per image."""
        found = self.false_positives(contestant)
        beside = sum(fp.beside_face for fp in found)
        interval = self.fp_rate_interval(contestant)
        spread = ("" if interval is None else
                  f" (per image 95 % interval over resampled photos {interval[0]:.2f}-"
                  f"{interval[1]:.2f})")
        lines = [f"{contestant} false positives: {len(found)}{spread}, {beside} beside a "
                 f"face, {len(found) - beside} away from faces (score, long side, image):"]
        return lines + [f"- {fp.score:.2f}, {fp.long_side:.0f} px, {fp.image}"
                        f"{' (beside a face)' if fp.beside_face else ''}" for fp in found]

    def notes(self) -> list[str]:
        """What the table's figures rest on: images, labels, biases and rules."""
        faces = sum(len(i.faces) for i in self.images)
        small = sum(f.long_side < SMALL_FACE_PX for i in self.images for f in i.faces)
        mosaic = sum(len(i.faces) for i in self.images if i.name == MOSAIC_NAME)
        return [
            f"Held-out images: {len(self.images)} ({faces} faces, {small} under "
            f"{SMALL_FACE_PX:g} px, {mosaic} of them LFW crops); mos model: {self.model} at "
            "default decode settings, each image at its own size up to a long side of "
            f"{MOS_MAX_INPUT_SIZE} (larger ones shrunk, as the nodes do; none enlarged).",
            "- Ground truth of the photos is the consensus (>= 2 of yuface, centerface, "
            "blazeface) on the full-resolution photo, scaled to 0.5 and 0.25. The teachers "
            "are therefore biased: at scale 1 they are scored on their own labels.",
            "- Box, landmarks and pose come from a MediaPipe FaceMesh fit: the pose ground "
            "truth IS FaceMesh, so FaceMesh is not a contestant, and the landmarks are means "
            "of mesh points, which a teacher may place differently by definition. LFW mosaic "
            "faces are labelled by FaceMesh on the upsampled crop; non-face crops have none.",
            "- Teacher boxes are converted to the mesh-extent convention before matching. "
            "Teachers give no pose; blazeface gives no landmarks: `–`.",
            f"- Match: IoU >= {MATCH_IOU:g}, greedy by score. FP: unmatched detection, unless "
            f"it overlaps a missed face at IoU >= {MISPLACED_IOU:g} (already counted as a "
            "miss); duplicates count. NME: mean point error / sqrt(w*h) of the truth box.",
        ]

    def as_dict(self) -> dict:
        """JSON-able figures: per contestant totals and per-image scores, and the images."""
        return {
            "model": self.model, "seconds": self.seconds,
            "images": [{"name": i.name, "faces": len(i.faces),
                        "small_faces": sum(f.long_side < SMALL_FACE_PX for f in i.faces)}
                       for i in self.images],
            "contestants": {r.name: {"total": r.total.to_dict(), "seconds": r.seconds,
                                     "per_image": {i.name: s.to_dict() for i, s
                                                   in zip(self.images, r.scores)},
                                     "false_positives": [fp.to_dict() for fp
                                                         in self.false_positives(r.name)],
                                     "fp_per_image_interval": self.fp_rate_interval(r.name)}
                            for r in self.results},
            "rules": {"match_iou": MATCH_IOU, "misplaced_iou": MISPLACED_IOU,
                      "small_face_px": SMALL_FACE_PX, "nme": "mean error / sqrt(w*h)"},
        }


def _cell(value: float | None, count: str, percent: bool = False) -> str:
    """``value (count)``, or ``–`` when there is nothing to show."""
    if value is None:
        return "–"
    return f"{100 * value:.1f} % ({count})" if percent else f"{value:.2f} ({count})"


def markdown_table(results: Sequence[ContestantResult]) -> list[str]:
    """The table lines: recall by size, FP per image, NME and pose MAE, counts in brackets."""
    head = ["contestant", f"recall ≥{SMALL_FACE_PX:g} px", f"recall <{SMALL_FACE_PX:g} px",
            "FP / image", "NME (/√wh)", *(f"{a} MAE (°)" for a in ANGLES)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results:
        s = result.total
        mae = s.pose_mae() or {}
        cells = [result.name,
                 _cell(s.recall_large, f"{s.large_found}/{s.large_faces}", percent=True),
                 _cell(s.recall_small, f"{s.small_found}/{s.small_faces}", percent=True),
                 _cell(s.fp_per_image, f"{s.false_positives} in {s.images} img"),
                 _cell(s.mean_nme, f"n={len(s.nme)}", percent=True),
                 *(_cell(mae.get(a), f"n={len(s.poses)}") for a in ANGLES)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def run_contestant(name: str, images: Sequence[HeldOutImage],
                   model_path: Path | str | None = None) -> ContestantResult:
    """Open contestant ``name``, run it on every image and score it."""
    detect = open_contestant(name, model_path)
    start = time.perf_counter()
    detections = tuple(tuple(detect(image.image)) for image in images)
    seconds = time.perf_counter() - start
    scores = tuple(score_detections(image.faces, found)
                   for image, found in zip(images, detections))
    return ContestantResult(name, detections, scores, seconds)


def evaluate_real_photos(model_path: Path | str | None = None,
                         root: Path | str | None = None,
                         contestants: Sequence[str] = tuple(CONTESTANTS),
                         images: Sequence[HeldOutImage] | None = None) -> RealPhotoReport:
    """Every contestant on the held-out set (or on ``images``): a :class:`RealPhotoReport`."""
    start = time.perf_counter()
    images = tuple(held_out_set(root) if images is None else images)
    model = Path(model_path or default_model_path())
    results = tuple(run_contestant(name, images, model) for name in contestants)
    return RealPhotoReport(images, results, str(model), time.perf_counter() - start)


def draw_image(image: HeldOutImage, detections: Sequence[LabelledFace]) -> np.ndarray:
    """``image`` with its ground truth in green and ``detections`` in red (BGR), enlarged
    so small images stay readable."""
    zoom = max(1, int(np.ceil(DRAW_MIN_SIDE / max(image.image.shape[:2]))))
    canvas = cv2.resize(image.image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    for faces, colour in ((image.faces, (0, 200, 0)), (detections, (0, 0, 255))):
        for face in faces:
            x1, y1, x2, y2 = (int(round(v * zoom)) for v in face.box)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 1)
            for x, y in ([] if face.landmarks is None else face.landmarks * zoom):
                cv2.circle(canvas, (int(round(x)), int(round(y))), 2, colour, -1)
    return canvas


def write_drawings(report: RealPhotoReport, folder: Path | str,
                   contestant: str = "mos") -> list[Path]:
    """Draw every image with its truth and ``contestant``'s detections into ``folder``."""
    result = next((r for r in report.results if r.name == contestant), None)
    if result is None:
        raise ValueError(f"contestant {contestant!r} was not run; ran: "
                         f"{', '.join(r.name for r in report.results)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for image, found in zip(report.images, result.detections):
        path = folder / (image.name.replace("/", "_").replace("@", "_x") + ".png")
        cv2.imwrite(str(path), draw_image(image, found))
        written.append(path)
    return written
