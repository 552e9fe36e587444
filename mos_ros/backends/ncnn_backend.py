"""MOS inference with ncnn (ARM and x86 CPUs, Vulkan GPUs).

An ncnn model is a directory, by convention ``NAME.ncnn/``, written by
:func:`mos_ros.export.export_ncnn`::

    NAME.ncnn/
        model.ncnn.param   network structure
        model.ncnn.bin     weights (fp32)
        meta.json          ModelMeta fields, plus "ncnn": {"input": blob, "outputs": {name: blob}}

ncnn runs one image at a time and drops the batch dimension, so a batch is run image by image
and the outputs are stacked back to the (B, N, k) shapes every backend returns.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import ncnn
import numpy as np

from mos_ros.backends.base import check_batch
from mos_ros.backends.base import check_outputs
from mos_ros.backends.base import register_backend
from mos_ros.backends.base import require_path
from mos_ros.core.config import ModelMeta
from mos_ros.core.config import OUTPUT_NAMES
from mos_ros.core.errors import ModelFileError
from mos_ros.core.types import RawOutputs

_LOG = logging.getLogger(__name__)

PARAM_FILE = "model.ncnn.param"
BIN_FILE = "model.ncnn.bin"
META_FILE = "meta.json"
#: Key in meta.json that holds the ncnn blob names (the rest is ModelMeta).
BLOBS_KEY = "ncnn"


def write_meta_json(directory: Path, meta: ModelMeta, input_blob: str,
                    output_blobs: dict[str, str]) -> Path:
    """Write ``meta.json``: ModelMeta fields plus the blob names the backend must feed/read."""
    data = json.loads(meta.to_json())
    data[BLOBS_KEY] = {"input": input_blob, "outputs": output_blobs}
    path = directory / META_FILE
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def read_meta_json(path: Path) -> tuple[ModelMeta, str, dict[str, str]]:
    """Parse ``meta.json`` into (ModelMeta, input blob, output blobs by output name)."""
    try:
        data = json.loads(path.read_text())
        blobs = data.pop(BLOBS_KEY)
        meta = ModelMeta.from_dict(data)
        input_blob = str(blobs["input"])
        outputs = {name: str(blobs["outputs"][name]) for name in OUTPUT_NAMES}
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ModelFileError(
            f"{path}: not a valid mos_ros ncnn meta.json ({type(exc).__name__}: {exc})"
        ) from None
    return meta, input_blob, outputs


def model_files(directory: Path) -> tuple[Path, Path, Path]:
    """Return the param, bin and meta files of an ncnn model directory, or raise."""
    require_path(directory, "ncnn model directory")
    if not directory.is_dir():
        raise ModelFileError(
            f"{directory}: an ncnn model is a directory (NAME.ncnn/) holding {PARAM_FILE}, "
            f"{BIN_FILE} and {META_FILE}, not a file")
    files = [directory / PARAM_FILE, directory / BIN_FILE, directory / META_FILE]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ModelFileError(f"{directory}: ncnn model directory lacks {', '.join(missing)}")
    return files[0], files[1], files[2]


def _vulkan_available(use_vulkan: bool) -> bool:
    """Whether to run on Vulkan; a request without a Vulkan device falls back with a warning."""
    if not use_vulkan:
        return False
    if ncnn.get_gpu_count() > 0:
        return True
    _LOG.warning("ncnn: Vulkan requested but no Vulkan device found; falling back to CPU")
    return False


def _configure(net: Any, threads: int | None, vulkan: bool, fp16: bool) -> None:
    """Set ncnn options before loading (ncnn reads them while loading the model)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        net.opt.num_threads = threads
    net.opt.use_vulkan_compute = vulkan
    # ncnn stores and computes in fp16 where the CPU/GPU supports it unless told otherwise;
    # fp32 keeps outputs equal to the torch model, fp16 is the faster choice on ARM boards.
    net.opt.use_fp16_storage = fp16
    net.opt.use_fp16_packed = fp16
    net.opt.use_fp16_arithmetic = fp16


def describe_device(vulkan: bool, fp16: bool) -> str:
    """Human-readable place of execution, e.g. "ncnn[cpu]" or "ncnn[vulkan:0,fp16]"."""
    where = f"vulkan:{ncnn.get_default_gpu_index()}" if vulkan else "cpu"
    return f"ncnn[{where},fp16]" if fp16 else f"ncnn[{where}]"


@register_backend("ncnn")
class NcnnBackend:
    """An ncnn MOS model directory loaded into an ``ncnn.Net``."""

    def __init__(self, model_path: str | Path, *, threads: int | None = None,
                 use_vulkan: bool = False, fp16: bool = False) -> None:
        self.path = Path(model_path)
        param, weights, meta_file = model_files(self.path)
        self.meta, self._input_blob, self._output_blobs = read_meta_json(meta_file)
        vulkan = _vulkan_available(use_vulkan)
        self._net = ncnn.Net()
        _configure(self._net, threads, vulkan, fp16)
        if self._net.load_param(str(param)) != 0:
            raise ModelFileError(f"{param}: not a valid ncnn param file")
        if self._net.load_model(str(weights)) != 0:
            raise ModelFileError(
                f"{weights}: ncnn could not read the weights (truncated or not matching "
                f"{PARAM_FILE})")
        self._check_blob_names()
        self.device = describe_device(vulkan, fp16)

    def _check_blob_names(self) -> None:
        inputs, outputs = set(self._net.input_names()), set(self._net.output_names())
        wanted = set(self._output_blobs.values())
        if self._input_blob not in inputs or not wanted <= outputs:
            raise ModelFileError(
                f"{self.path}: {META_FILE} names blobs {self._input_blob!r} -> "
                f"{sorted(wanted)}, but {PARAM_FILE} has {sorted(inputs)} -> {sorted(outputs)}")

    def _infer_one(self, image: np.ndarray) -> list[np.ndarray]:
        """Run one (3, H, W) image, giving (N, k) outputs; ncnn has no batch dimension."""
        extractor = self._net.create_extractor()
        # ncnn.Mat wraps the numpy memory; ``image`` stays referenced until extraction ends.
        extractor.input(self._input_blob, ncnn.Mat(image))
        arrays = []
        for name in OUTPUT_NAMES:
            status, mat = extractor.extract(self._output_blobs[name])
            if status != 0:
                raise RuntimeError(f"ncnn failed to compute output {name!r} of {self.path}")
            arrays.append(np.array(mat, dtype=np.float32, copy=True))
        return arrays

    def infer(self, batch: np.ndarray) -> RawOutputs:
        """Raw outputs for a float32 NCHW, mean-subtracted batch."""
        batch = check_batch(batch)
        per_image = [self._infer_one(np.ascontiguousarray(image)) for image in batch]
        stacked = [np.stack(arrays) for arrays in zip(*per_image)]
        return check_outputs(RawOutputs.from_sequence(stacked), batch.shape, self.meta,
                             str(self.path))
