"""``mos eval curve``: a training run's learning curve on held-out real photos.

A recipe is judged by what its model reads on photos no training used, not by its loss. Every
state file a run wrote (``state_<iteration>.pt``), and the weights it started from, is put
through the label-free checks of :mod:`mos_ros.evaluate.consistency`: roll and eye line under
rotation, yaw and pitch drift, faces kept, mirror symmetry, and the MAE against FaceMesh,
each beside the constant predictor, and what detection must keep: recall of faces of at least
and under 40 px and false positives per image, scored as ``mos eval real`` scores them (the
LFW mosaic included). One row per iteration goes to ``curve.csv`` and a markdown table;
``curve.png`` plots the columns against iterations.

A state file's figures are kept beside the run (``curve/<state>.json``) with the names of
the images they were measured on, so running the command again while the run goes on only
checks the new state files; figures of other images (the catalogue gained held-out photos
since) are measured again, so one curve never mixes two sets.
"""
from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mos_ros.detector import FaceDetector
from mos_ros.evaluate.consistency import ROTATIONS, evaluate_consistency, native_detect
from mos_ros.evaluate.contestants import mos_detect
from mos_ros.evaluate.pose import ANGLES
from mos_ros.evaluate.real_photos import (MOSAIC_NAME, HeldOutImage, Score, held_out_set,
                                          score_detections)

log = logging.getLogger(__name__)
CURVE_DIR = "curve"
#: Rotation sizes whose figures the curve keeps (degrees), and the figures kept per size.
SIZES = (15, 30, 45)
ROTATION_KEYS = ("roll", "eye_line", "yaw", "pitch")
MIRROR_KEYS = ("yaw", "roll", "pitch")
#: Detection figures of ``Score.to_dict`` the curve keeps (no constant has them).
DETECTION_KEYS = ("recall_large", "recall_small", "fp_per_image")


@dataclass(frozen=True)
class CurvePoint:
    """The consistency figures of one model of a run (``as_dict`` of the report)."""

    iteration: int
    figures: dict

    def row(self, which: str = "median") -> dict[str, float | None]:
        """The curve's columns, the model's figures (``median``) or the constant
        predictor's (``constant``) on the same faces."""
        rotation, mirror = self.figures["rotation"], self.figures["mirror"][which]
        mesh = self.figures["facemesh"].get("mae" if which == "median" else "constant_mae", {})
        row: dict[str, float | None] = {"iteration": self.iteration}
        for size in SIZES:
            summary = rotation.get(f"{size:g}", {})
            row[f"kept_{size}"] = summary.get("kept") if which == "median" else None
            for key in ROTATION_KEYS:
                row[f"{key}_{size}"] = summary.get(which, {}).get(key)
        for angle in MIRROR_KEYS:
            row[f"mirror_{angle}"] = mirror.get(angle)
        for angle in ANGLES:
            row[f"facemesh_{angle}"] = mesh.get(angle)
        detection = self.figures.get("detection", {}) if which == "median" else {}
        for key in DETECTION_KEYS:
            row[key] = detection.get(key)
        return row


def state_iteration(path: Path) -> int:
    """The iteration in a state file's name (``state_00001500.pt`` -> 1500)."""
    return int(path.stem.split("_")[-1])


def _backend_of_state(path: Path):
    """The network in a state file, as an inference backend (torch)."""
    # torch (extra [train]) only where state files are read.
    from mos_ros.backends.torch_backend import ModuleBackend
    from mos_ros.train.checkpointing import model_from_state

    return ModuleBackend(model_from_state(path).eval(), source=str(path))


def _backend_of_file(path: Path):
    return FaceDetector.open(path).backend


def detection_score(detect, images: Sequence[HeldOutImage]) -> Score:
    """Recall and false positives of ``detect`` on ``images``, summed over them."""
    return sum((score_detections(image.faces, detect(image.image)) for image in images),
               Score())


def _cached_figures(cache: Path, model: Path, backend_of, images: Sequence[HeldOutImage],
                    detection_images: Sequence[HeldOutImage],
                    rotations: Sequence[float]) -> dict:
    """A model's figures, read from ``cache`` when there and measured on these images; a
    cache written before detection was scored gets its detection figures added. Pose is
    checked on the images at their own size (shrunk beforehand by the consistency checks),
    detection as ``mos eval real`` runs the model (:func:`mos_detect`)."""
    names = [image.name for image in detection_images]   # the pose images are among them
    figures = json.loads(cache.read_text()) if cache.is_file() else None
    if figures is not None and figures.get("image_names") != names:
        log.info("%s: measured on other images; checking %s again", cache, model)
        figures = None
    if figures is not None and "detection" in figures:
        return figures
    backend = backend_of(model)
    if figures is None:
        report = evaluate_consistency(images=images, detect=native_detect(backend),
                                      rotations=rotations)
        figures = {**report.as_dict(), "model": str(model), "image_names": names}
        log.info("%s: %.0f s", model, report.seconds)
    figures["detection"] = detection_score(mos_detect(backend), detection_images).to_dict()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(figures, indent=1) + "\n")
    return figures


def learning_curve(run_dir: Path, start: Path | None = None, every: int = 1,
                   root: Path | None = None, images: Sequence[HeldOutImage] | None = None,
                   rotations: Sequence[float] = ROTATIONS) -> list[CurvePoint]:
    """The curve of a run folder: ``start`` (the weights it began from, iteration 0) and every
    ``every``-th of its state files (the last always), each checked once on the held-out
    photos (or ``images``; detection on the whole held-out set, or on ``images``) and cached
    under ``run_dir/curve``."""
    states = sorted(Path(run_dir).glob("state_*.pt"), key=state_iteration)
    if not states and start is None:
        raise FileNotFoundError(f"{run_dir}: no state_*.pt files (a training output folder?)")
    if images is None:
        detection_images = held_out_set(root)
        images = [image for image in detection_images if image.name != MOSAIC_NAME]
    else:
        detection_images = images
    cache = Path(run_dir) / CURVE_DIR
    points = []
    if start is not None:
        figures = _cached_figures(cache / "start.json", Path(start), _backend_of_file,
                                  images, detection_images, rotations)
        points.append(CurvePoint(0, figures))
    for index, state in enumerate(states):
        if index % every and index != len(states) - 1:
            continue
        figures = _cached_figures(cache / f"{state.stem}.json", state, _backend_of_state,
                                  images, detection_images, rotations)
        points.append(CurvePoint(state_iteration(state), figures))
    return points


def _cell(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.0f}%" if percent else f"{value:.1f}"


def _fp_cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _table_row(name: str, row: dict) -> str:
    def cells(key: str, percent: bool = False, sizes=SIZES) -> str:
        return " / ".join(_cell(row[f"{key}_{s}"], percent) for s in sizes)
    mirror = " / ".join(_cell(row[f"mirror_{a}"]) for a in MIRROR_KEYS)
    mesh = " / ".join(_cell(row[f"facemesh_{a}"]) for a in ANGLES)
    recall = " / ".join(_cell(row[k], True) for k in DETECTION_KEYS[:2])
    return (f"| {name} | {cells('kept', True, (30, 45))} | {cells('roll')} | "
            f"{cells('eye_line')} | {cells('yaw')} | {cells('pitch')} | {mirror} | {mesh} | "
            f"{recall} | {_fp_cell(row['fp_per_image'])} |")


def markdown(points: Sequence[CurvePoint]) -> list[str]:
    """The curve as a markdown table, the constant predictor (on the last point's faces)
    in the first row."""
    lines = ["| iteration | kept ±30 / ±45 | roll ±15 / ±30 / ±45 | eye line ±15 / ±30 / ±45 "
             "| yaw drift ±15 / ±30 / ±45 | pitch drift ±15 / ±30 / ±45 "
             "| mirror yaw / roll / pitch | FaceMesh ≥ 60 px yaw / pitch / roll "
             "| recall ≥ 40 / < 40 px | FP / image |",
             "|" + "---|" * 10]
    if points:
        lines.append(_table_row("constant", points[-1].row("constant")))
    lines += [_table_row(str(p.iteration), p.row()) for p in points]
    return lines


def write_csv(points: Sequence[CurvePoint], path: Path) -> Path:
    """One row per point, the constant's figures in ``constant_*`` columns beside."""
    rows = []
    for point in points:
        row, constant = point.row(), point.row("constant")
        rows.append({**row, **{f"constant_{k}": v for k, v in constant.items()
                               if k != "iteration" and v is not None}})
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)
