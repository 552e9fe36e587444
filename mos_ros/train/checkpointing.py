"""What a run leaves on disk: state files for an exact resume, and the metrics CSV.

State files ``state_<iteration>.pt`` hold model, optimiser, schedule, RNG states and the
iteration (plus the state of enabled options); data is a function of the global sample index,
so a run resumed from one continues exactly where the saved run was.
"""
from __future__ import annotations

import csv
import json
import logging
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mos_ros.model.mos import MOS
from mos_ros.train.config import METRIC_FIELDS, TrainConfig
from mos_ros.train.feedback import FeedbackLoop

LOG = logging.getLogger(__name__)
STATE_PATTERN = "state_*.pt"
FINAL_MODEL = "model_final.pth"
METRICS_FILE = "metrics.csv"
VALIDATION_FILE = "validation.json"


def _rng_state() -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    # Plain types and tensors only, so that state files load with weights_only=True.
    state = {"torch": torch.get_rng_state(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(position),
                       int(has_gauss), float(cached)),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, iteration: int, model: MOS, optimizer, scheduler,
               config: TrainConfig, extra: dict[str, Any] | None = None) -> None:
    """Everything needed to continue the run bit-identically after ``iteration`` steps.

    ``extra`` adds the state of the enabled options (learned loss weights, feedback).
    """
    payload = {"iteration": iteration, "model": model.state_dict(),
               "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
               "rng": _rng_state(), "config": json.dumps(asdict(config)), **(extra or {})}
    temporary = path.with_suffix(".tmp")
    torch.save(payload, temporary)
    temporary.replace(path)


def latest_state(output_dir: str | Path) -> Path | None:
    """The state file with the highest iteration in ``output_dir``, or None."""
    states = sorted(Path(output_dir).glob(STATE_PATTERN))
    return states[-1] if states else None


def model_from_state(path: str | Path) -> MOS:
    """The network of a state file alone (its variant from the state's config, standard
    metadata), for checking a run's models while it trains."""
    from mos_ros.model import build_model

    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(json.loads(payload["config"])["variant"])
    model.load_state_dict(payload["model"])
    return model


def restore_state(path: Path, model: MOS, optimizer, scheduler, criterion=None,
                  feedback: FeedbackLoop | None = None) -> tuple[int, float]:
    """Load a state file into the run's parts; returns its iteration and the seconds the run
    had trained until then (0 for a state file that does not say)."""
    # RNG states are stored as plain types and tensors, so the safe loader reads them.
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(payload["model"])
    if criterion is not None and "criterion" in payload:
        criterion.load_state_dict(payload["criterion"])
    if feedback is not None and "feedback" in payload:
        feedback.load_state_dict(payload["feedback"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    _set_rng_state(payload["rng"])
    LOG.info("resumed from %s at iteration %d", path, payload["iteration"])
    return int(payload["iteration"]), float(payload.get("train_seconds", 0.0))


class MetricsLog:
    """Appends one CSV row per logged iteration (header written once)."""

    def __init__(self, path: Path, fields: tuple[str, ...] = METRIC_FIELDS):
        self.path = path
        self.fields = fields
        if not path.exists():
            with path.open("w", newline="") as handle:
                csv.writer(handle).writerow(fields)
            return
        with path.open(newline="") as handle:
            header = tuple(next(csv.reader(handle), ()))
        if header != fields:
            raise ValueError(f"{path}: columns {list(header)} differ from this run's "
                             f"{list(fields)}; use a new output_dir for a changed config")

    def write(self, row: dict[str, float]) -> None:
        """Append ``row`` (keys: the fields)."""
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow([row[name] for name in self.fields])
