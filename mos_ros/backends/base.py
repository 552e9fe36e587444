"""The inference-backend protocol and the registry that opens a backend by name.

A backend turns a pre-processed batch into :class:`~mos_ros.core.types.RawOutputs`; decoding,
NMS and pose conversion happen once, in :mod:`mos_ros.core`, for every backend. The registry
names each built-in backend by a ``"module:Class"`` string and imports it only when it is
opened, so that importing :mod:`mos_ros.backends` never pulls in torch, onnxruntime or ncnn.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from mos_ros.core.anchors import num_anchors
from mos_ros.core.config import OUTPUT_NAMES
from mos_ros.core.config import ModelMeta
from mos_ros.core.errors import ImageError
from mos_ros.core.errors import ModelFileError
from mos_ros.core.types import RawOutputs

#: Colour channels a batch must have (BGR).
INPUT_CHANNELS = 3
#: Rank of an input batch: N, C, H, W.
BATCH_RANK = 4
#: ONNX ``metadata_props`` key under which an exported model carries its ModelMeta JSON.
ONNX_META_KEY = "mos_ros.meta"
#: Values per anchor of the box, class and landmark outputs; pose outputs have one per bin.
OUTPUT_WIDTHS = {"loc": 4, "conf": 2, "landms": 10}


@runtime_checkable
class InferenceBackend(Protocol):
    """Runs the MOS network on a batch; the only thing that differs between runtimes."""

    #: Registry name of the backend ("torch", "onnxruntime", "ncnn").
    name: str
    #: Metadata read from the model file; all post-processing needs.
    meta: ModelMeta
    #: Where it runs, for people and diagnostics ("cpu", "cuda:0", "onnxruntime[...]").
    device: str

    def infer(self, batch: np.ndarray) -> RawOutputs:
        """Raw network outputs for a float32 NCHW batch that is already mean-subtracted."""
        ...


#: Backends that ship with mos_ros, imported on first use.
_BUILTIN_BACKENDS: dict[str, str] = {
    "torch": "mos_ros.backends.torch_backend:TorchBackend",
    "onnxruntime": "mos_ros.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "ncnn": "mos_ros.backends.ncnn_backend:NcnnBackend",
}

#: name -> backend class, or a lazy ``"module:Class"`` reference to it.
_REGISTRY: dict[str, type | str] = dict(_BUILTIN_BACKENDS)


def register_backend(name: str) -> Callable[[type], type]:
    """Class decorator that makes a backend openable as ``open_backend(name, ...)``.

    The class is called as ``cls(model_path, **options)`` and must satisfy
    :class:`InferenceBackend`.
    """
    def decorator(cls: type) -> type:
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return decorator


def available_backends() -> list[str]:
    """Names ``open_backend`` accepts (whether their runtime is installed is checked on open)."""
    return sorted(_REGISTRY)


def _resolve(name: str) -> type:
    """Return the backend class for ``name``, importing its module on first use."""
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown backend {name!r}; known backends: {', '.join(available_backends())}")
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        module_name, class_name = entry.split(":")
        module = importlib.import_module(module_name)
        entry = getattr(module, class_name)
        _REGISTRY[name] = entry
    return entry


def _check_options(name: str, cls: type, model_path: Path, options: dict) -> None:
    """Reject unknown options with a message listing the ones the backend accepts."""
    signature = inspect.signature(cls)
    try:
        signature.bind(model_path, **options)
    except TypeError:
        accepted = [p for p in signature.parameters if p != "model_path"]
        unknown = sorted(set(options) - set(accepted))
        raise ValueError(
            f"backend {name!r} does not accept option(s) {unknown}; "
            f"it accepts: {', '.join(accepted) or 'none'}") from None


#: How each backend reads a generic device string ("cpu", "cuda", "cuda:1", "tensorrt",
#: "vulkan", or an onnxruntime provider list such as "tensorrt,cuda,cpu").
_DEVICE_OPTIONS: dict[str, Callable[[str], dict]] = {
    "torch": lambda device: {"device": device},
    "onnxruntime": lambda device: {"providers": [p.strip() for p in device.split(",")]},
    "ncnn": lambda device: {"use_vulkan": device.lower() == "vulkan"},
}


def device_options(name: str, device: str = "", threads: int | None = None) -> dict:
    """Constructor options of backend ``name`` for a device string and a thread count.

    Lets a command line or a ROS parameter name the device the same way for every backend;
    empty ``device`` and ``threads`` of None or 0 keep the backend's defaults.
    """
    options: dict = {"threads": threads} if threads else {}
    if device:
        if name not in _DEVICE_OPTIONS:
            raise ValueError(f"a device cannot be chosen for backend {name!r}")
        options.update(_DEVICE_OPTIONS[name](device))
    return options


def open_backend(name: str, model_path: str | Path, **options) -> InferenceBackend:
    """Load ``model_path`` with the backend called ``name``, passing it ``options``.

    Raises ``ValueError`` for an unknown backend or option and
    :class:`~mos_ros.core.errors.ModelFileError` for a model file the backend cannot use.
    """
    cls = _resolve(name)
    path = Path(model_path)
    _check_options(name, cls, path, options)
    return cls(path, **options)


def require_path(path: Path, what: str) -> Path:
    """Return ``path`` if it exists, else raise ModelFileError saying what was expected."""
    if not path.exists():
        raise ModelFileError(f"{path}: no such {what}")
    return path


def check_batch(batch: np.ndarray) -> np.ndarray:
    """Validate an input batch and return it as C-contiguous float32 (N, 3, H, W).

    Backends call this first so that a wrong array gives one clear error instead of a
    runtime-specific one.
    """
    if not isinstance(batch, np.ndarray):
        raise ImageError(f"input batch must be a numpy array, got {type(batch).__name__}")
    if batch.ndim != BATCH_RANK or batch.shape[1] != INPUT_CHANNELS:
        raise ImageError(
            f"input batch must have shape (N, {INPUT_CHANNELS}, H, W), got {batch.shape}")
    if 0 in batch.shape:
        raise ImageError(f"input batch is empty: shape {batch.shape}")
    if batch.dtype != np.float32:
        raise ImageError(f"input batch must be float32, got {batch.dtype}")
    return np.ascontiguousarray(batch)


def check_outputs(outputs: RawOutputs, batch_shape: tuple[int, ...], meta: ModelMeta,
                  source: str) -> RawOutputs:
    """Check the six outputs against the anchor layout of ``meta`` for this input size.

    Every output must be (B, N, k) with N the anchor count :mod:`mos_ros.core.anchors` gives
    for the input's height and width. A model file converted wrongly (a reshape that baked in
    a size, an upsampling that lost its dynamic shape) or metadata that does not fit the
    network is caught here, naming the file, instead of failing later in decoding.
    """
    batch_size, _, height, width = batch_shape
    expected_anchors = num_anchors(meta.priors, height, width)
    for name in OUTPUT_NAMES:
        array = getattr(outputs, name)
        expected = (batch_size, expected_anchors,
                    OUTPUT_WIDTHS.get(name, meta.pose_bins.num_bins))
        if array.shape != expected:
            raise ModelFileError(
                f"{source}: output {name!r} has shape {array.shape} for an input of "
                f"{height}x{width}, expected {expected}")
    return outputs
