"""Writing one rendered scene into a labelled set: the image file and its label entry."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mos_ros.core.label_file import IMAGES_DIR_NAME, LabelledImage
from mos_ros.core.labels import FaceLabels

#: JPEG quality of every written scene: high enough that compression is no training signal
#: of its own (the photometric augmentation adds JPEG artefacts where wanted).
JPEG_QUALITY = 95


def write_scene(out_dir: Path, index: int, image: np.ndarray,
                labels: FaceLabels) -> LabelledImage:
    """Write scene ``index`` as ``images/<thousands>/<index>.jpg``; returns its label entry."""
    relative = f"{index // 1000:04d}/{index:07d}.jpg"
    path = out_dir / IMAGES_DIR_NAME / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"could not write scene image {path}")
    return LabelledImage(relative, labels)
