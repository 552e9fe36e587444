"""The final model as the mean of a run's late state files (stochastic weight averaging).

Late in a run, at a small learning rate, the weights still wander from one state file to the
next, and with them figures that hang on a few borderline scores (false positives on real
photos moved between 0.29 and 0.74 per image from one state file to the next of the same
run). The mean of the weights of the last few state files sits in the middle of that walk
(Izmailov et al., "Averaging Weights Leads to Wider Optima and Better Generalization", 2018).

A mean of weights is not matched by a mean of batch-norm statistics, so the statistics of
every batch norm that trained are measured again: reset, then accumulated as a plain average
over training batches in training mode, without gradients. Frozen batch norms keep their
stored statistics (their forward hook holds them in eval mode), as in training.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import torch

from mos_ros.train.checkpointing import STATE_PATTERN

LOG = logging.getLogger(__name__)


def late_state_files(output_dir: str | Path, count: int) -> list[Path]:
    """The ``count`` state files of the highest iterations in ``output_dir``, oldest first."""
    if count < 1:
        raise ValueError(f"average over at least one state file, not {count}")
    states = sorted(Path(output_dir).glob(STATE_PATTERN))
    if not states:
        raise FileNotFoundError(f"{output_dir}: no state files to average")
    return states[-count:]


def mean_weights(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the model tensors in ``paths``; integer buffers (batch-norm
    batch counters) come from the last file."""
    models = [torch.load(path, map_location="cpu", weights_only=True)["model"] for path in paths]
    return {name: (torch.stack([m[name].double() for m in models]).mean(0).to(tensor.dtype)
                   if tensor.is_floating_point() else tensor)
            for name, tensor in models[-1].items()}


def _trained_batch_norms(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
            and any(p.requires_grad for p in m.parameters())]


@torch.no_grad()
def measure_batch_norm(model: torch.nn.Module, inputs: Iterable[torch.Tensor]) -> int:
    """Replace the statistics of ``model``'s trained batch norms by their plain average over
    ``inputs`` (network-ready batches); returns the number of batches seen."""
    norms = _trained_batch_norms(model)
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None                 # cumulative average over the batches
    was_training = model.training
    model.train()
    seen = 0
    for batch in inputs:
        model(batch)
        seen += 1
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.train(was_training)
    if not seen and norms:
        raise ValueError("no batches to measure the batch-norm statistics on")
    return seen


def average_late_states(model: torch.nn.Module, output_dir: str | Path, count: int,
                        inputs: Iterable[torch.Tensor]) -> list[Path]:
    """Load the mean weights of the last ``count`` state files of ``output_dir`` into
    ``model`` and measure its batch-norm statistics on ``inputs``; returns the files used."""
    paths = late_state_files(output_dir, count)
    device = next(model.parameters()).device
    model.load_state_dict({name: tensor.to(device)
                           for name, tensor in mean_weights(paths).items()})
    batches = measure_batch_norm(model, inputs)
    LOG.info("final weights: mean of %d state files (%s .. %s), batch-norm statistics over "
             "%d batches", len(paths), paths[0].name, paths[-1].name, batches)
    return paths
