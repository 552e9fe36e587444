"""Run a face detector over a WIDER FACE image folder and write the official prediction files."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mos_ros.core.errors import ImageError
from mos_ros.core.image_io import IMAGE_SUFFIXES, read_image
from mos_ros.core.types import Face
from mos_ros.evaluate.widerface_io import EvaluationDataError, write_predictions

log = logging.getLogger(__name__)

#: Anything that turns a BGR image into faces: ``FaceDetector.detect`` or a TTA wrapper.
DetectFn = Callable[[np.ndarray], list[Face]]


@dataclass(frozen=True)
class RunSummary:
    """What a run over a WIDER folder did: images written, faces found, images skipped."""

    images: int
    faces: int
    errors: dict[str, str] = field(default_factory=dict)


def wider_images(images_dir: str | Path) -> list[tuple[str, Path]]:
    """(event, image path) pairs of a WIDER layout ``<images_dir>/<event>/<image>.jpg``.

    ``images_dir`` may also be the data set root that holds the ``images`` folder.
    """
    root = Path(images_dir)
    if (root / "images").is_dir():
        root = root / "images"
    if not root.is_dir():
        raise EvaluationDataError(f"{root}: no such image folder")
    pairs = [(event.name, image) for event in sorted(p for p in root.iterdir() if p.is_dir())
             for image in sorted(event.iterdir()) if image.suffix.lower() in IMAGE_SUFFIXES]
    if not pairs:
        raise EvaluationDataError(f"{root}: no images in <event>/<image> sub-folders")
    return pairs


def run_widerface(detect: DetectFn, images_dir: str | Path, out_dir: str | Path,
                  progress: bool = True) -> RunSummary:
    """Detect faces in every image of a WIDER folder, writing ``<out>/<event>/<image>.txt``.

    An unreadable image is logged and skipped (no file is written, so the evaluation counts
    it as missing) rather than ending a long run.
    """
    pairs = wider_images(images_dir)
    faces, errors = 0, {}
    for event, path in tqdm(pairs, disable=not progress, desc="detecting", unit="img"):
        try:
            found = detect(read_image(path))
        except ImageError as exc:
            log.warning("skipped %s", exc)
            errors[f"{event}/{path.name}"] = str(exc)
            continue
        write_predictions(out_dir, event, path.stem, found)
        faces += len(found)
    return RunSummary(len(pairs) - len(errors), faces, errors)
