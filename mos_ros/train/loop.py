"""Training loop: SGD or AdamW with warm-up and step decay, bf16 autocast where the device
has it (CUDA, CPUs with AVX512-BF16/AMX), exact resume, metrics CSV.

A run is described by a :class:`~mos_ros.train.config.TrainConfig` (YAML:
``config/train_synth.yaml``); :func:`train` builds its parts (weights from
:mod:`mos_ros.train.weights`, data from :mod:`mos_ros.train.loaders`, schedule from
:mod:`mos_ros.train.schedule`), runs the iterations, writes state files and metrics
(:mod:`mos_ros.train.checkpointing`) and the final model with
:func:`mos_ros.model.save_checkpoint` together with its :class:`ModelMeta`.

Options that follow the MOS paper, each off by default: ``loss.weighting: uncertainty``
(learned task weights, Eq. 7; :mod:`mos_ros.train.uncertainty`), the ``feedback`` section
(stitched batches and hard-image sampling, section 3.3; :mod:`mos_ros.train.feedback`),
``headpose_sets`` (300W-LP / AFLW2000 images mixed into training;
:mod:`mos_ros.train.headpose_data`). Started by ``torchrun`` the same run trains data-parallel
on several GPUs or machines (:mod:`mos_ros.train.distributed`). ``sample.mirror_pairs`` with
``loss.mirror_weight`` trains on pairs of an image and its mirror with a term that makes the
two pose readings agree (:mod:`mos_ros.train.loss`). ``config/train_mos_s.yaml``
is the paper's WIDER FACE schedule.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mos_ros.backends.torch_backend import resolve_device
from mos_ros.core.anchors import mirrored_anchor_order
from mos_ros.model import build_model, save_checkpoint
from mos_ros.model.mos import MOS
from mos_ros.train.checkpointing import (
    FINAL_MODEL, METRICS_FILE, VALIDATION_FILE, MetricsLog, latest_state, restore_state,
    save_state)
from mos_ros.train.averaging import average_late_states
from mos_ros.train.config import TrainConfig
from mos_ros.train.dataset import images_to_input, targets_to_device
from mos_ros.train.distributed import DistributedContext
from mos_ros.train.feedback import FeedbackLoop
from mos_ros.train.loaders import make_loader, training_set, validation_config
from mos_ros.train.loss import MultiTaskLoss
from mos_ros.train.schedule import TIME_FIT_ITERATIONS, affordable_iterations, make_optimizer
from mos_ros.train.validate import ValidationResult, render_validation_set, validate
from mos_ros.train.weights import (freeze_layers, layers_outside, load_backbone_weights,
                                  load_initial_weights)

LOG = logging.getLogger(__name__)


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 convolutions natively (CUDA with bf16; a CPU with
    AVX512-BF16 or AMX), so that autocast to bf16 makes a training step faster, not slower."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # Private probes of torch's own CPU dispatch; a torch without them gets fp32.
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    return False


def _amp_context(device: torch.device, enabled: bool):
    """bf16 autocast of the network's forward pass where the device supports it; the loss is
    always computed in float32 (:class:`MultiTaskLoss` casts the outputs)."""
    if enabled and bf16_supported(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


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
    metrics: MetricsLog | None
    feedback: FeedbackLoop | None
    #: Seconds this run trained in earlier processes (restored from its state file), and
    #: when this process began its iterations (``time.perf_counter``).
    seconds_before: float = 0.0
    began: float = 0.0

    def seconds_trained(self) -> float:
        """Training time of the whole run so far, over every process that resumed it."""
        return self.seconds_before + time.perf_counter() - self.began

    def save(self, iteration: int) -> None:
        """Write the state file of ``iteration`` (rank 0 only)."""
        if not self.context.is_main:
            return
        extra: dict[str, Any] = {"train_seconds": self.seconds_trained()}
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
    device = context.device(resolve_device(config.device))
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
    freeze_layers(model, layers_outside(model, config.trainable_layers)
                  if config.trainable_layers else config.frozen_layers)
    model = context.prepare_model(model, device)
    normaliser = context.count_normaliser()
    criterion = MultiTaskLoss(model.meta.pose_bins, config.loss,
                              **({"count_normaliser": normaliser} if normaliser else {}),
                              mirror_order=_mirror_order(config, model))
    criterion = criterion.to(device)
    optimizer, scheduler = make_optimizer(model, config, criterion)
    dataset = training_set(config, output_dir, context, model.meta)
    feedback = (FeedbackLoop(config.feedback, dataset, config.batch_size, config.seed)
                if config.feedback.enabled else None)
    start, seconds_before = 0, 0.0
    state_path = latest_state(output_dir) if resume == "latest" else resume
    if state_path is not None:
        start, seconds_before = restore_state(Path(state_path), model, optimizer, scheduler, criterion,
                              feedback)

    metrics = (MetricsLog(output_dir / METRICS_FILE, config.metric_fields)
               if context.is_main else None)
    LOG.info("training %s on %s: iterations %d..%d, batch %d, input %d", config.variant,
             device, start, config.iterations, config.batch_size, config.input_size)
    loader = make_loader(config, dataset, start, device, context, feedback)
    session = _Session(config, model, context.wrap(model, device), criterion, optimizer,
                       scheduler, device, output_dir, context, metrics, feedback,
                       seconds_before)
    iteration = _run_iterations(session, loader, start)
    path = output_dir / FINAL_MODEL
    if context.is_main:
        if config.average_states:
            average_late_states(model, output_dir, config.average_states,
                                _network_inputs(config, dataset, model, device))
        path = _finish(config, model, iteration, device, output_dir)
    context.stop()
    return path


def _network_inputs(config: TrainConfig, dataset, model: MOS, device: torch.device):
    """The first ``average_bn_batches`` training batches, as network inputs (this process;
    loaded in it, so that stopping early leaves no loader process behind)."""
    loader = make_loader(dataclasses.replace(config, workers=0), dataset, 0, device,
                         DistributedContext(), None)
    for index, (images, _) in enumerate(loader):
        if index == config.average_bn_batches:
            return
        yield images_to_input(images.to(device), model.meta.input_mean)


def _mirror_order(config: TrainConfig, model: MOS) -> np.ndarray | None:
    """The anchors' mirror order at the training input size, for the mirror-consistency
    term (None when the run has no mirror pairs)."""
    if not config.sample.mirror_pairs:
        return None
    size = config.input_size
    return mirrored_anchor_order(model.meta.priors, size, size)


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
    began = last_log = session.began = time.perf_counter()
    # max_minutes bounds the whole run: a resumed run has only what earlier processes left.
    deadline = (began + config.max_minutes * 60 - session.seconds_before
                if config.max_minutes > 0 else float("inf"))
    last = config.iterations
    fit_mark = (start, began)
    # A live progress bar on a terminal (rank 0 only); logs and metrics.csv record the rest.
    if config.max_minutes > 0 and context.broadcast_int(int(began > deadline)):
        LOG.warning("max_minutes %.1f were spent before iteration %d: no more training",
                    config.max_minutes, start)
        return start
    progress = tqdm(total=config.iterations, initial=start, unit="it", dynamic_ncols=True,
                    disable=context.rank != 0 or not sys.stderr.isatty())
    for batch in loader:
        parts = _train_step(session, batch)
        iteration += 1
        progress.update(1)
        if (iteration - start) % TIME_FIT_ITERATIONS == 0 and config.max_minutes > 0:
            last = context.broadcast_int(
                affordable_iterations(config, iteration, fit_mark, deadline))
            session.scheduler.lr_lambdas[0].fit_to(last, config.lr_steps)
            LOG.info("lr steps now at %s", session.scheduler.lr_lambdas[0].milestones)
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


def _finish(config: TrainConfig, model: MOS, iteration: int, device: torch.device,
            output_dir: Path) -> Path:
    result: ValidationResult | None = None
    if config.validation_images > 0:
        samples = render_validation_set(config.validation_images, config.validation_seed,
                                        validation_config(config))
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
