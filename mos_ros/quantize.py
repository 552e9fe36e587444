"""Int8 ONNX models for CPUs: static quantization calibrated on images, gated on detections.

An fp32 ONNX model of MOS is quantized by onnxruntime to QDQ form (weights int8 per output
channel, activations uint8 with ranges observed on calibration images). Weights use 7 of
the 8 bits (``reduce_range``): x86 CPUs without VNNI multiply uint8 by int8 in 16-bit pairs
that full-range weights can saturate, and one file must serve every CPU a robot may have. Quantization error
cannot be held to the fp32 export's 1e-3, so the gate is what a user sees: on images kept
out of calibration, the int8 model must find at least :data:`MIN_AGREEMENT` of the faces
the fp32 model finds (IoU >= :data:`AGREEMENT_IOU`, default decode settings).
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from mos_ros.core.errors import ExportError
from mos_ros.core.nms import iou_matrix

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
    from mos_ros.core.image_io import read_image
    from mos_ros.core.preprocess import prepare

    for path in paths:
        yield prepare(read_image(path), INPUT_SIZE, tuple(mean))[0]


def detection_agreement(reference: Sequence[Sequence[np.ndarray]],
                        candidate: Sequence[Sequence[np.ndarray]],
                        iou: float = AGREEMENT_IOU) -> float:
    """Share of the reference boxes (per image, x1 y1 x2 y2) that a candidate box of the
    same image overlaps by at least ``iou``; 1.0 when the reference has none."""
    found = total = 0
    for want, got in zip(reference, candidate, strict=True):
        want, got = np.reshape(want, (-1, 4)), np.reshape(got, (-1, 4))
        total += len(want)
        if len(want) and len(got):
            found += int((iou_matrix(want, got).max(axis=1) >= iou).sum())
    return found / total if total else 1.0


def _face_boxes(model_path: Path, paths: Sequence[Path]) -> list[list[np.ndarray]]:
    from mos_ros.core.image_io import read_image
    from mos_ros.detector import FaceDetector

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


def quantize_onnx(fp32_path: str | Path, out_path: str | Path,
                  calibration_dir: str | Path) -> tuple[Path, float]:
    """Write the int8 form of ``fp32_path`` at ``out_path``; returns it and the agreement.

    The first :data:`CALIBRATION_IMAGES` of the images spread over ``calibration_dir`` set
    the activation ranges, the next :data:`CHECK_IMAGES` check the result. ExportError (and
    nothing written) if there are too few images or the int8 model agrees too little.
    """
    from mos_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    images = image_files(calibration_dir, CALIBRATION_IMAGES + CHECK_IMAGES)
    calibration, check = images[:CALIBRATION_IMAGES], images[CALIBRATION_IMAGES:]
    mean = OnnxRuntimeBackend(fp32_path).meta.input_mean
    with tempfile.TemporaryDirectory(prefix="mos_int8_") as work:
        staged = Path(work) / "model.int8.onnx"
        _quantize_static(fp32_path, staged, calibration, mean)
        _copy_metadata(fp32_path, staged)
        agreement = detection_agreement(_face_boxes(fp32_path, check),
                                        _face_boxes(staged, check))
        if agreement < MIN_AGREEMENT:
            raise ExportError(
                f"{out_path}: the int8 model finds {agreement:.0%} of the faces the fp32 model "
                f"finds on {len(check)} check images (at least {MIN_AGREEMENT:.0%} needed); "
                "calibrate on images more like the deployment's")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), out_path)
    _LOG.info("quantized %s to %s (finds %.0f%% of the fp32 model's faces on %d images)",
              fp32_path, out_path, 100 * agreement, len(check))
    return out_path, agreement
