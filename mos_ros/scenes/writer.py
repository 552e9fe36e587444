"""Writing labelled scene sets: each scene's image file and label entry, and the whole set.

A set is written by one function, :func:`write_scene_set`, whatever composes its scenes: a
composer is a picklable callable that turns a random generator into an image and its labels
(:class:`~mos_ros.scenes.composer.ProceduralScenes`,
:class:`~mos_ros.scenes.composer.BankScenes`). Scene ``i`` comes from ``seeded_rng(seed, i)``,
so a set does not depend on the number of workers.
"""
from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from mos_ros.core.label_file import IMAGES_DIR_NAME, LABEL_FILE, LabelledImage, write_label_file
from mos_ros.core.labels import FaceLabels
from mos_ros.scenes.sampling import seeded_rng

LOG = logging.getLogger(__name__)
#: JPEG quality of every written scene: high enough that compression is no training signal
#: of its own (the photometric augmentation adds JPEG artefacts where wanted).
JPEG_QUALITY = 95
#: Scenes handed to a worker at a time.
CHUNK = 8

#: Makes one scene, image (BGR uint8) and labels, from a random generator.
SceneComposer = Callable[[np.random.Generator], tuple[np.ndarray, FaceLabels]]


def write_scene(out_dir: Path, index: int, image: np.ndarray,
                labels: FaceLabels) -> LabelledImage:
    """Write scene ``index`` as ``images/<thousands>/<index>.jpg``; returns its label entry."""
    relative = f"{index // 1000:04d}/{index:07d}.jpg"
    path = out_dir / IMAGES_DIR_NAME / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"could not write scene image {path}")
    return LabelledImage(relative, labels)


_WORKER: dict[str, object] = {}


def _start_worker(composer: SceneComposer, out_dir: Path, seed: int) -> None:
    cv2.setNumThreads(1)  # one scene per process at a time; OpenCV's pool would oversubscribe
    _WORKER.update(composer=composer, out_dir=out_dir, seed=seed)


def _compose_and_write(composer: SceneComposer, out_dir: Path, seed: int,
                       index: int) -> LabelledImage:
    image, labels = composer(seeded_rng(seed, index))
    return write_scene(out_dir, index, image, labels)


def _worker_scene(index: int) -> LabelledImage:
    return _compose_and_write(_WORKER["composer"], _WORKER["out_dir"], _WORKER["seed"], index)


def write_scene_set(out_dir: str | Path, count: int, seed: int, composer: SceneComposer,
                    workers: int = 1) -> Path:
    """Render ``count`` scenes into ``out_dir/images`` and their labels into ``label.txt``.

    The label file uses the RetinaFace/MOS format (:mod:`mos_ros.core.label_file`), so the same
    reader serves these sets and WIDER FACE. Returns the label file path.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if workers > 1:
        spawn = multiprocessing.get_context("spawn")  # forked OpenCV thread pools can hang
        with ProcessPoolExecutor(max_workers=workers, mp_context=spawn,
                                 initializer=_start_worker,
                                 initargs=(composer, out_dir, seed)) as pool:
            items = list(pool.map(_worker_scene, range(count), chunksize=CHUNK))
    else:
        items = [_compose_and_write(composer, out_dir, seed, index) for index in range(count)]
    label_path = write_label_file(out_dir / LABEL_FILE, items)
    LOG.info("wrote %d scenes to %s in %.1f s", count, out_dir, time.perf_counter() - start)
    return label_path
