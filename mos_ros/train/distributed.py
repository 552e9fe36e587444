"""Data-parallel training over several GPUs or machines, launched with ``torchrun``.

Launch (one machine, 4 GPUs)::

    torchrun --nproc_per_node 4 -m mos_ros.train train config/train_mos_s.yaml

and on two machines, the same command on each with ``--nnodes 2 --node_rank <0|1>
--rdzv_endpoint <host of rank 0>:29500``. The trainer sees ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` in its environment (:meth:`DistributedContext.from_environment`), joins the
process group (NCCL on CUDA, Gloo on CPU), uses GPU ``LOCAL_RANK``, and wraps the model in
``DistributedDataParallel``.

Same global batch semantics. ``batch_size`` stays the global batch: global batch ``b`` holds
samples ``b * batch .. (b + 1) * batch - 1`` (samples are functions of their index), and each
process takes its own contiguous slice of ``batch / world`` of them. Batch normalisation uses
statistics of the global batch (``SyncBatchNorm`` on CUDA, :class:`GlobalBatchNorm2d` on CPU),
and the counts that normalise the loss terms are summed over processes (:func:`mean_count`),
so the average of the per-process losses, which DDP's gradient averaging differentiates, is
the loss of one process on the whole batch. Learned loss weights live outside the DDP model;
their gradients are averaged explicitly (:meth:`DistributedContext.average_gradients`).
Only rank 0 writes state files, metrics and the final model.
"""
from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

LOG = logging.getLogger(__name__)

#: Process-group backend per device type.
BACKENDS = {"cuda": "nccl", "cpu": "gloo"}
ENV_RANK, ENV_WORLD, ENV_LOCAL_RANK = "RANK", "WORLD_SIZE", "LOCAL_RANK"
INIT_TIMEOUT = datetime.timedelta(minutes=10)


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced (summed) incoming gradient."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:  # noqa: D102 (autograd protocol)
        summed = tensor.clone()
        dist.all_reduce(summed)
        return summed

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102 (autograd protocol)
        summed = grad.clone()
        dist.all_reduce(summed)
        return summed


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the batches of all processes.

    Per-channel sums, sums of squares and counts are summed with an autograd-aware
    all-reduce, so gradients flow through the shared statistics as in one process. For devices
    without ``SyncBatchNorm`` kernels (CPU); same parameters and buffers as ``BatchNorm2d``.
    """

    def forward(self, x: Tensor) -> Tensor:
        """Normalise with global batch statistics in training, running ones in evaluation."""
        if not self.training or not dist.is_initialized():
            return super().forward(x)
        channels = x.shape[1]
        wide = x.double()
        count = x.new_full((1,), x.numel() / channels, dtype=torch.float64)
        stats = torch.cat([wide.sum(dim=(0, 2, 3)), (wide * wide).sum(dim=(0, 2, 3)), count])
        stats = _SumOverProcesses.apply(stats)
        total = stats[-1]
        mean = stats[:channels] / total
        var = (stats[channels:2 * channels] / total - mean * mean).clamp(min=0)
        self._update_running(mean.detach(), var.detach() * total / (total - 1).clamp(min=1))
        scale = torch.rsqrt(var + self.eps).to(x.dtype)
        out = (x - mean.to(x.dtype).view(1, -1, 1, 1)) * scale.view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out

    @torch.no_grad()
    def _update_running(self, mean: Tensor, unbiased_var: Tensor) -> None:
        if not self.track_running_stats:
            return
        self.num_batches_tracked += 1
        factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                  else self.momentum)
        self.running_mean.mul_(1 - factor).add_(factor * mean.to(self.running_mean.dtype))
        self.running_var.mul_(1 - factor).add_(factor * unbiased_var.to(self.running_var.dtype))


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` by :class:`GlobalBatchNorm2d` (in place)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            replacement = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum,
                                            child.affine, child.track_running_stats)
            replacement.load_state_dict(child.state_dict())
            setattr(module, name, replacement.to(child.weight.device if child.affine
                                                 else child.running_mean.device))
        else:
            convert_global_batchnorm(child)
    return module


#: How batch normalisation is synchronised, per device type.
BATCHNORM_SYNC: dict[str, Callable[[nn.Module], nn.Module]] = {
    "cuda": nn.SyncBatchNorm.convert_sync_batchnorm,
    "cpu": convert_global_batchnorm,
}


def mean_count(count: Tensor) -> Tensor:
    """Normaliser of a loss term: the count over all processes (at least 1) over their number.

    With it each process's term is ``world * local sum / global count``; their mean is the
    single-process term ``global sum / global count``.
    """
    total = count.detach().float().clone()
    dist.all_reduce(total)
    return total.clamp(min=1) / dist.get_world_size()


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> DistributedContext:
        """Read torchrun's variables; a plain ``python`` start is rank 0 of 1."""
        environ = os.environ if environ is None else environ
        try:
            context = cls(int(environ.get(ENV_RANK, 0)), int(environ.get(ENV_WORLD, 1)),
                          int(environ.get(ENV_LOCAL_RANK, 0)))
        except ValueError as exc:
            raise ValueError(f"invalid torchrun environment ({ENV_RANK}, {ENV_WORLD}, "
                             f"{ENV_LOCAL_RANK}): {exc}") from None
        if not 0 <= context.rank < context.world_size:
            raise ValueError(f"{ENV_RANK}={context.rank} outside {ENV_WORLD}="
                             f"{context.world_size}")
        return context

    @property
    def enabled(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and logs."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The GPU of this process (``cuda:LOCAL_RANK``) for CUDA runs, else ``device``."""
        if self.enabled and device.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def start(self, device: torch.device) -> None:
        """Join the process group (no-op for one process)."""
        if not self.enabled or dist.is_initialized():
            return
        backend = BACKENDS.get(device.type)
        if backend is None:
            raise ValueError(f"no process-group backend for device {device}")
        dist.init_process_group(backend, timeout=INIT_TIMEOUT)
        LOG.info("rank %d of %d joined (%s, %s)", self.rank, self.world_size, backend, device)

    def barrier(self) -> None:
        """Wait until every process arrives (no-op for one process)."""
        if self.enabled:
            dist.barrier()

    def stop(self) -> None:
        """Leave the process group after everyone arrived."""
        if self.enabled and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    def prepare_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        """Synchronise batch normalisation (before the optimiser is built)."""
        if not self.enabled:
            return model
        return BATCHNORM_SYNC[device.type](model)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The DDP-wrapped model that is trained (the model itself for one process)."""
        if not self.enabled:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def count_normaliser(self) -> Callable[[Tensor], Tensor] | None:
        """The loss-count normaliser for this run (None: the loss's own default)."""
        return mean_count if self.enabled else None

    def average_gradients(self, module: nn.Module) -> None:
        """Average the gradients of ``module``'s parameters (those outside DDP) over processes."""
        if not self.enabled:
            return
        for parameter in module.parameters():
            if parameter.grad is not None:
                dist.all_reduce(parameter.grad)
                parameter.grad.div_(self.world_size)

    def mean_floats(self, values: dict[str, float]) -> dict[str, float]:
        """Per-name mean over processes (every process must call it at the same step)."""
        if not self.enabled:
            return values
        names = sorted(values)
        tensor = self._on_backend(torch.tensor([values[n] for n in names], dtype=torch.float64))
        dist.all_reduce(tensor)
        return {n: float(v) / self.world_size for n, v in zip(names, tensor.cpu().tolist())}

    def sum_tensor(self, tensor: Tensor) -> Tensor:
        """``tensor`` summed over processes (a new CPU tensor)."""
        if not self.enabled:
            return tensor
        moved = self._on_backend(tensor.clone())
        dist.all_reduce(moved)
        return moved.cpu()

    def broadcast_int(self, value: int) -> int:
        """Rank 0's ``value`` on every process."""
        if not self.enabled:
            return value
        tensor = self._on_backend(torch.tensor([value], dtype=torch.int64))
        dist.broadcast(tensor, src=0)
        return int(tensor.item())

    def _on_backend(self, tensor: Tensor) -> Tensor:
        # NCCL reduces only CUDA tensors; Gloo takes CPU ones.
        if dist.get_backend() == "nccl":
            return tensor.cuda()
        return tensor


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
