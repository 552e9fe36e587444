"""``mos bench``: MOS latency per backend and input size, against the sequential baseline.

For every backend and input size the time of each stage of one detection is sampled
(pre-processing, network, post-processing) and summarised by its median and 90th percentile.
Then, at 640x480 on CPU, MOS is timed side by side with the sequential pipeline the paper
compares against (:mod:`mos_ros.bench.baseline`): each repeat runs MOS, the detector and the
per-face pose network on the same frame (all in torch, so one thread pool serves all and a
change in machine load hits both alike), and the ratio of the medians is reported for 1, 5,
10 and 20 faces.

torch, and the baseline built on it, are imported inside the functions that run them.
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from mos_ros.backends import open_backend
from mos_ros.bench.machine import describe_machine, usable_cores
from mos_ros.bench.report import (
    BackendResult, BaselineReport, BaselineRow, BenchReport, Skipped, StageStats)
from mos_ros.bench.timing import Stat, elapsed_ms
from mos_ros.core.postprocess import DecodeSettings
from mos_ros.detector import FaceDetector
from mos_ros.export import EXPORT_SUFFIXES, export_model

_LOG = logging.getLogger(__name__)

ALL_BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "ncnn")
#: Network input sizes as (height, width): the paper's 640x480 and the square 640x640.
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((480, 640), (640, 640))
#: The camera frame every run feeds (height, width); larger inputs letterbox it.
FRAME_HW: tuple[int, int] = (480, 640)
BASELINE_FACE_COUNTS: tuple[int, ...] = (1, 5, 10, 20)
#: The size the paper's Table 4 times at, and where the baseline comparison runs.
BASELINE_INPUT_HW: tuple[int, int] = (480, 640)
DEFAULT_REPEATS = 30
DEFAULT_WARMUP = 3
DEFAULT_BASELINE_REPEATS = 10
#: Rounds of ``--compare``: every file is timed once per round.
DEFAULT_ROUNDS = 3
#: The synthetic frame is random noise at this fraction of the frame size, upsampled smoothly.
TEXTURE_DOWNSCALE = 8
TEXTURE_SEED = 0
STEP_ORDER_SEED = 0
#: Suffixes of torch checkpoints (the torch backend's model files).
CHECKPOINT_SUFFIXES: tuple[str, ...] = (".pt", ".pth")


# --- model files per backend --------------------------------------------------------------

@dataclass(frozen=True)
class ModelFormat:
    """How a backend's model file is recognised and, from a checkpoint, produced."""

    suffixes: tuple[str, ...]
    #: Format name for :func:`mos_ros.export.export_model`; ``None``: the checkpoint itself.
    export_format: Optional[str]


#: Backend options that pin a backend to the CPU (the baseline runs there too).
CPU_OPTIONS: dict[str, dict] = {
    "torch": {"device": "cpu"},
    "onnxruntime": {"providers": ("cpu",)},
    "ncnn": {"use_vulkan": False},
}

MODEL_FORMATS: dict[str, ModelFormat] = {
    "torch": ModelFormat(CHECKPOINT_SUFFIXES, None),
    "onnxruntime": ModelFormat((".onnx",), "onnx"),
    "ncnn": ModelFormat((".ncnn",), "ncnn"),
}


def _model_suffixes() -> list[str]:
    """Every model file suffix, longest first (``.int8.onnx`` before ``.onnx``)."""
    suffixes = {s for fmt in MODEL_FORMATS.values() for s in fmt.suffixes}
    return sorted(suffixes | set(EXPORT_SUFFIXES.values()), key=len, reverse=True)


def _sibling_files(model_path: Path) -> list[Path]:
    """``model_path`` and the files beside it with the same name and another model suffix
    (``m.int8.onnx`` has the siblings ``m.pt``, ``m.onnx``, ``m.ncnn``); plain suffixes
    come before compound ones, so ``m.pt`` finds ``m.onnx`` before ``m.int8.onnx``."""
    suffixes = _model_suffixes()
    name = model_path.name
    ending = next((s for s in suffixes if name.lower().endswith(s)), model_path.suffix)
    base = name[:len(name) - len(ending)]
    siblings = [model_path.with_name(base + s)
                for s in sorted(suffixes, key=lambda s: (s.count("."), s))]
    return [model_path] + [p for p in siblings if p != model_path and p.exists()]


def find_checkpoint(model_path: Path) -> Optional[Path]:
    """The torch checkpoint ``model_path`` is or has beside it, if any."""
    for path in _sibling_files(model_path):
        if path.suffix.lower() in CHECKPOINT_SUFFIXES and path.is_file():
            return path
    return None


def model_file_for(backend: str, model_path: Path, workdir: Path) -> Path:
    """The file ``backend`` should load: the given model, a sibling, or a fresh export.

    Raises ``FileNotFoundError`` with the reason when there is none and none can be made.
    """
    fmt = MODEL_FORMATS[backend]
    for path in _sibling_files(model_path):
        if path.suffix.lower() in fmt.suffixes and path.exists():
            return path
    checkpoint = find_checkpoint(model_path)
    if fmt.export_format is None or checkpoint is None:
        raise FileNotFoundError(
            f"no {'/'.join(fmt.suffixes)} model beside {model_path} and no checkpoint "
            "to export one from")
    out = workdir / (checkpoint.stem + fmt.suffixes[0])
    _LOG.info("exporting %s to %s for the %s backend", checkpoint, out, backend)
    return export_model(checkpoint, fmt.export_format, out)


def open_bench_backend(backend: str, model_file: Path, threads: int):
    """Open ``backend`` on CPU with ``threads`` threads (CPU keeps the baseline comparable)."""
    return open_backend(backend, model_file, threads=threads, **CPU_OPTIONS.get(backend, {}))


# --- timing -------------------------------------------------------------------------------

def synthetic_frame(height: int, width: int, seed: int = TEXTURE_SEED) -> np.ndarray:
    """A deterministic BGR frame with smooth texture (stands in for a camera image)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(1, height // TEXTURE_DOWNSCALE),
                                  max(1, width // TEXTURE_DOWNSCALE), 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _stage_timer(backend, image: np.ndarray, input_hw: tuple[int, int]):
    """A callable running one detection, as the nodes run it, that returns (times_ms of the
    3 stages, number of faces)."""
    detector = FaceDetector(backend, DecodeSettings(), input_hw)

    def run_once() -> tuple[tuple[float, float, float], int]:
        faces, times = detector.detect_timed(image)
        return (times.preprocess_ms, times.network_ms, times.postprocess_ms), len(faces)

    return run_once


@dataclass(frozen=True)
class OpenedBackend:
    """A backend ready to time, with the file it loaded."""

    name: str
    model_file: Path
    runtime: object


def open_backends(backends: Sequence[str], model_path: Path, workdir: Path,
                  threads: int) -> tuple[list[OpenedBackend], list[Skipped]]:
    """Open every backend that has (or can get) a model file; the others are skipped."""
    opened, skipped = [], []
    for backend in backends:
        try:
            model_file = model_file_for(backend, model_path, workdir)
            runtime = open_bench_backend(backend, model_file, threads)
        except Exception as exc:  # noqa: BLE001 - a backend failing must not end the run
            _LOG.warning("skipping backend %s: %s", backend, exc)
            skipped.append(Skipped(backend, f"{type(exc).__name__}: {exc}"))
            continue
        opened.append(OpenedBackend(backend, model_file, runtime))
    return opened, skipped


def _summarise(samples: list[tuple[float, float, float]]) -> StageStats:
    """Stage statistics; the total is summarised per frame, not as a sum of medians."""
    columns = np.asarray(samples)
    stages = [Stat.of(columns[:, i]) for i in range(columns.shape[1])]
    return StageStats(*stages, total=Stat.of(columns.sum(axis=1)))


def time_backend_at(opened: OpenedBackend, image: np.ndarray, input_hw: tuple[int, int],
                    repeats: int, warmup: int) -> BackendResult:
    """Time one backend at one input size: ``warmup`` untimed, then ``repeats`` timed frames.

    Backends run one after the other, not interleaved: onnxruntime, ncnn and torch keep their
    worker threads spinning for a while after each call, which would slow whichever runtime
    ran next in the same process.
    """
    run_once = _stage_timer(opened.runtime, image, input_hw)
    for _ in range(warmup):
        run_once()
    samples, faces = [], 0
    for _ in range(repeats):
        times, faces = run_once()
        samples.append(times)
    return BackendResult(opened.name, tuple(input_hw), str(opened.model_file),
                         opened.runtime.device, _summarise(samples), faces)


# --- the sequential baseline --------------------------------------------------------------

def _timed(func: Callable[[], object]) -> float:
    """Milliseconds one call of ``func`` takes."""
    start = time.perf_counter()
    func()
    return elapsed_ms(start)


def compare_with_baseline(mos_runtime, mos_backend: str, image: np.ndarray,
                          input_hw: tuple[int, int], face_counts: Sequence[int],
                          repeats: int, warmup: int) -> BaselineReport:
    """Time MOS, the baseline detector and its pose stage interleaved, frame by frame.

    Every repeat runs, on the same frame and in a shuffled order: one MOS detection, one
    baseline detection, and for each face count the pose stage on that many fixed boxes
    (per-face and batched).
    """
    from mos_ros.bench.baseline import BaselineDetector, PoseEstimator, fixed_face_boxes

    mos_once = _stage_timer(mos_runtime, image, input_hw)
    detector, pose = BaselineDetector(input_size=input_hw), PoseEstimator()
    boxes = {n: fixed_face_boxes(n, image.shape[:2]) for n in face_counts}
    steps: dict[str, Callable[[], object]] = {
        "mos": mos_once, "detector": lambda: detector.detect_boxes(image)}
    for n in face_counts:
        steps[f"seq{n}"] = lambda b=boxes[n]: pose.estimate(image, b)
        steps[f"batch{n}"] = lambda b=boxes[n]: pose.estimate_batched(image, b)
    for _ in range(warmup):
        for step in steps.values():
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    order = np.random.default_rng(STEP_ORDER_SEED)
    for _ in range(repeats):
        # A fresh order each repeat: no step always follows the heavy 20-face batch.
        for name in order.permutation(list(steps)):
            samples[name].append(_timed(steps[name]))
    stat = {name: Stat.of(values) for name, values in samples.items()}
    rows = tuple(BaselineRow(n, stat["mos"], stat["detector"], stat[f"seq{n}"],
                             stat[f"batch{n}"]) for n in face_counts)
    return BaselineReport(tuple(input_hw), mos_backend, rows, repeats,
                          detector.expected_anchors(*input_hw),
                          len(detector.detect_boxes(image)))


# --- the whole run ------------------------------------------------------------------------

def run_benchmark(model_path: str | Path, backends: Sequence[str] = ALL_BACKENDS,
                  sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
                  repeats: int = DEFAULT_REPEATS, warmup: int = DEFAULT_WARMUP,
                  threads: Optional[int] = None, *, image: Optional[np.ndarray] = None,
                  frame_name: str = "", baseline: bool = True,
                  baseline_repeats: int = DEFAULT_BASELINE_REPEATS,
                  face_counts: Sequence[int] = BASELINE_FACE_COUNTS,
                  baseline_input_hw: tuple[int, int] = BASELINE_INPUT_HW) -> BenchReport:
    """Benchmark ``model_path`` on each backend and size, then against the baseline.

    ``sizes`` are network inputs as (height, width); ``image`` (BGR) defaults to a synthetic
    640x480 frame. Backends without a model file are exported from the checkpoint into a
    temporary folder, or skipped with the reason. ``threads`` defaults to the usable cores.
    """
    import torch

    unknown = sorted(set(backends) - set(MODEL_FORMATS))
    if unknown:
        raise ValueError(f"unknown backend(s) {unknown}; known: {', '.join(MODEL_FORMATS)}")
    if image is None:
        image, frame_name = synthetic_frame(*FRAME_HW), frame_name or "synthetic texture"
    threads = threads or usable_cores()
    torch.set_num_threads(threads)
    model_path = Path(model_path)
    with tempfile.TemporaryDirectory(prefix="mos_bench_") as work:
        opened, skipped = open_backends(backends, model_path, Path(work), threads)
        results = [time_backend_at(backend, image, input_hw, repeats, warmup)
                   for backend in opened for input_hw in sizes]
        comparison = None
        if baseline and opened:
            mos = next((b for b in opened if b.name == "torch"), opened[0])
            comparison = compare_with_baseline(mos.runtime, mos.name, image,
                                               baseline_input_hw, face_counts,
                                               baseline_repeats, min(warmup, 1))
    frame = f"{frame_name} ({image.shape[1]}x{image.shape[0]})"
    return BenchReport(describe_machine(torch.get_num_threads()), str(model_path), frame,
                       repeats, warmup, tuple(results), tuple(skipped), comparison)
