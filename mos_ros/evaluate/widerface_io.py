"""WIDER FACE files: the official ``.mat`` ground truth and the per-image prediction text files.

Ground truth (as published with the official evaluation tools): ``wider_face_val.mat`` holds
``event_list`` (E x 1 cell of event names), ``file_list`` (E x 1 cell, each an N_e x 1 cell of
image names without extension) and ``face_bbx_list`` (E x 1 cell, each an N_e x 1 cell of
M x 4 ``x y w h`` arrays). ``wider_{easy,medium,hard}_val.mat`` add ``gt_list`` (same nesting,
each entry the 1-based indices of the faces that count in that setting); faces not listed are
ignored by the protocol.

Predictions: one file ``<event>/<image>.txt`` per image: the image name, the number of faces,
then one ``x y w h score`` line per face (pixels, top-left corner and size).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mos_ros.core.errors import MosError
from mos_ros.core.image_io import IMAGE_SUFFIXES
from mos_ros.core.types import Face

log = logging.getLogger(__name__)

#: Difficulty settings in the order the paper's tables list them.
SETTINGS: tuple[str, ...] = ("easy", "medium", "hard")
#: The file holding every face box, and the file of each setting's ``gt_list``.
FACES_FILE = "wider_face_val.mat"
SETTING_FILES = {name: f"wider_{name}_val.mat" for name in SETTINGS}
#: Columns of a prediction line: x, y, w, h, score.
PREDICTION_COLUMNS = 5


class EvaluationDataError(MosError, ValueError):
    """An evaluation input (ground truth, predictions, table) is malformed; says where."""


@dataclass(frozen=True)
class GroundTruthImage:
    """Faces of one image: ``boxes`` (M, 4) as x, y, w, h; ``keep[setting]`` (M,) booleans."""

    event: str
    name: str
    boxes: np.ndarray
    keep: dict[str, np.ndarray]


@dataclass(frozen=True)
class WiderGroundTruth:
    """The validation set's faces, image by image in the order of the ``.mat`` files."""

    images: tuple[GroundTruthImage, ...]
    settings: tuple[str, ...] = SETTINGS

    def face_counts(self) -> dict[str, int]:
        """Faces that count in each setting (the recall denominator)."""
        return {s: int(sum(int(i.keep[s].sum()) for i in self.images)) for s in self.settings}


def load_ground_truth(gt_dir: str | Path,
                      settings: Sequence[str] = SETTINGS) -> WiderGroundTruth:
    """Read the official ground truth from ``gt_dir`` (the four ``.mat`` files)."""
    gt_dir = Path(gt_dir)
    faces_path = gt_dir / FACES_FILE
    faces = _load_mat(faces_path, ("event_list", "file_list", "face_bbx_list"))
    events = [_text(cell, faces_path, f"event_list{{{i + 1}}}")
              for i, cell in enumerate(_cells(faces["event_list"], faces_path, "event_list"))]
    names = _nested(faces["file_list"], faces_path, "file_list", len(events))
    boxes = _nested(faces["face_bbx_list"], faces_path, "face_bbx_list", len(events))
    keeps = {s: _load_setting(gt_dir / SETTING_FILES[s], len(events)) for s in settings}
    images = []
    for e, event in enumerate(events):
        _check_same_length(faces_path, event, "file_list", names[e], "face_bbx_list", boxes[e])
        for i, name in enumerate(names[e]):
            where = f"{event}/{_text(name, faces_path, 'file_list')}"
            box = _boxes(boxes[e][i], faces_path, where)
            keep = {s: _keep_mask(keeps[s][e], i, len(box), gt_dir / SETTING_FILES[s], where)
                    for s in settings}
            images.append(GroundTruthImage(event, where.split("/", 1)[1], box, keep))
    return WiderGroundTruth(tuple(images), tuple(settings))


def _load_mat(path: Path, variables: Sequence[str]) -> dict:
    """Variables of a MATLAB file, with a clear error when the file or a variable is missing."""
    from scipy.io import loadmat  # optional (extra [train]): only the .mat ground truth needs it

    if not path.is_file():
        raise EvaluationDataError(f"{path}: no such ground-truth file")
    try:
        data = loadmat(str(path))
    except (ValueError, OSError, TypeError) as exc:
        raise EvaluationDataError(f"{path}: not a readable MATLAB file ({exc})") from None
    missing = [v for v in variables if v not in data]
    if missing:
        raise EvaluationDataError(f"{path}: missing variable(s) {missing}")
    return data


def _load_setting(path: Path, events: int) -> list[list[np.ndarray]]:
    """``gt_list`` of one setting file: per event, per image, the 1-based kept face indices."""
    return _nested(_load_mat(path, ("gt_list",))["gt_list"], path, "gt_list", events)


def _cells(array, path: Path, what: str) -> list:
    """Elements of a MATLAB cell array (an object ndarray of any 1-D-like shape)."""
    if not isinstance(array, np.ndarray) or array.dtype != object:
        raise EvaluationDataError(f"{path}: {what} must be a cell array, got "
                                  f"{type(array).__name__} {getattr(array, 'dtype', '')}")
    return list(array.reshape(-1))


def _nested(array, path: Path, what: str, events: int) -> list[list]:
    """A cell of cells (one inner cell per event), checked against the number of events."""
    outer = _cells(array, path, what)
    if len(outer) != events:
        raise EvaluationDataError(f"{path}: {what} has {len(outer)} events, "
                                  f"event_list has {events}")
    return [_cells(inner, path, f"{what}{{{e + 1}}}") for e, inner in enumerate(outer)]


def _text(cell, path: Path, what: str) -> str:
    """A MATLAB char array (loaded as a 1-element string array) as a Python string."""
    values = np.asarray(cell).reshape(-1)
    if values.size != 1 or values.dtype.kind != "U":
        raise EvaluationDataError(f"{path}: {what} must be a string, got {values!r}")
    return str(values[0])


def _check_same_length(path: Path, event: str, name_a: str, a: list, name_b: str,
                       b: list) -> None:
    if len(a) != len(b):
        raise EvaluationDataError(f"{path}: event {event}: {name_a} has {len(a)} images but "
                                  f"{name_b} has {len(b)}")


def _boxes(cell, path: Path, where: str) -> np.ndarray:
    """An M x 4 box array (an empty entry means no faces)."""
    box = np.asarray(cell, dtype=np.float64)
    if box.size == 0:
        return np.zeros((0, 4))
    if box.ndim != 2 or box.shape[1] != 4:
        raise EvaluationDataError(f"{path}: face_bbx_list of {where} must be M x 4, "
                                  f"got shape {box.shape}")
    return box


def _keep_mask(setting_cells: list, index: int, faces: int, path: Path,
               where: str) -> np.ndarray:
    """Boolean mask of the faces a setting counts, from its 1-based ``gt_list`` entry."""
    if len(setting_cells) <= index:
        raise EvaluationDataError(f"{path}: gt_list has no entry for {where}")
    listed = np.asarray(setting_cells[index], dtype=np.float64).reshape(-1)
    if listed.size and (np.any(listed != np.round(listed)) or listed.min() < 1
                        or listed.max() > faces):
        raise EvaluationDataError(f"{path}: gt_list of {where} must hold face numbers 1..{faces}"
                                  f", got {listed.tolist()}")
    keep = np.zeros(faces, dtype=bool)
    indices = listed.astype(np.int64) - 1
    if len(np.unique(indices)) != len(indices):
        raise EvaluationDataError(f"{path}: gt_list of {where} repeats a face: {listed.tolist()}")
    keep[indices] = True
    return keep


@dataclass(frozen=True)
class Predictions:
    """Detections per ground-truth image, (n, 5) ``x y w h score``, plus files not found."""

    boxes: tuple[np.ndarray, ...]
    missing: tuple[str, ...]

    @property
    def count(self) -> int:
        """Total number of predicted boxes."""
        return int(sum(len(b) for b in self.boxes))


def read_predictions(pred_dir: str | Path, gt: WiderGroundTruth) -> Predictions:
    """Read ``<event>/<image>.txt`` for every ground-truth image.

    A missing file counts as an image without detections and is listed in ``missing`` (the
    official tool warns and goes on); a malformed file is an error naming file and line.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise EvaluationDataError(f"{pred_dir}: no such prediction folder")
    boxes, missing = [], []
    for image in gt.images:
        path = pred_dir / image.event / f"{image.name}.txt"
        if path.is_file():
            boxes.append(read_prediction_file(path))
        else:
            missing.append(f"{image.event}/{image.name}")
            boxes.append(np.zeros((0, PREDICTION_COLUMNS)))
    if missing:
        log.warning("%d of %d prediction files missing under %s (first: %s)", len(missing),
                    len(gt.images), pred_dir, missing[0])
    return Predictions(tuple(boxes), tuple(missing))


def read_prediction_file(path: str | Path) -> np.ndarray:
    """The (n, 5) ``x y w h score`` rows of one prediction file, validated line by line."""
    path = Path(path)
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise EvaluationDataError(f"{path}: expected an image-name line and a count line, "
                                  f"got {len(lines)} line(s)")
    count = _count(lines[1], path)
    rows = lines[2:]
    extra = [n for n, line in enumerate(rows[count:], start=count + 3) if line.strip()]
    if len(rows) < count or extra:
        found = len([r for r in rows if r.strip()])
        raise EvaluationDataError(f"{path}:2: the count line says {count} face(s) but "
                                  f"{found} box line(s) follow")
    return _parse_rows(rows[:count], path)


def _count(line: str, path: Path) -> int:
    try:
        count = int(line.strip())
    except ValueError:
        raise EvaluationDataError(f"{path}:2: expected the number of faces, "
                                  f"got {line.strip()!r}") from None
    if count < 0:
        raise EvaluationDataError(f"{path}:2: negative face count {count}")
    return count


def _parse_rows(rows: list[str], path: Path) -> np.ndarray:
    """Parse box lines in one go; on failure find and name the first bad line."""
    tokens = " ".join(rows).split()
    if len(tokens) == PREDICTION_COLUMNS * len(rows):
        try:
            values = np.array(tokens, dtype=np.float64).reshape(-1, PREDICTION_COLUMNS)
            if np.all(np.isfinite(values)):
                return values
        except ValueError:
            pass
    for number, row in enumerate(rows, start=3):
        _parse_row(row, path, number)
    raise AssertionError("unreachable: a bad row was expected")  # pragma: no cover


def _parse_row(row: str, path: Path, number: int) -> np.ndarray:
    fields = row.split()
    if len(fields) != PREDICTION_COLUMNS:
        raise EvaluationDataError(f"{path}:{number}: expected 'x y w h score', got {row!r}")
    try:
        values = np.array(fields, dtype=np.float64)
    except ValueError:
        raise EvaluationDataError(f"{path}:{number}: not numbers: {row!r}") from None
    if not np.all(np.isfinite(values)):
        raise EvaluationDataError(f"{path}:{number}: not finite: {row!r}")
    return values


def format_predictions(image_name: str, faces: Sequence[Face]) -> str:
    """The text of a prediction file for ``faces`` (best score first, as the tools expect)."""
    ordered = sorted(faces, key=lambda f: -f.score)
    lines = [image_name, str(len(ordered))]
    lines += [f"{f.box[0]:.3f} {f.box[1]:.3f} {f.width:.3f} {f.height:.3f} {f.score:.8f}"
              for f in ordered]
    return "\n".join(lines) + "\n"


def write_predictions(out_dir: str | Path, event: str, image_name: str,
                      faces: Sequence[Face]) -> Path:
    """Write ``<out_dir>/<event>/<image>.txt`` in the official format; returns its path.

    ``image_name`` may carry the image's extension; the file and its first line use the name
    without it, as the ground truth's ``file_list`` does.
    """
    suffix = Path(image_name).suffix.lower()
    stem = Path(image_name).stem if suffix in IMAGE_SUFFIXES else image_name
    path = Path(out_dir) / event / f"{stem}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_predictions(stem, faces))
    return path
