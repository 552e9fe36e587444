"""Model files: our checkpoint format, and the public MOS reference weights.

Our checkpoint is a ``torch.save`` of a plain dict::

    {"format": "mos_ros.checkpoint/1", "meta": ModelMeta.to_json(),
     "state_dict": {name: tensor}, "extra": {...plain types...}}   # "extra" optional

Everything is read with ``weights_only=True`` (no code runs on load). Every failure raises
:class:`~mos_ros.core.errors.ModelFileError` naming the file and the problem.
"""
from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mos_ros.core.config import ModelMeta
from mos_ros.core.errors import ModelFileError
from mos_ros.model.backbones.mobilenetv2 import FEATURE_TAPS
from mos_ros.model.mos import MOS, VARIANTS, build_model
from mos_ros.model.serialization import (
    as_tensor_dict, describe_keys, load_state_dict_strictly, read_torch_file)

_LOG = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "mos_ros.checkpoint/1"
#: Prefix ``nn.DataParallel`` puts on every key of the reference training runs.
DATA_PARALLEL_PREFIX = "module."
#: The reference model has an unused top-level ``Conv_pose`` block (3x3 conv + BN, left
#: over from an earlier pose head); its tensors are in the public files and are ignored.
UNUSED_REFERENCE_MODULE = "Conv_pose."
#: Key fragment present only in deformable-convolution weights.
DCN_KEY_MARK = ".conv_offset_mask."


def uses_dcn(state_dict: Mapping[str, Tensor]) -> bool:
    """Whether weights were trained with deformable convolutions in the neck."""
    return any(DCN_KEY_MARK in key for key in state_dict)


# --- our checkpoint format -----------------------------------------------------------------

def _check_extra(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """``extra`` must be JSON-like (loadable with ``weights_only``); TypeError otherwise."""
    if extra is None:
        return {}
    try:
        return json.loads(json.dumps(dict(extra)))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"checkpoint extra must hold plain JSON types only: {exc}") from None


def save_checkpoint(path: str | Path, model: MOS, meta: ModelMeta | None = None,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model``'s weights with ``meta`` (default ``model.meta``); returns the path.

    The file is written next to its destination and renamed into place, so a crash never
    leaves a truncated checkpoint under the final name.
    """
    path = Path(path)
    meta = meta if meta is not None else model.meta
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "meta": meta.to_json(),
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
    }
    checked_extra = _check_extra(extra)
    if checked_extra:
        payload["extra"] = checked_extra
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)
    _LOG.info("saved %s checkpoint to %s", meta.variant, path)
    return path


def _read_checkpoint_payload(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """The checkpoint dict, checked for our format marker."""
    payload = read_torch_file(path, map_location)
    if not isinstance(payload, dict) or "format" not in payload:
        raise ModelFileError(
            f"{path}: not a mos_ros checkpoint (no 'format' entry); the public MOS-S/MOS-M "
            f"weights load with load_official_weights()")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path}: checkpoint format {payload['format']!r} is not "
                             f"supported (expected {CHECKPOINT_FORMAT!r})")
    for key in ("meta", "state_dict"):
        if key not in payload:
            raise ModelFileError(f"{path}: checkpoint has no {key!r} entry")
    return payload


def _read_meta(path: Path, text: Any) -> ModelMeta:
    """Parse the stored metadata and check that its variant is known."""
    if not isinstance(text, str):
        raise ModelFileError(f"{path}: checkpoint metadata is not a JSON string")
    try:
        meta = ModelMeta.from_json(text)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(f"{path}: bad model metadata: {exc}") from None
    if meta.variant not in VARIANTS:
        raise ModelFileError(f"{path}: unknown MOS variant {meta.variant!r}; known: "
                             f"{', '.join(sorted(VARIANTS))}")
    return meta


def read_checkpoint_extra(path: str | Path) -> dict[str, Any]:
    """The ``extra`` dict stored with a checkpoint (empty when there is none)."""
    return dict(_read_checkpoint_payload(Path(path), "cpu").get("extra", {}))


def load_checkpoint(path: str | Path,
                    map_location: str | torch.device = "cpu") -> tuple[MOS, ModelMeta]:
    """Rebuild the model saved by :func:`save_checkpoint`, in eval mode, on ``map_location``.

    Whether the neck is deformable is read off the weights themselves.
    """
    path = Path(path)
    payload = _read_checkpoint_payload(path, map_location)
    meta = _read_meta(path, payload["meta"])
    state = as_tensor_dict(payload["state_dict"], str(path))
    try:
        model = build_model(meta.variant, dcn=uses_dcn(state), meta=meta)
    except ValueError as exc:
        raise ModelFileError(f"{path}: metadata does not describe a buildable model: "
                             f"{exc}") from None
    load_state_dict_strictly(model, state, str(path), hint=f"variant {meta.variant}")
    return model.to(map_location).eval(), meta


# --- public reference weights (MOS-S.pth, MOS-M.pth) ---------------------------------------

def _mobilenet_group_starts() -> dict[str, int]:
    """Reference MOS-M body groups -> index of their first block in torchvision's ``features``.

    The reference splits MobileNetV2's ``features`` at our taps into ``feature_2``,
    ``feature_4`` and ``feature_6`` (named after inverted-residual settings 2, 4 and 6).
    """
    starts = (0, *(tap + 1 for tap in FEATURE_TAPS[:-1]))
    return {f"feature_{group}": start for group, start in zip((2, 4, 6), starts)}


_MOBILENET_GROUP_KEY = re.compile(r"^body\.(feature_\d+)\.(\d+)\.(.*)$")


def _rename_mobilenet_body(key: str) -> str:
    """``body.feature_4.2.conv...`` -> ``body.features.9.conv...``; other keys unchanged."""
    match = _MOBILENET_GROUP_KEY.match(key)
    starts = _mobilenet_group_starts()
    if not match or match.group(1) not in starts:
        return key
    group, index, rest = match.groups()
    return f"body.features.{starts[group] + int(index)}.{rest}"


#: Backbone name -> renaming of reference body keys to ours (identity when absent).
OFFICIAL_KEY_RENAMES: dict[str, Callable[[str], str]] = {
    "mobilenet_v2": _rename_mobilenet_body,
}


def _strip_prefix(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {key[len(prefix):] if key.startswith(prefix) else key: value
            for key, value in state.items()}


def _official_state(weights: str | Path | Mapping[str, Any]) -> tuple[dict[str, Tensor], str]:
    """Read a reference weight file (or dict); unwrap a ``{"state_dict": ...}`` wrapper."""
    source = "state dict" if isinstance(weights, Mapping) else str(weights)
    raw = weights if isinstance(weights, Mapping) else read_torch_file(weights)
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if isinstance(raw, Mapping) and raw.get("format") == CHECKPOINT_FORMAT:
        raise ModelFileError(f"{source}: this is a mos_ros checkpoint; use load_checkpoint()")
    return as_tensor_dict(raw, source), source


def _dcn_hint(model: nn.Module, state: Mapping[str, Tensor]) -> str:
    """Explain the common misfit: deformable weights into a plain model, or the reverse."""
    file_dcn, model_dcn = uses_dcn(state), uses_dcn(model.state_dict())
    if file_dcn and not model_dcn:
        return "the weights use deformable convolutions: build the model with dcn=True"
    if model_dcn and not file_dcn:
        return "the weights have no deformable convolutions: build the model with dcn=False"
    return ""


def load_official_weights(model: MOS, weights: str | Path | Mapping[str, Any]) -> MOS:
    """Load the public MOS reference weights (e.g. ``MOS-S.pth``) into ``model``.

    Strips a ``module.`` prefix, ignores the reference's unused top-level ``Conv_pose``
    block, maps MOS-M body names onto torchvision's, then loads strictly. The public files
    were trained with deformable convolutions, so they need ``build_model(..., dcn=True)``.
    """
    state, source = _official_state(weights)
    state = _strip_prefix(state, DATA_PARALLEL_PREFIX)
    ignored = [key for key in state if key.startswith(UNUSED_REFERENCE_MODULE)]
    for key in ignored:
        del state[key]
    if ignored:
        _LOG.debug("ignored unused reference keys: %s", describe_keys(ignored))
    rename = OFFICIAL_KEY_RENAMES.get(model.config.backbone, lambda key: key)
    state = {rename(key): value for key, value in state.items()}
    hint = _dcn_hint(model, state)
    load_state_dict_strictly(model, state, source,
                             hint=hint or f"expected reference weights of {model.config.name}")
    return model
