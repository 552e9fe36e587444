"""Int8 models for CPUs (ONNX, ncnn): static quantization calibrated on images, gated on
the faces found.

An fp32 ONNX model of MOS is quantized by onnxruntime to QDQ form (weights int8 per output
channel, activations uint8 with ranges observed on calibration images). Weights use 7 of
the 8 bits (``reduce_range``): x86 CPUs without VNNI multiply uint8 by int8 in 16-bit pairs
that full-range weights can saturate, and one file must serve every CPU a robot may have.

Quantization error cannot be held to the fp32 export's 1e-3, so the gate is what a user
sees: on images kept out of calibration, the int8 model must find at least
:data:`MIN_AGREEMENT` of the faces the fp32 model finds (IoU >= :data:`AGREEMENT_IOU`,
default decode settings).

An fp32 ncnn model is rewritten the way ncnn's own int8 tools would (int8 weights per output
channel, one scale per layer input from the calibration images, int8 handed on between
consecutive convolutions) and passes the same gate.

Heavy libraries are imported inside the functions that use them: onnx (also needed by
onnxruntime.quantization) and ncnn.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mos_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from mos_ros.core.errors import ExportError
from mos_ros.core.image_io import read_image
from mos_ros.core.preprocess import prepare
from mos_ros.detector import FaceDetector
from mos_ros.evaluate.metrics import covered_fraction

_LOG = logging.getLogger(__name__)

#: Images whose activation ranges set the int8 scales.
CALIBRATION_IMAGES = 24
#: Further images on which the int8 model is checked against the fp32 one.
CHECK_IMAGES = 8
#: Share of the fp32 model's faces the int8 model must also find.
MIN_AGREEMENT = 0.9
AGREEMENT_IOU = 0.5
#: Network input (long side) of calibration and check, the detector's default.
INPUT_SIZE = 640
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def image_files(folder: str | Path, count: int) -> list[Path]:
    """``count`` image files spread evenly over the sorted images below ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"calibration images: {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < count:
        raise ExportError(f"calibration images: {folder} holds {len(files)} images, "
                          f"{count} are needed")
    picks = np.linspace(0, len(files) - 1, count).round().astype(int)
    return [files[i] for i in picks]


def _network_inputs(paths: Sequence[Path], mean: Sequence[float]) -> Iterator[np.ndarray]:
    """Each image as the detector feeds it to the network."""
    for path in paths:
        yield prepare(read_image(path), INPUT_SIZE, tuple(mean))[0]


def detection_agreement(reference: Sequence[Sequence[np.ndarray]],
                        candidate: Sequence[Sequence[np.ndarray]],
                        iou: float = AGREEMENT_IOU) -> float:
    """Share of the reference boxes (per image, x1 y1 x2 y2) that a candidate box of the
    same image overlaps by at least ``iou``; 1.0 when the reference has none."""
    found = total = 0
    for want, got in zip(reference, candidate, strict=True):
        covered, count = covered_fraction(want, got, iou)
        found, total = found + covered, total + count
    return found / total if total else 1.0


def _face_boxes(model_path: Path, paths: Sequence[Path]) -> list[list[np.ndarray]]:
    detector = FaceDetector.open(model_path, input_size=INPUT_SIZE)
    return [[np.asarray(f.box) for f in detector.detect(read_image(p))] for p in paths]


def _quantize_static(fp32_path: Path, out_path: Path, calibration: Sequence[Path],
                     mean: Sequence[float]) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader, QuantFormat, QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._inputs = _network_inputs(calibration, mean)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._inputs, None)
            return None if batch is None else {"input": batch}

    with tempfile.TemporaryDirectory(prefix="mos_int8_") as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def _copy_metadata(source: Path, target: Path) -> None:
    """Carry the fp32 model's metadata (the ModelMeta JSON) over to the int8 file."""
    import onnx

    proto, meta = onnx.load(str(target)), onnx.load(str(source)).metadata_props
    del proto.metadata_props[:]
    proto.metadata_props.extend(meta)
    proto.doc_string = "MOS face detector, int8 (QDQ): boxes, five landmarks and head pose"
    onnx.save(proto, str(target))


def _quantized(fp32: Path, out: Path, calibration_dir: str | Path,
               write_int8: Callable[[Sequence[Path], Path], None]) -> tuple[Path, float]:
    """Calibrate, check and place an int8 model; returns its path and the agreement.

    ``write_int8(calibration_images, path)`` writes the int8 form of ``fp32`` at ``path``; it
    is then run next to ``fp32`` on the check images and moved to ``out`` only if it passes.
    """
    images = image_files(calibration_dir, CALIBRATION_IMAGES + CHECK_IMAGES)
    calibration, check = images[:CALIBRATION_IMAGES], images[CALIBRATION_IMAGES:]
    with tempfile.TemporaryDirectory(prefix="mos_int8_") as work:
        staged = Path(work) / out.name
        write_int8(calibration, staged)
        agreement = detection_agreement(_face_boxes(fp32, check), _face_boxes(staged, check))
        if agreement < MIN_AGREEMENT:
            raise ExportError(
                f"{out}: the int8 model finds {agreement:.0%} of the faces the fp32 model "
                f"finds on {len(check)} check images (at least {MIN_AGREEMENT:.0%} needed); "
                "calibrate on images more like the deployment's")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_dir():
            shutil.rmtree(out)
        shutil.move(str(staged), out)
    _LOG.info("quantized %s to %s (finds %.0f%% of the fp32 model's faces on %d images)",
              fp32, out, 100 * agreement, len(check))
    return out, agreement


def quantize_onnx(fp32_path: str | Path, out_path: str | Path,
                  calibration_dir: str | Path) -> tuple[Path, float]:
    """Write the int8 form of ``fp32_path`` at ``out_path``; returns it and the agreement.

    The first :data:`CALIBRATION_IMAGES` of the images spread over ``calibration_dir`` set
    the activation ranges, the next :data:`CHECK_IMAGES` check the result. ExportError (and
    nothing written) if there are too few images or the int8 model agrees too little.
    """
    fp32_path = Path(fp32_path)
    mean = OnnxRuntimeBackend(fp32_path).meta.input_mean

    def write_int8(calibration: Sequence[Path], staged: Path) -> None:
        _quantize_static(fp32_path, staged, calibration, mean)
        _copy_metadata(fp32_path, staged)

    return _quantized(fp32_path, Path(out_path), calibration_dir, write_int8)


# --- ncnn -----------------------------------------------------------------------------------
#
# ncnn runs a Convolution / ConvolutionDepthWise layer in int8 when its param line carries
# ``8=`` (int8_scale_term) and its weights in the .bin are int8, followed by the weight scales
# and the scale of its input blob. pnnx writes every MOS weight as such a layer (BN folded,
# ReLU6 as the layer's activation), so the rewrite below touches only those two layer types.

_NCNN_INT8_TAG = 0x000D4B38
_NCNN_FP32_TAG = 0
_CONV_KINDS = {"Convolution": 2, "ConvolutionDepthWise": 1}   # kind -> int8_scale_term
INT8_MAX = 127
#: The |activation| percentile that sets an input blob's int8 range (the rest clips).
ACTIVATION_PERCENTILE = 99.99


@dataclass(frozen=True)
class _ConvLayer:
    """What the int8 rewrite needs of one convolution line of an ncnn param file."""

    line: int
    kind: str
    bottom: str
    top: str
    num_output: int
    weight_size: int
    bias: bool
    group: int

    @property
    def scale_count(self) -> int:
        """Weight scales: one per output channel, or one per group for depthwise."""
        return self.group if self.kind == "ConvolutionDepthWise" else self.num_output


def _conv_layers(lines: Sequence[str]) -> list[_ConvLayer]:
    """The convolution layers of a param file's lines, in file (and weight) order."""
    layers = []
    for index, line in enumerate(lines[2:], start=2):
        fields = line.split()
        if not fields or fields[0] not in _CONV_KINDS:
            continue
        inputs, outputs = int(fields[2]), int(fields[3])
        params = dict(item.split("=", 1) for item in fields[4 + inputs + outputs:])
        if "8" in params:
            raise ExportError(f"ncnn layer {fields[1]} is already quantized")
        layers.append(_ConvLayer(index, fields[0], fields[4], fields[4 + inputs],
                                 int(params["0"]), int(params["6"]),
                                 params.get("5", "0") == "1", int(params.get("7", "1"))))
    return layers


def _read_fp32_weights(weights: bytes, layers: Sequence[_ConvLayer]
                       ) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weights, bias) of each layer from an fp32 .bin holding exactly these layers."""
    arrays, offset = [], 0
    for layer in layers:
        (tag,) = np.frombuffer(weights, np.uint32, 1, offset)
        if tag != _NCNN_FP32_TAG:
            raise ExportError(f"ncnn weights of line {layer.line} are not fp32 (tag {tag:#x})")
        weight = np.frombuffer(weights, np.float32, layer.weight_size, offset + 4)
        offset += 4 + 4 * layer.weight_size
        bias = None
        if layer.bias:
            bias = np.frombuffer(weights, np.float32, layer.num_output, offset)
            offset += 4 * layer.num_output
        arrays.append((weight, bias))
    if offset != len(weights):
        raise ExportError("the ncnn model has weights outside its convolutions; only "
                          "Convolution and ConvolutionDepthWise weights can be quantized")
    return arrays


def _int8_scales(absmax: np.ndarray) -> np.ndarray:
    """Scales mapping |x| <= absmax onto [-127, 127]; 1 where absmax is 0 (all zeros)."""
    absmax = np.asarray(absmax, np.float64)
    return np.where(absmax > 0, INT8_MAX / np.maximum(absmax, 1e-30), 1.0).astype(np.float32)


def _activation_scales(fp32_dir: Path, layers: Sequence[_ConvLayer],
                       calibration: Sequence[Path], mean: Sequence[float],
                       input_blob: str) -> dict[str, float]:
    """Input blob of each layer -> int8 scale, from the largest per-image |activation|
    percentile."""
    import ncnn

    from mos_ros.backends.ncnn_backend import model_files

    param, weights, _ = model_files(fp32_dir)
    net = ncnn.Net()
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    net.load_param(str(param))
    net.load_model(str(weights))
    blobs = sorted({layer.bottom for layer in layers})
    peaks = dict.fromkeys(blobs, 0.0)
    for batch in _network_inputs(calibration, mean):
        extractor = net.create_extractor()
        extractor.set_light_mode(False)   # keep every intermediate blob for extraction
        extractor.input(input_blob, ncnn.Mat(np.ascontiguousarray(batch[0])))
        for blob in blobs:
            status, mat = extractor.extract(blob)
            if status != 0:
                raise ExportError(f"ncnn could not compute blob {blob!r} while calibrating")
            values = np.abs(np.array(mat, dtype=np.float32))
            peaks[blob] = max(peaks[blob], float(np.percentile(values, ACTIVATION_PERCENTILE)))
    return {blob: float(_int8_scales(peak)) for blob, peak in peaks.items()}


def _consumers(lines: Sequence[str]) -> dict[str, int]:
    """Blob name -> how many layers read it."""
    counts: dict[str, int] = {}
    for line in lines[2:]:
        fields = line.split()
        if len(fields) > 4:
            for blob in fields[4:4 + int(fields[2])]:
                counts[blob] = counts.get(blob, 0) + 1
    return counts


def _int8_layer_bytes(layer: _ConvLayer, weight: np.ndarray, bias: np.ndarray | None,
                      input_scale: float, output_scale: float | None) -> bytes:
    """One layer's weights as ncnn loads them for int8 inference."""
    rows = weight.reshape(layer.scale_count, -1)
    scales = _int8_scales(np.abs(rows).max(axis=1))
    quantized = np.clip(np.round(rows * scales[:, None]), -INT8_MAX, INT8_MAX).astype(np.int8)
    padded = np.zeros(-(-quantized.size // 4) * 4, np.int8)
    padded[:quantized.size] = quantized.ravel()
    parts = [np.uint32(_NCNN_INT8_TAG).tobytes(), padded.tobytes()]
    if bias is not None:
        parts.append(bias.astype(np.float32).tobytes())
    parts += [scales.tobytes(), np.float32(input_scale).tobytes()]
    if output_scale is not None:
        parts.append(np.float32(output_scale).tobytes())
    return b"".join(parts)


def _write_int8_ncnn(fp32_dir: Path, out_dir: Path, scales: dict[str, float]) -> None:
    """Write the int8 param/bin (and the unchanged meta.json) of ``fp32_dir`` into ``out_dir``."""
    from mos_ros.backends.ncnn_backend import META_FILE, model_files

    param, weights, _ = model_files(fp32_dir)
    lines = param.read_text().splitlines()
    layers = _conv_layers(lines)
    arrays = _read_fp32_weights(weights.read_bytes(), layers)
    # A convolution whose output only feeds another convolution hands it int8 directly.
    consumers, bottoms = _consumers(lines), {layer.bottom for layer in layers}
    chained = {layer.top: scales[layer.top] for layer in layers
               if consumers.get(layer.top) == 1 and layer.top in bottoms}
    blob = b"".join(_int8_layer_bytes(layer, weight, bias, scales[layer.bottom],
                                      chained.get(layer.top))
                    for layer, (weight, bias) in zip(layers, arrays))
    for layer in layers:
        term = _CONV_KINDS[layer.kind] + (100 if layer.top in chained else 0)
        lines[layer.line] += f" 8={term}"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / param.name).write_text("\n".join(lines) + "\n")
    (out_dir / weights.name).write_bytes(blob)
    shutil.copyfile(fp32_dir / META_FILE, out_dir / META_FILE)


def quantize_ncnn(fp32_dir: str | Path, out_dir: str | Path,
                  calibration_dir: str | Path) -> tuple[Path, float]:
    """Write the int8 form of the ncnn model folder ``fp32_dir`` at ``out_dir``; returns it
    and the agreement. Calibration, check and gate as :func:`quantize_onnx`."""
    from mos_ros.backends.ncnn_backend import model_files, read_meta_json

    fp32_dir = Path(fp32_dir)
    param, _, meta_file = model_files(fp32_dir)
    meta, input_blob, _ = read_meta_json(meta_file)
    layers = _conv_layers(param.read_text().splitlines())

    def write_int8(calibration: Sequence[Path], staged: Path) -> None:
        scales = _activation_scales(fp32_dir, layers, calibration, meta.input_mean, input_blob)
        _write_int8_ncnn(fp32_dir, staged, scales)

    return _quantized(fp32_dir, Path(out_dir), calibration_dir, write_int8)
