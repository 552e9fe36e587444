"""The RetinaFace/MOS ``label.txt`` format, read and written.

One ``# <path>`` line per image (the path relative to the ``images`` folder next to the label
file), then one line per face::

    x y w h  lx0 ly0 0.0  lx1 ly1 0.0  lx2 ly2 0.0  lx3 ly3 0.0  lx4 ly4 0.0  conf  pitch yaw roll

Pixels for the box (top-left corner, width, height) and landmarks (RetinaFace order), degrees
for the pose; note the pitch-yaw-roll order of the MOS annotation. A face without landmarks
has ``-1`` for every landmark field and ``conf``; a face without a pose label ends after
``conf`` (20 numbers); a face with a box only has 4 numbers. Numbers are written in the
shortest form that reads back to the same float32.

Reading WIDER FACE (RetinaFace's ``train/label.txt`` with ``train/images/``, or the MOS release
with pose): a landmark field of ``-1`` marks a face without landmarks, a line without the three
pose numbers a face without pose (the small faces); both are masked in the loss, never trained
towards zeros. A line with another count of numbers, a number that is not finite, or a box of
negative size is an error naming the file and line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mos_ros.core.labels import FaceLabels

#: Name of a written set's label file, and of the image folder beside it.
LABEL_FILE = "label.txt"
IMAGES_DIR_NAME = "images"
_BOX_ONLY, _WITH_LANDMARKS, _WITH_POSE = 4, 20, 23
_MISSING = -1.0
_LANDMARK_CONF = 1.0


@dataclass(frozen=True)
class LabelledImage:
    """An image path (relative to the set's ``images`` folder) and its face labels.

    ``line`` is the line of the ``# <path>`` entry in the label file (0 when not read from one).
    """

    path: str
    labels: FaceLabels
    line: int = field(default=0, compare=False)


def _number(value: float) -> str:
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def format_face(labels: FaceLabels, index: int) -> str:
    """One face line of the label file."""
    x1, y1, x2, y2 = labels.boxes[index]
    fields = [x1, y1, x2 - x1, y2 - y1]
    if labels.has_landmarks[index]:
        for x, y in labels.landmarks[index]:
            fields += [x, y, 0.0]
        fields.append(_LANDMARK_CONF)
    else:
        fields += [_MISSING] * 16
    if labels.has_pose[index]:
        yaw, pitch, roll = labels.poses[index]
        fields += [pitch, yaw, roll]
    return " ".join(_number(v) for v in fields)


def write_label_file(path: str | Path, items: list[LabelledImage]) -> Path:
    """Write images and their faces in the label format; returns the path written."""
    path = Path(path)
    lines = []
    for item in items:
        lines.append(f"# {item.path}")
        lines.extend(format_face(item.labels, i) for i in range(len(item.labels)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def parse_face(values: list[float], where: str) -> tuple[np.ndarray, ...]:
    """Box, landmarks, pose and the two validity flags from one face line's numbers."""
    if len(values) not in (_BOX_ONLY, _WITH_LANDMARKS, _WITH_POSE):
        raise ValueError(f"{where}: expected {_BOX_ONLY}, {_WITH_LANDMARKS} or {_WITH_POSE} "
                         f"numbers per face, got {len(values)}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{where}: numbers must be finite, got {values}")
    x, y, w, h = values[:4]
    if w < 0 or h < 0:
        raise ValueError(f"{where}: box width and height must be >= 0, got {w} x {h}")
    box = np.array([x, y, x + w, y + h], np.float32)
    landmarks = np.zeros((5, 2), np.float32)
    has_landmarks = len(values) >= _WITH_LANDMARKS and values[4] >= 0
    if has_landmarks:
        landmarks = np.array(values[4:19], np.float32).reshape(5, 3)[:, :2]
    pose = np.zeros(3, np.float32)
    has_pose = len(values) == _WITH_POSE
    if has_pose:
        pitch, yaw, roll = values[20:23]
        pose = np.array([yaw, pitch, roll], np.float32)
    return box, landmarks, pose, has_landmarks, has_pose


def _labels_of(faces: list[tuple[np.ndarray, ...]]) -> FaceLabels:
    if not faces:
        return FaceLabels(np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32),
                          np.zeros((0, 3), np.float32), np.zeros(0, bool), np.zeros(0, bool))
    boxes, landmarks, poses, has_landmarks, has_pose = zip(*faces)
    return FaceLabels(np.stack(boxes), np.stack(landmarks), np.stack(poses),
                      np.array(has_landmarks, bool), np.array(has_pose, bool))


def read_label_file(path: str | Path) -> list[LabelledImage]:
    """Parse a label file; errors name the file and line that is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    items: list[LabelledImage] = []
    current: str | None = None
    current_line = 0
    faces: list[tuple[np.ndarray, ...]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            if current is not None:
                items.append(LabelledImage(current, _labels_of(faces), current_line))
            current, current_line, faces = line[1:].strip(), number, []
            if not current:
                raise ValueError(f"{path}:{number}: '#' line without an image path")
            continue
        where = f"{path}:{number}"
        if current is None:
            raise ValueError(f"{where}: face line before the first '# <image path>' line")
        try:
            values = [float(v) for v in line.split()]
        except ValueError as exc:
            raise ValueError(f"{where}: not a list of numbers: {line[:80]!r}") from exc
        faces.append(parse_face(values, where))
    if current is not None:
        items.append(LabelledImage(current, _labels_of(faces), current_line))
    return items


def image_path(label_file: str | Path, item: LabelledImage) -> Path:
    """Absolute path of an item's image: ``<label file dir>/images/<item path>``."""
    return Path(label_file).resolve().parent / IMAGES_DIR_NAME / item.path


def missing_images(label_file: str | Path, items: list[LabelledImage]) -> list[str]:
    """``<label file>:<line>: <image>`` for every listed image that is not on disk."""
    return [f"{label_file}:{item.line}: image not found: {image_path(label_file, item)}"
            for item in items if not image_path(label_file, item).is_file()]
