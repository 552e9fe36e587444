"""Export a mos_ros checkpoint to ONNX (onnxruntime, TensorRT) or ncnn (ARM boards, Vulkan),
each also as int8 for CPUs.

Both formats keep the input height and width dynamic (ONNX also the batch), so one file
serves every camera resolution, and both carry the model's
:class:`~mos_ros.core.config.ModelMeta` so that inference needs nothing else. What is written
is the network's inference form (:mod:`mos_ros.model.fused`: stitch convs, cross-stitch and
dense heads folded into one conv per level); every export is checked by running the written
file once next to the torch model as trained.

Heavy libraries are imported inside the functions that use them: torch and the model code,
onnx, pnnx and ncnn (extras [torch], [ncnn]).
"""
from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mos_ros.backends.base import ONNX_META_KEY
from mos_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from mos_ros.core.config import INPUT_NAME
from mos_ros.core.config import OUTPUT_NAMES
from mos_ros.core.errors import ModelFileError
from mos_ros.core.errors import ExportError
from mos_ros.quantize import quantize_ncnn, quantize_onnx

_LOG = logging.getLogger(__name__)

#: ONNX opset written by default: new enough for every op MOS uses, old enough for
#: TensorRT 8.6 and onnxruntime >= 1.12.
DEFAULT_OPSET = 17
#: Input (height, width) the network is traced at; any size works afterwards.
TRACE_SIZE = (256, 320)
#: A second, different size for pnnx, from which it learns which dimensions are dynamic.
SECOND_TRACE_SIZE = (320, 192)
#: Size of the check run after export; odd on purpose, so that rounding in the
#: upsampling and reshape paths is exercised too.
CHECK_SIZE = (161, 227)
#: Scale of the random check input, about that of a mean-subtracted image.
CHECK_INPUT_SCALE = 50.0
#: An exported file must reproduce torch's outputs to within atol + rtol * max|output|.
CHECK_ATOL = 1e-3
CHECK_RTOL = 1e-4
#: Longest time pnnx may take to convert a model, in seconds.
PNNX_TIMEOUT_S = 600
#: Lines of pnnx's log quoted in an error.
LOG_TAIL_LINES = 15
#: Files of an ncnn model directory (see :mod:`mos_ros.backends.ncnn_backend`).
NCNN_PARAM, NCNN_BIN = "model.ncnn.param", "model.ncnn.bin"
#: Blob names pnnx gives the first input and the i-th output.
PNNX_INPUT_BLOB, PNNX_OUTPUT_BLOB = "in0", "out{}"
#: Prefix of operators pnnx could not map to an ncnn layer.
PNNX_LAYER_PREFIX = "pnnx."


def _load(checkpoint_path: str | Path):
    """Checkpoint -> (model in eval mode on CPU, its inference form, ModelMeta).

    The inference form (:mod:`mos_ros.model.fused`) is what gets written; the model as
    trained is the reference every written file is checked against. ModelFileError if the
    checkpoint is unreadable.
    """
    from mos_ros.model.checkpoint import load_checkpoint
    from mos_ros.model.fused import fuse_for_inference

    model, meta = load_checkpoint(Path(checkpoint_path), map_location="cpu")
    return model.eval(), fuse_for_inference(model), meta


def _dummy_input(size: tuple[int, int]):
    import torch

    return torch.zeros(1, 3, *size)


def _check_input(size: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((1, 3, *size)) * CHECK_INPUT_SCALE).astype(np.float32)


def _torch_outputs(model, batch: np.ndarray) -> list[np.ndarray]:
    import torch

    with torch.inference_mode():
        return [out.numpy() for out in model(torch.from_numpy(batch))]


def _compare(exported: list[np.ndarray], reference: list[np.ndarray], what: str) -> float:
    """Largest absolute difference; ExportError if shapes differ or it is out of tolerance."""
    worst = 0.0
    for name, got, want in zip(OUTPUT_NAMES, exported, reference):
        if got.shape != want.shape:
            raise ExportError(
                f"{what}: output {name!r} has shape {got.shape}, the torch model {want.shape}")
        diff = float(np.max(np.abs(got - want)))
        if diff > CHECK_ATOL + CHECK_RTOL * float(np.max(np.abs(want))):
            raise ExportError(f"{what}: output {name!r} differs from the torch model by {diff}")
        worst = max(worst, diff)
    return worst


@contextlib.contextmanager
def _torchscript_deprecations_silenced():
    """Hide torch's notices that TorchScript tracing is deprecated.

    Both converters used here (pnnx, and the ONNX exporter that works without onnxscript)
    take TorchScript; the notices would only tell a user something they cannot act on.
    """
    with warnings.catch_warnings():
        for message in (r".*TorchScript-based ONNX export", r"`torch\.jit\.trace",
                        r"The feature will be removed"):
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=message)
        yield


def _export_failed(checkpoint_path: Path, fmt: str, reason: str) -> ExportError:
    return ExportError(f"{checkpoint_path}: {fmt} export failed: {reason}")


# --- ONNX ---------------------------------------------------------------------------------

def _dynamic_axes() -> dict[str, dict[int, str]]:
    axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
    axes.update({name: {0: "batch", 1: "anchors"} for name in OUTPUT_NAMES})
    return axes


def _trace_to_onnx(model, path: Path, opset: int, checkpoint_path: Path) -> None:
    import torch

    # The TorchScript-based exporter (dynamo=False) needs no onnxscript and gives a graph with
    # dynamic batch, height and width for this network.
    with _torchscript_deprecations_silenced():
        try:
            torch.onnx.export(
                model, (_dummy_input(TRACE_SIZE),), str(path), input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES), dynamic_axes=_dynamic_axes(),
                opset_version=opset, do_constant_folding=True, dynamo=False)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise _export_failed(checkpoint_path, "ONNX", str(exc).strip()) from exc


def _add_metadata_and_check(path: Path, meta_json: str) -> None:
    """Store the ModelMeta JSON in ``metadata_props`` and validate the model with onnx."""
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_META_KEY, meta_json
    proto.doc_string = "MOS face detector: boxes, five landmarks and head pose (mos_ros)"
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def _verify_onnx(path: Path, model, checkpoint_path: Path) -> float:
    batch = _check_input(CHECK_SIZE)
    try:
        raw = OnnxRuntimeBackend(path).infer(batch)
    except ModelFileError as exc:
        raise _export_failed(checkpoint_path, "ONNX", f"onnxruntime cannot run the result: {exc}")
    exported = [getattr(raw, name) for name in OUTPUT_NAMES]
    return _compare(exported, _torch_outputs(model, batch), str(path))


def export_onnx(checkpoint_path: str | Path, out_path: str | Path, *,
                opset: int | None = None) -> Path:
    """Write the checkpoint as an ONNX model with dynamic batch, height and width.

    The input is named ``input``, the outputs :data:`~mos_ros.core.config.OUTPUT_NAMES`; the
    ModelMeta JSON is stored in ``metadata_props`` under ``mos_ros.meta``. The file is
    checked with ``onnx.checker`` and run once in onnxruntime against the torch model.
    Returns the path written.
    """
    checkpoint_path, out_path = Path(checkpoint_path), Path(out_path)
    model, fused, meta = _load(checkpoint_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mos_export_") as work:
        staged = Path(work) / "model.onnx"
        _trace_to_onnx(fused, staged, opset or DEFAULT_OPSET, checkpoint_path)
        _add_metadata_and_check(staged, meta.to_json())
        worst = _verify_onnx(staged, model, checkpoint_path)
        shutil.move(str(staged), out_path)
    _LOG.info("exported %s to %s (max difference to torch %.2e)", checkpoint_path, out_path,
              worst)
    return out_path


# --- ncnn ---------------------------------------------------------------------------------

def _shape_arg(size: tuple[int, int]) -> str:
    return f"[1,3,{size[0]},{size[1]}]f32"


def _run_pnnx(model, work: Path, checkpoint_path: Path) -> tuple[Path, Path]:
    """Trace the model to TorchScript and convert it with pnnx; returns (param, bin) paths.

    pnnx is run as a program (rather than through ``pnnx.export``) so that its exit status
    and log are checked; ``fp16=0`` keeps fp32 weights so results match torch.
    """
    import pnnx
    import torch

    traced_path = work / "model.pt"
    try:
        # The export is checked against torch afterwards, so trace's own re-run check is spared.
        with _torchscript_deprecations_silenced():
            traced = torch.jit.trace(model, _dummy_input(TRACE_SIZE), check_trace=False)
        traced.save(str(traced_path))
    except (RuntimeError, TypeError, ValueError) as exc:
        raise _export_failed(checkpoint_path, "ncnn", f"tracing: {exc}") from exc
    command = [pnnx.EXEC_PATH, traced_path.name, f"inputshape={_shape_arg(TRACE_SIZE)}",
               f"inputshape2={_shape_arg(SECOND_TRACE_SIZE)}", "device=cpu", "fp16=0"]
    try:
        result = subprocess.run(command, cwd=work, capture_output=True, text=True,
                                timeout=PNNX_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _export_failed(checkpoint_path, "ncnn", f"running pnnx: {exc}") from exc
    param, weights = work / NCNN_PARAM, work / NCNN_BIN
    if result.returncode != 0 or not param.is_file() or not weights.is_file():
        log = (result.stdout + result.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
        raise _export_failed(checkpoint_path, "ncnn",
                             f"pnnx exit status {result.returncode}:\n" + "\n".join(log))
    return param, weights


def _unconverted_layers(param: Path) -> list[str]:
    """Layer types pnnx left in its own namespace because ncnn has no equivalent."""
    types = {line.split()[0] for line in param.read_text().splitlines()[2:] if line.strip()}
    return sorted(t for t in types if t.startswith(PNNX_LAYER_PREFIX))


def _verify_ncnn(directory: Path, model, checkpoint_path: Path) -> float:
    from mos_ros.backends.ncnn_backend import NcnnBackend

    unconverted = _unconverted_layers(directory / NCNN_PARAM)
    if unconverted:
        raise _export_failed(
            checkpoint_path, "ncnn",
            f"ncnn has no layer for {', '.join(unconverted)} (deformable convolution, "
            "dcn=True, is one such operator)")
    batch = _check_input(CHECK_SIZE)
    try:
        raw = NcnnBackend(directory).infer(batch)
    except ModelFileError as exc:
        raise _export_failed(checkpoint_path, "ncnn", f"ncnn cannot run the result: {exc}")
    exported = [getattr(raw, name) for name in OUTPUT_NAMES]
    return _compare(exported, _torch_outputs(model, batch), str(directory))


def export_ncnn(checkpoint_path: str | Path, out_dir: str | Path) -> Path:
    """Write the checkpoint as an ncnn model directory (by convention ``NAME.ncnn/``).

    The directory holds ``model.ncnn.param``, ``model.ncnn.bin`` (fp32) and ``meta.json``;
    height and width stay dynamic. pnnx's intermediate files are removed. The result is run
    once in ncnn against the torch model. Returns the directory.
    """
    from mos_ros.backends.ncnn_backend import write_meta_json

    checkpoint_path, out_dir = Path(checkpoint_path), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir}: exists and is not a directory")
    model, fused, meta = _load(checkpoint_path)
    with tempfile.TemporaryDirectory(prefix="mos_export_") as work:
        staged = Path(work) / "staged.ncnn"
        staged.mkdir()
        for produced in _run_pnnx(fused, Path(work), checkpoint_path):
            shutil.move(str(produced), staged / produced.name)
        outputs = {name: PNNX_OUTPUT_BLOB.format(i) for i, name in enumerate(OUTPUT_NAMES)}
        write_meta_json(staged, meta, PNNX_INPUT_BLOB, outputs)
        worst = _verify_ncnn(staged, model, checkpoint_path)
        out_dir.mkdir(parents=True, exist_ok=True)
        for produced in staged.iterdir():
            shutil.move(str(produced), out_dir / produced.name)
    _LOG.info("exported %s to %s (max difference to torch %.2e)", checkpoint_path, out_dir,
              worst)
    return out_dir


def export_onnx_int8(checkpoint_path: str | Path, out_path: str | Path, *,
                     calibration: str | Path | None = None) -> Path:
    """Write the checkpoint as an int8 (QDQ) ONNX model for CPUs, by :mod:`mos_ros.quantize`.

    ``calibration`` is a folder of images like the deployment's (e.g. data-engine scenes);
    the result must find the faces the fp32 export finds on some of them. Returns the path.
    """
    if calibration is None:
        raise ExportError("onnx-int8 export needs a folder of calibration images")
    with tempfile.TemporaryDirectory(prefix="mos_export_") as work:
        fp32 = export_onnx(checkpoint_path, Path(work) / "model.onnx")
        return quantize_onnx(fp32, out_path, calibration)[0]


def export_ncnn_int8(checkpoint_path: str | Path, out_dir: str | Path, *,
                     calibration: str | Path | None = None) -> Path:
    """Write the checkpoint as an int8 ncnn model folder (CPUs, ARM boards) by
    :mod:`mos_ros.quantize`; ``calibration`` as for :func:`export_onnx_int8`."""
    if calibration is None:
        raise ExportError("ncnn-int8 export needs a folder of calibration images")
    with tempfile.TemporaryDirectory(prefix="mos_export_") as work:
        fp32 = export_ncnn(checkpoint_path, Path(work) / "model.ncnn")
        return quantize_ncnn(fp32, out_dir, calibration)[0]


#: Export format name -> function(checkpoint_path, out_path, **options) -> written path.
EXPORTERS: dict[str, Callable[..., Path]] = {
    "onnx": export_onnx,
    "onnx-int8": export_onnx_int8,
    "ncnn": export_ncnn,
    "ncnn-int8": export_ncnn_int8,
}
#: Formats calibrated on images (they take ``calibration=``).
CALIBRATED_FORMATS = ("onnx-int8", "ncnn-int8")
#: What each format's file or folder name ends with, next to the checkpoint by default.
EXPORT_SUFFIXES: dict[str, str] = {"onnx": ".onnx", "onnx-int8": ".int8.onnx", "ncnn": ".ncnn",
                                   "ncnn-int8": ".int8.ncnn"}


def default_export_path(checkpoint_path: str | Path, fmt: str) -> Path:
    """Where ``fmt`` is written when no path is given: beside the checkpoint."""
    return Path(checkpoint_path).with_suffix(EXPORT_SUFFIXES[fmt])


def export_model(checkpoint_path: str | Path, fmt: str, out_path: str | Path | None = None,
                 **options) -> Path:
    """Export a checkpoint to format ``fmt`` (a key of :data:`EXPORTERS`) at ``out_path``
    (default :func:`default_export_path`); ``options`` go to the format's exporter."""
    if fmt not in EXPORTERS:
        raise ValueError(f"unknown export format {fmt!r}; known formats: "
                         f"{', '.join(sorted(EXPORTERS))}")
    out_path = out_path or default_export_path(checkpoint_path, fmt)
    return EXPORTERS[fmt](Path(checkpoint_path), Path(out_path), **options)
