"""``mos bench``: MOS latency per backend and input size, against the sequential baseline.

For every backend and input size the time of each stage of one detection is sampled
(pre-processing, network, post-processing) and summarised by its median and 90th percentile.
Then, at 640x480 on CPU, MOS is timed side by side with the sequential pipeline the paper
compares against (:mod:`mos_ros.bench.baseline`): each repeat runs MOS, the detector and the
per-face pose network on the same frame (all in torch, so one thread pool serves all and a
change in machine load hits both alike), and the ratio of the medians is reported for 1, 5,
10 and 20 faces.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from mos_ros.bench.machine import MachineInfo, describe_machine, usable_cores
from mos_ros.bench.timing import MS_PER_S, Stat, elapsed_ms

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


# --- report -------------------------------------------------------------------------------

@dataclass(frozen=True)
class StageStats:
    """Median/p90 of each stage of one detection and of their per-frame sum."""

    preprocess: Stat
    network: Stat
    postprocess: Stat
    total: Stat


@dataclass(frozen=True)
class BackendResult:
    """MOS on one backend at one input size."""

    backend: str
    input_hw: tuple[int, int]
    model_file: str
    device: str
    stages: StageStats
    #: Faces the model reported on the benchmark frame (post-processing cost grows with it).
    faces_found: int


@dataclass(frozen=True)
class Skipped:
    """A backend that could not be benchmarked, and why."""

    backend: str
    reason: str


@dataclass(frozen=True)
class BaselineRow:
    """MOS vs the sequential pipeline for one number of faces, all medians of one run."""

    faces: int
    mos: Stat
    detector: Stat
    pose_sequential: Stat
    pose_batched: Stat

    @property
    def pose_per_face_ms(self) -> float:
        """Median pose-stage time divided by the number of faces."""
        return self.pose_sequential.median_ms / self.faces

    @property
    def sequential_ms(self) -> float:
        """Detector median + pose stage median (one forward per face)."""
        return self.detector.median_ms + self.pose_sequential.median_ms

    @property
    def batched_ms(self) -> float:
        """Detector median + pose stage median (all faces in one forward)."""
        return self.detector.median_ms + self.pose_batched.median_ms

    @property
    def ratio(self) -> float:
        """How many times longer the sequential pipeline takes than MOS."""
        return self.sequential_ms / self.mos.median_ms

    @property
    def batched_ratio(self) -> float:
        """The same ratio for the batched pose variant."""
        return self.batched_ms / self.mos.median_ms


@dataclass(frozen=True)
class BaselineReport:
    """The side-by-side comparison of MOS with the detector + head-pose pipeline."""

    input_hw: tuple[int, int]
    mos_backend: str
    rows: tuple[BaselineRow, ...]
    repeats: int
    detector_anchors: int
    detector_faces_found: int


@dataclass(frozen=True)
class BenchReport:
    """Everything ``mos bench`` measured, with the machine it ran on."""

    machine: MachineInfo
    model_path: str
    frame: str
    repeats: int
    warmup: int
    results: tuple[BackendResult, ...]
    skipped: tuple[Skipped, ...]
    baseline: Optional[BaselineReport]


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
    from mos_ros.export import EXPORT_SUFFIXES

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
    from mos_ros.export import export_model

    out = workdir / (checkpoint.stem + fmt.suffixes[0])
    _LOG.info("exporting %s to %s for the %s backend", checkpoint, out, backend)
    return export_model(checkpoint, fmt.export_format, out)


def open_bench_backend(backend: str, model_file: Path, threads: int):
    """Open ``backend`` on CPU with ``threads`` threads (CPU keeps the baseline comparable)."""
    from mos_ros.backends import open_backend

    return open_backend(backend, model_file, threads=threads, **CPU_OPTIONS.get(backend, {}))


# --- timing -------------------------------------------------------------------------------

def synthetic_frame(height: int, width: int, seed: int = TEXTURE_SEED) -> np.ndarray:
    """A deterministic BGR frame with smooth texture (stands in for a camera image)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(1, height // TEXTURE_DOWNSCALE),
                                  max(1, width // TEXTURE_DOWNSCALE), 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _stage_timer(backend, image: np.ndarray, input_hw: tuple[int, int]):
    """A callable running one detection that returns (times_ms of the 3 stages, faces)."""
    from mos_ros.core.postprocess import decode_faces
    from mos_ros.core.preprocess import prepare

    meta = backend.meta

    def run_once() -> tuple[tuple[float, float, float], int]:
        start = time.perf_counter()
        batch, letterbox = prepare(image, input_hw, meta.input_mean)
        prepared = time.perf_counter()
        raw = backend.infer(batch)
        inferred = time.perf_counter()
        faces = decode_faces(raw, meta, letterbox)
        done = time.perf_counter()
        return ((prepared - start) * MS_PER_S, (inferred - prepared) * MS_PER_S,
                (done - inferred) * MS_PER_S), len(faces)

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


# --- text report --------------------------------------------------------------------------

def _wxh(input_hw: tuple[int, int]) -> str:
    """Sizes are printed width x height, as camera resolutions are."""
    return f"{input_hw[1]}x{input_hw[0]}"


def _cell(stat: Stat) -> str:
    return f"{stat.median_ms:8.1f} {stat.p90_ms:7.1f}"


def machine_lines(machine: MachineInfo) -> list[str]:
    """The machine and package versions, as the first lines of a report."""
    versions = ", ".join(f"{name} {version}" for name, version in machine.versions)
    return [f"machine: {machine.cpu_model}, {machine.logical_cores} cores usable, "
            f"torch threads {machine.torch_threads}, Python {machine.python}",
            f"versions: {versions}"]


def _backend_lines(report: BenchReport) -> list[str]:
    header = (f"{'backend':<12} {'input':>8} | {'pre ms':>8} {'p90':>7} | {'net ms':>8} "
              f"{'p90':>7} | {'post ms':>8} {'p90':>7} | {'total ms':>8} {'p90':>7} | faces")
    lines = [f"MOS latency per stage, median and p90 of {report.repeats} frames "
             f"after {report.warmup} warm-up (device: CPU)", header, "-" * len(header)]
    for r in report.results:
        s = r.stages
        lines.append(f"{r.backend:<12} {_wxh(r.input_hw):>8} | {_cell(s.preprocess)} | "
                     f"{_cell(s.network)} | {_cell(s.postprocess)} | {_cell(s.total)} | "
                     f"{r.faces_found:5d}")
    lines += [f"skipped {s.backend}: {s.reason}" for s in report.skipped]
    return lines


def _baseline_lines(base: BaselineReport) -> list[str]:
    header = (f"{'faces':>5} | {'MOS ms':>7} | {'detector':>8} | {'pose/face':>9} | "
              f"{'seq total':>9} | {'seq/MOS':>7} | {'batched':>8} | {'batch/MOS':>9}")
    lines = [
        f"MOS ({base.mos_backend}) vs sequential detector + head-pose network at "
        f"{_wxh(base.input_hw)}, medians of {base.repeats} interleaved repeats",
        "baseline: RetinaFace-MobileNet0.25 (random weights, "
        f"{base.detector_anchors} anchors, decoded by mos_ros.core) then a Hopenet-style "
        "ResNet-50 at 224x224 per face",
        f"faces are NOT detected: the random detector found {base.detector_faces_found}; the "
        "pose stage is fed that many crops from fixed boxes",
        "seq total = detector + one pose forward per face (crop, resize, normalise, forward); "
        "batched = all crops in one forward",
        header, "-" * len(header)]
    for row in base.rows:
        lines.append(
            f"{row.faces:5d} | {row.mos.median_ms:7.1f} | {row.detector.median_ms:8.1f} | "
            f"{row.pose_per_face_ms:9.1f} | {row.sequential_ms:9.1f} | {row.ratio:6.1f}x | "
            f"{row.batched_ms:8.1f} | {row.batched_ratio:8.1f}x")
    return lines


def format_report(report: BenchReport) -> str:
    """The report as plain text: machine, per-backend stage table, baseline comparison."""
    lines = machine_lines(report.machine)
    lines += [f"model: {report.model_path}", f"frame: {report.frame}", ""]
    lines += _backend_lines(report)
    if report.baseline is not None:
        lines += [""] + _baseline_lines(report.baseline)
    return "\n".join(lines)


# --- command line -------------------------------------------------------------------------

def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (e.g. 640x480) -> (height, width)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return height, width


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``mos bench``."""
    parser = argparse.ArgumentParser(prog="mos bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="checkpoint (.pt), .onnx or .ncnn; default: the shipped model")
    parser.add_argument("--backends", nargs="+", default=list(ALL_BACKENDS),
                        choices=list(MODEL_FORMATS), help="backends to time")
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=None,
                        help="network inputs, WIDTHxHEIGHT (default: 640x480 and 640x640; "
                             "640x480 with --compare)")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help="timed frames per backend and size")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="untimed frames")
    parser.add_argument("--threads", type=int, default=None,
                        help="inference threads (default: usable cores)")
    parser.add_argument("--baseline-repeats", type=int, default=DEFAULT_BASELINE_REPEATS,
                        help="repeats of the MOS vs sequential comparison")
    parser.add_argument("--faces", nargs="+", type=int, default=list(BASELINE_FACE_COUNTS),
                        help="face counts for the sequential baseline")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the sequential-pipeline comparison")
    parser.add_argument("--compare", nargs="+", type=Path, default=None, metavar="MODEL",
                        help="time these files side by side with --model (or the first of "
                             "them), as ratios per round; each with the backend of its suffix")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help="rounds of --compare")
    parser.add_argument("--image", type=Path, default=None,
                        help="BGR image to time on (default: a synthetic 640x480 frame)")
    return parser


def _read_image(path: Path) -> np.ndarray:
    from mos_ros.core.errors import ImageError

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"{path}: cannot read as an image")
    return image


def _run_compare(args: argparse.Namespace, image: Optional[np.ndarray]) -> int:
    """``mos bench --compare``: one side-by-side report per input size."""
    from mos_ros.bench.compare import compare_models, format_compare

    models = ([args.model] if args.model else []) + list(args.compare)
    for input_hw in args.sizes or [BASELINE_INPUT_HW]:
        try:
            report = compare_models(models, input_hw, rounds=args.rounds, repeats=args.repeats,
                                    warmup=args.warmup, threads=args.threads, image=image,
                                    frame_name=args.image.name if args.image else "")
        except ValueError as exc:
            raise SystemExit(f"mos bench --compare: {exc}") from None
        print(format_compare(report) + "\n")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``mos bench`` and print its report; returns the exit status."""
    argv = list(argv) if argv is not None else None
    if argv and argv[0] == "--":
        # Passed through by a parent command (``mos bench -- --model ...``).
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    image = _read_image(args.image) if args.image else None
    if args.compare:
        return _run_compare(args, image)
    if args.model is None:
        from mos_ros.resources import default_model_path

        args.model = default_model_path()
    if min(args.repeats, args.baseline_repeats, *args.faces) < 1 or args.warmup < 0:
        raise SystemExit("mos bench: repeats and face counts must be >= 1, warmup >= 0")
    args.sizes = args.sizes or list(DEFAULT_SIZES)
    report = run_benchmark(args.model, args.backends, args.sizes, args.repeats, args.warmup,
                           args.threads, image=image,
                           frame_name=args.image.name if args.image else "",
                           baseline=not args.no_baseline, baseline_repeats=args.baseline_repeats,
                           face_counts=args.faces)
    print(format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
