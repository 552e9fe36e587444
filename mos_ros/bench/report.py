"""What ``mos bench`` measured, and the plain-text report of it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mos_ros.bench.machine import MachineInfo
from mos_ros.bench.timing import Stat


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
