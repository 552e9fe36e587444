"""Reading weight files and loading state dicts with errors a user can act on.

Every failure here raises :class:`~mos_ros.core.errors.ModelFileError` naming the file and the
problem, so that callers (CLI, ROS nodes) never show a deep torch traceback.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mos_ros.core.errors import ModelFileError

_LOG = logging.getLogger(__name__)

#: How many offending key names an error message lists before it abbreviates.
KEYS_SHOWN = 8

#: What ``torch.load`` raises for files that are not (complete) torch archives. The unpickler
#: can fail in almost any way on arbitrary bytes (IndexError and struct.error were seen too), so
#: every ordinary exception means "not a readable weight file".
_UNREADABLE = (Exception,)


def read_torch_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a torch file with ``weights_only=True`` (no code execution) or raise ModelFileError."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except _UNREADABLE as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"{path}: not a readable torch weight file (truncated, corrupt or of another "
            f"kind): {first_line}") from None


def describe_keys(keys: Iterable[str]) -> str:
    """Short, sorted listing of key names for an error message."""
    keys = sorted(keys)
    shown = ", ".join(keys[:KEYS_SHOWN])
    more = len(keys) - KEYS_SHOWN
    return f"{shown}, ... ({more} more)" if more > 0 else shown


def as_tensor_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """Check that ``obj`` is a mapping of names to tensors; ModelFileError otherwise."""
    if not isinstance(obj, Mapping):
        raise ModelFileError(f"{source}: expected a state dict, found {type(obj).__name__}")
    bad = [key for key, value in obj.items()
           if not isinstance(key, str) or not isinstance(value, torch.Tensor)]
    if bad:
        raise ModelFileError(
            f"{source}: state dict has non-tensor entries: {describe_keys(map(str, bad))}")
    return dict(obj)


def load_state_dict_strictly(module: nn.Module, state_dict: Mapping[str, torch.Tensor],
                             source: str, hint: str = "") -> None:
    """Load every key and nothing else, with matching shapes; ModelFileError names the misfits.

    Key sets and shapes are checked before torch is called so that the message lists the
    problem keys instead of torch's long ``RuntimeError`` text.
    """
    expected = module.state_dict()
    missing = set(expected) - set(state_dict)
    unexpected = set(state_dict) - set(expected)
    problems = []
    if missing:
        problems.append(f"missing keys: {describe_keys(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {describe_keys(unexpected)}")
    mismatched = [
        f"{key} {tuple(state_dict[key].shape)} != {tuple(tensor.shape)}"
        for key, tensor in expected.items()
        if key in state_dict and state_dict[key].shape != tensor.shape
    ]
    if mismatched:
        problems.append(f"shape mismatch (file != model): {describe_keys(mismatched)}")
    if problems:
        suffix = f" ({hint})" if hint else ""
        raise ModelFileError(f"{source}: weights do not fit the model{suffix}: "
                             + "; ".join(problems))
    module.load_state_dict(state_dict, strict=True)
    _LOG.debug("loaded %d tensors from %s", len(state_dict), source)
