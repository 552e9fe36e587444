"""Per-sample predictions and ground truth as simple CSV or JSON tables.

Every table maps a sample name to a record with any of: ``yaw``, ``pitch``, ``roll``
(degrees), ``box`` ([x1, y1, x2, y2] pixels) and ``landmarks`` ([[x, y], ...] pixels).

* CSV: a header row with ``name`` and any of ``yaw, pitch, roll``, ``box_x1, box_y1, box_x2,
  box_y2`` and ``lm0_x, lm0_y, lm1_x, ...``; an empty landmark cell means "not annotated".
* JSON: ``{name: record}``, a list of records with a ``name`` field, or the
  ``detections.json`` that ``mos detect`` writes (``{"frames": {name: [face, ...]}}``, of which
  the best-scored face of each image is taken). Faces in :meth:`Face.to_dict` form are records.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from mos_ros.evaluate.widerface_io import EvaluationDataError

Record = dict[str, Any]
BOX_COLUMNS = ("box_x1", "box_y1", "box_x2", "box_y2")
ANGLE_FIELDS = ("yaw", "pitch", "roll")
#: CSV columns of landmark coordinates: ``lm<index>_x`` and ``lm<index>_y``.
LANDMARK_COLUMN = re.compile(r"lm(\d+)_[xy]")


def load_records(path: str | Path) -> dict[str, Record]:
    """Records by sample name from a ``.csv`` or ``.json`` file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationDataError(f"{path}: no such file")
    readers = {".csv": _csv_records, ".json": _json_records}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise EvaluationDataError(f"{path}: expected a .csv or .json table")
    records = reader(path)
    if not records:
        raise EvaluationDataError(f"{path}: no samples")
    return records


def _csv_records(path: Path) -> dict[str, Record]:
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    if not rows or "name" not in rows[0]:
        raise EvaluationDataError(f"{path}:1: the header must have a 'name' column")
    return {row["name"]: _csv_record(row, path, line)
            for line, row in enumerate(rows, start=2)}


def _csv_record(row: dict[str, str], path: Path, line: int) -> Record:
    """One CSV row as a record; numbers checked, naming the file, line and column."""
    if None in row or None in row.values():
        raise EvaluationDataError(f"{path}:{line}: the number of fields differs from the header")

    def number(column: str) -> float:
        text = (row.get(column) or "").strip()
        try:
            return float(text) if text else float("nan")
        except ValueError:
            raise EvaluationDataError(f"{path}:{line}: column {column!r} is not a number: "
                                      f"{text!r}") from None

    record: Record = {a: number(a) for a in ANGLE_FIELDS if a in row}
    if all(c in row for c in BOX_COLUMNS):
        record["box"] = [number(c) for c in BOX_COLUMNS]
    points = sorted({int(m.group(1)) for m in (LANDMARK_COLUMN.fullmatch(c) for c in row) if m})
    if points:
        record["landmarks"] = [[number(f"lm{i}_x"), number(f"lm{i}_y")] for i in points]
    return record


def _json_records(path: Path) -> dict[str, Record]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise EvaluationDataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict) and isinstance(data.get("frames"), dict):
        return {name: faces[0] for name, faces in data["frames"].items()
                if isinstance(faces, list) and faces}
    if isinstance(data, dict):
        return {str(name): _json_record(r, path, name) for name, r in data.items()}
    if isinstance(data, list):
        named = [_json_record(r, path, i) for i, r in enumerate(data)]
        if any("name" not in r for r in named):
            raise EvaluationDataError(f"{path}: every record of a JSON list needs a 'name'")
        return {str(r["name"]): r for r in named}
    raise EvaluationDataError(f"{path}: expected a JSON object or list of records")


def _json_record(record: Any, path: Path, where: Any) -> Record:
    if not isinstance(record, dict):
        raise EvaluationDataError(f"{path}: record {where!r} is not an object")
    return record


def pair_names(predicted: dict[str, Record],
               truth: dict[str, Record]) -> tuple[list[str], list[str], int]:
    """Names in both tables (ground-truth order), names without a prediction, extra predictions."""
    common = [name for name in truth if name in predicted]
    missing = [name for name in truth if name not in predicted]
    extra = len([name for name in predicted if name not in truth])
    if not common:
        raise EvaluationDataError("predictions and ground truth share no sample name")
    return common, missing, extra


def angle_array(records: dict[str, Record], names: list[str], source: str) -> np.ndarray:
    """(n, 3) yaw, pitch, roll of ``names``."""
    return np.array([[_number(records[n], a, source, n) for a in ANGLE_FIELDS] for n in names])


def box_array(records: dict[str, Record], names: list[str], source: str) -> np.ndarray:
    """(n, 4) x1, y1, x2, y2 face boxes of ``names``."""
    return np.stack([_vector(records[n], "box", (4,), source, n) for n in names])


def landmark_array(records: dict[str, Record], names: list[str], source: str) -> np.ndarray:
    """(n, k, 2) landmark points of ``names``; NaN marks a point without annotation."""
    first = _vector(records[names[0]], "landmarks", None, source, names[0])
    return np.stack([_vector(records[n], "landmarks", first.shape, source, n) for n in names])


def _number(record: Record, field: str, source: str, name: str) -> float:
    if field not in record:
        raise EvaluationDataError(f"{source}: sample {name!r} has no {field!r}")
    try:
        return float(record[field])
    except (TypeError, ValueError):
        raise EvaluationDataError(f"{source}: {field!r} of sample {name!r} is not a number: "
                                  f"{record[field]!r}") from None


def _vector(record: Record, field: str, shape: tuple[int, ...] | None, source: str,
            name: str) -> np.ndarray:
    if field not in record:
        raise EvaluationDataError(f"{source}: sample {name!r} has no {field!r}")
    try:
        array = np.array(record[field], dtype=np.float64)
    except (TypeError, ValueError):
        raise EvaluationDataError(
            f"{source}: {field!r} of sample {name!r} is not numeric") from None
    expected = shape or (array.shape[0] if array.ndim == 2 else -1, 2)
    if array.shape != tuple(expected):
        raise EvaluationDataError(f"{source}: {field!r} of sample {name!r} has shape "
                                  f"{array.shape}, expected {tuple(expected)}")
    return array
