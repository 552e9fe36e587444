"""How long the WIDER FACE evaluation takes on a full-size validation set (a benchmark).

Builds, in memory, a synthetic set shaped like WIDER FACE val (3,226 images, about 40k faces
with a long-tailed count per image and easy/medium/hard by face size) and predictions around
it (jittered hits with IoU-dependent scores, duplicates, random false positives), then times
the official-protocol evaluation. With ``--files`` it also writes the prediction files and
times reading them back. Prints figures; asserts nothing.

    python -m mos_ros.bench.eval_speed [--images 3226] [--faces 40000] [--files]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mos_ros.evaluate.widerface import evaluate_widerface
from mos_ros.evaluate.widerface_io import (
    SETTINGS, GroundTruthImage, WiderGroundTruth, read_predictions)

#: WIDER FACE validation set size.
VAL_IMAGES = 3226
VAL_FACES = 40000
#: Smallest face side (pixels) that counts in easy and in medium; hard keeps all.
SETTING_MIN_SIDE = {"easy": 50.0, "medium": 20.0, "hard": 0.0}
IMAGE_SIDE = 1024.0


def synthetic_ground_truth(images: int, faces: int, rng: np.random.Generator) -> WiderGroundTruth:
    """Images with a long-tailed face count (mean faces/images) and log-uniform face sizes."""
    counts = np.maximum(1, rng.geometric(images / faces, size=images))
    built = []
    for index, count in enumerate(counts):
        side = np.exp(rng.uniform(np.log(6), np.log(400), size=count))
        corner = rng.uniform(0, IMAGE_SIDE - side[:, None], size=(count, 2))
        boxes = np.column_stack([corner, side, side * rng.uniform(1.0, 1.4, size=count)])
        keep = {s: side >= SETTING_MIN_SIDE[s] for s in SETTINGS}
        built.append(GroundTruthImage(f"{index % 61}--Event", f"image_{index:05d}", boxes, keep))
    return WiderGroundTruth(tuple(built))


def synthetic_predictions(gt: WiderGroundTruth, rng: np.random.Generator,
                          false_positives: float) -> list[np.ndarray]:
    """Per image: most faces found with jitter (score falls with the jitter), some twice,
    plus Poisson(``false_positives``) random boxes with low scores."""
    out = []
    for image in gt.images:
        boxes = image.boxes
        found = boxes[rng.random(len(boxes)) < 0.9]
        found = np.concatenate([found, found[rng.random(len(found)) < 0.1]])
        jitter = rng.normal(0, 0.08, size=found.shape) * found[:, 2:4].repeat(2, axis=1)
        hits = found + jitter
        hit_scores = np.clip(1.0 - np.abs(jitter).mean(axis=1) / found[:, 2] * 3, 0.02, 1.0)
        count = rng.poisson(false_positives)
        side = rng.uniform(8, 200, size=count)
        misses = np.column_stack([rng.uniform(0, IMAGE_SIDE, size=(count, 2)), side, side])
        rows = np.concatenate([np.column_stack([hits, hit_scores]),
                               np.column_stack([misses, rng.uniform(0.02, 0.6, size=count)])])
        out.append(rows[np.argsort(-rows[:, 4])])
    return out


def write_prediction_files(root: Path, gt: WiderGroundTruth, predictions) -> None:
    """The official per-image text files of ``predictions``."""
    for image, rows in zip(gt.images, predictions):
        folder = root / image.event
        folder.mkdir(parents=True, exist_ok=True)
        boxes = [" ".join(f"{v:.3f}" for v in row[:4]) + f" {row[4]:.6f}" for row in rows]
        lines = [image.name, str(len(rows))] + boxes
        (folder / f"{image.name}.txt").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Build the set, time the evaluation (and optionally file reading), print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=VAL_IMAGES)
    parser.add_argument("--faces", type=int, default=VAL_FACES)
    parser.add_argument("--false-positives", type=float, default=20.0,
                        help="mean random false positives per image")
    parser.add_argument("--files", action="store_true",
                        help="also write the prediction files and time reading them")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    gt = synthetic_ground_truth(args.images, args.faces, rng)
    predictions = synthetic_predictions(gt, rng, args.false_positives)
    built = time.perf_counter() - start
    faces = sum(len(i.boxes) for i in gt.images)
    boxes = sum(len(p) for p in predictions)
    print(f"synthetic set: {len(gt.images)} images, {faces} faces, {boxes} predictions "
          f"(built in {built:.1f} s)")
    start = time.perf_counter()
    result = evaluate_widerface(gt, predictions)
    evaluated = time.perf_counter() - start
    print(f"evaluate (3 settings, 1000 thresholds): {evaluated:.2f} s")
    print("AP: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in result.ap().items()))
    if args.files:
        with tempfile.TemporaryDirectory() as folder:
            write_prediction_files(Path(folder), gt, predictions)
            start = time.perf_counter()
            read = read_predictions(folder, gt)
            reading = time.perf_counter() - start
        print(f"read {read.count} predictions from {len(gt.images)} files: {reading:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
