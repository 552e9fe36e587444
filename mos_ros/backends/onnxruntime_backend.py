"""MOS inference with onnxruntime on its CPU, CUDA or TensorRT execution providers.

The model's :class:`~mos_ros.core.config.ModelMeta` is read from the ONNX file's
``metadata_props`` (key :data:`~mos_ros.backends.base.ONNX_META_KEY`), which
:func:`mos_ros.export.export_onnx` writes.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from mos_ros.backends.base import check_batch
from mos_ros.backends.base import check_outputs
from mos_ros.backends.base import ONNX_META_KEY
from mos_ros.backends.base import register_backend
from mos_ros.backends.base import require_path
from mos_ros.core.config import INPUT_NAME
from mos_ros.core.config import ModelMeta
from mos_ros.core.config import OUTPUT_NAMES
from mos_ros.core.errors import ModelFileError
from mos_ros.core.types import RawOutputs

_LOG = logging.getLogger(__name__)

CPU_PROVIDER = "CPUExecutionProvider"
#: Short names accepted for execution providers; full names ("...ExecutionProvider") also work.
PROVIDER_ALIASES = {
    "cpu": CPU_PROVIDER,
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "rocm": "ROCMExecutionProvider",
}
#: What onnxruntime raises for files it cannot load as a model (execution-provider failures
#: raise RuntimeException and are left alone: they are not the file's fault).
_LOAD_ERRORS = (ort_state.Fail, ort_state.InvalidProtobuf, ort_state.InvalidGraph,
                ort_state.NoSuchFile, ort_state.InvalidArgument, ort_state.NotImplemented)

#: An execution provider, by name or as (name, provider options).
ProviderSpec = str | tuple[str, dict]


def provider_name(spec: ProviderSpec) -> str:
    """Full onnxruntime name of a provider given by alias or full name (case-insensitive)."""
    name = spec[0] if isinstance(spec, tuple) else spec
    if name.lower() in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[name.lower()]
    if name.endswith("ExecutionProvider"):
        return name
    raise ValueError(
        f"unknown onnxruntime execution provider {name!r}; use a full name such as "
        f"'CUDAExecutionProvider' or one of: {', '.join(PROVIDER_ALIASES)}")


def _is_single_provider(spec) -> bool:
    """Tell a lone name or (name, options) pair from a list of providers."""
    return isinstance(spec, str) or (
        isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], dict))


def select_providers(requested: Sequence[ProviderSpec]) -> list[ProviderSpec]:
    """Keep the requested providers this onnxruntime build has, in order, CPU last.

    Unavailable ones are dropped with a single warning saying what is used instead, so that a
    configuration written for a GPU machine still runs (slower) on a CPU-only one.
    """
    if _is_single_provider(requested):
        requested = [requested]
    available = ort.get_available_providers()
    chosen, dropped = [], []
    for spec in requested:
        name = provider_name(spec)
        options = spec[1] if isinstance(spec, tuple) else None
        if name not in available:
            dropped.append(name)
        elif name not in [provider_name(c) for c in chosen]:
            chosen.append((name, options) if options else name)
    if CPU_PROVIDER not in [provider_name(c) for c in chosen]:
        chosen.append(CPU_PROVIDER)
    if dropped:
        _LOG.warning(
            "onnxruntime execution provider(s) %s not available in this build (available: %s);"
            " falling back to %s", ", ".join(dropped), ", ".join(available),
            ", ".join(provider_name(c) for c in chosen))
    return chosen


def _session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def _open_session(path: Path, providers: list[ProviderSpec],
                  threads: int | None) -> ort.InferenceSession:
    """Create the session, turning onnxruntime's load errors into ModelFileError."""
    try:
        return ort.InferenceSession(str(path), sess_options=_session_options(threads),
                                    providers=providers)
    except _LOAD_ERRORS as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise ModelFileError(
            f"{path}: onnxruntime cannot load this file as a model (truncated, corrupt or "
            f"not ONNX): {first_line}") from None


def read_meta(session: ort.InferenceSession, path: Path) -> ModelMeta:
    """Read the ModelMeta stored in the model's metadata; ModelFileError names the file."""
    text = session.get_modelmeta().custom_metadata_map.get(ONNX_META_KEY)
    if text is None:
        raise ModelFileError(
            f"{path}: ONNX model has no {ONNX_META_KEY!r} metadata; it was not exported by "
            "mos_ros (use `mos export --format onnx`)")
    try:
        return ModelMeta.from_json(text)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(f"{path}: invalid {ONNX_META_KEY!r} metadata: {exc}") from None


def _check_io_names(session: ort.InferenceSession, path: Path) -> None:
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if inputs != [INPUT_NAME] or not set(OUTPUT_NAMES) <= set(outputs):
        raise ModelFileError(
            f"{path}: ONNX model has inputs {inputs} and outputs {outputs}; expected input "
            f"{INPUT_NAME!r} and outputs {list(OUTPUT_NAMES)}")


@register_backend("onnxruntime")
class OnnxRuntimeBackend:
    """An ONNX MOS model in an onnxruntime session."""

    def __init__(self, model_path: str | Path, *,
                 providers: Sequence[ProviderSpec] = (CPU_PROVIDER,),
                 threads: int | None = None) -> None:
        self.path = require_path(Path(model_path), "ONNX model file")
        self._session = _open_session(self.path, select_providers(providers), threads)
        self.meta = read_meta(self._session, self.path)
        _check_io_names(self._session, self.path)
        self.providers = self._session.get_providers()
        self.device = f"onnxruntime[{','.join(self.providers)}]"

    def infer(self, batch: np.ndarray) -> RawOutputs:
        """Raw outputs for a float32 NCHW, mean-subtracted batch."""
        batch = check_batch(batch)
        arrays = self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
        return check_outputs(RawOutputs.from_sequence(arrays), batch.shape, self.meta,
                             str(self.path))
