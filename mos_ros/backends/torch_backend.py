"""MOS inference with PyTorch on CPU or CUDA, straight from a mos_ros checkpoint (``.pt``)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from mos_ros.backends.base import check_batch
from mos_ros.backends.base import check_outputs
from mos_ros.backends.base import register_backend
from mos_ros.backends.base import require_path
from mos_ros.core.types import RawOutputs
from mos_ros.model.checkpoint import load_checkpoint
from mos_ros.model.fused import fuse_for_inference

_LOG = logging.getLogger(__name__)

#: Accepted ``device`` values besides explicit "cuda:N".
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(requested: str) -> torch.device:
    """Choose the torch device; CUDA requested where there is none falls back to CPU.

    "auto" picks CUDA when available. The fall-back is logged rather than raised so that one
    configuration runs on both a GPU robot and a CPU-only development machine.
    """
    kind = requested.split(":")[0]
    if kind not in DEVICE_CHOICES or (kind != "cuda" and ":" in requested):
        raise ValueError(
            f"unknown torch device {requested!r}; use one of {', '.join(DEVICE_CHOICES)} "
            "or 'cuda:N'")
    cuda = torch.cuda.is_available()
    if kind == "auto":
        return torch.device("cuda" if cuda else "cpu")
    if kind == "cuda" and not cuda:
        _LOG.warning("torch: CUDA requested (%s) but not available; falling back to CPU",
                     requested)
        return torch.device("cpu")
    return torch.device(requested)


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index}"
    return device.type


class ModuleBackend:
    """A MOS module already in memory (e.g. one being trained), run as an inference backend.

    The module is used as it is (no fusing), in whatever mode the caller set, under
    ``torch.inference_mode``; ``source`` names it in error messages.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device | str = "cpu",
                 source: str = "the model in memory") -> None:
        self._model = model
        self._device = torch.device(device)
        self.meta = model.meta
        self.device = _describe(self._device)
        self.source = source

    def infer(self, batch: np.ndarray) -> RawOutputs:
        """Raw outputs for a float32 NCHW, mean-subtracted batch."""
        batch = check_batch(batch)
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self._device)
            outputs = self._model(tensor)
            arrays = [out.float().cpu().numpy() for out in outputs]
        return check_outputs(RawOutputs.from_sequence(arrays), batch.shape, self.meta,
                             self.source)


@register_backend("torch")
class TorchBackend(ModuleBackend):
    """A MOS checkpoint evaluated by PyTorch, in its inference form (:mod:`mos_ros.model.fused`)
    under ``torch.inference_mode``."""

    def __init__(self, model_path: str | Path, *, device: str = "auto",
                 threads: int | None = None) -> None:
        self.path = require_path(Path(model_path), "checkpoint file")
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1, got {threads}")
            # Process-wide in torch: the last backend opened decides.
            torch.set_num_threads(threads)
        model, _ = load_checkpoint(self.path, map_location="cpu")
        resolved = resolve_device(device)
        super().__init__(fuse_for_inference(model).to(resolved), resolved, str(self.path))
