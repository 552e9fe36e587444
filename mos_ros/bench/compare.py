"""``mos bench --compare``: several model files timed side by side, as ratios to the first.

On a shared machine a millisecond figure depends on the load of the moment; a ratio of two
files timed in the same minute does much less. Each round times every file in turn (warm-up,
then ``repeats`` frames; one file at a time, see :func:`~mos_ros.bench.run.time_backend_at`),
and each file's median total (pre + network + post) is divided by the first file's median of
the same round. The report gives the per-round figures and the median over rounds.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from mos_ros.bench.machine import MachineInfo, describe_machine, usable_cores
from mos_ros.bench.report import machine_lines
from mos_ros.bench.run import (
    FRAME_HW, OpenedBackend, open_bench_backend, synthetic_frame, time_backend_at)
from mos_ros.detector import backend_for_path


@dataclass(frozen=True)
class ModelTimes:
    """One file's median total time per round and its ratio to the first file's."""

    model: str
    backend: str
    round_ms: tuple[float, ...]
    ratios: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        """Median over rounds of the per-round medians."""
        return float(np.median(self.round_ms))

    @property
    def median_ratio(self) -> float:
        """Median over rounds of the ratio to the first file."""
        return float(np.median(self.ratios))


@dataclass(frozen=True)
class CompareReport:
    """Every file's times, the first being the reference of the ratios."""

    machine: MachineInfo
    input_hw: tuple[int, int]
    frame: str
    repeats: int
    models: tuple[ModelTimes, ...]


def _open(model: Path, threads: int) -> OpenedBackend:
    backend = backend_for_path(model)
    return OpenedBackend(backend, model, open_bench_backend(backend, model, threads))


def compare_models(models: Sequence[Path], input_hw: tuple[int, int], *, rounds: int,
                   repeats: int, warmup: int, threads: Optional[int] = None,
                   image: Optional[np.ndarray] = None, frame_name: str = "") -> CompareReport:
    """Time ``models`` (each with the backend its suffix names, on CPU) round by round."""
    if len(models) < 2:
        raise ValueError("compare needs at least two model files")
    if min(rounds, repeats) < 1 or warmup < 0:
        raise ValueError("rounds and repeats must be >= 1, warmup >= 0")
    threads = threads or usable_cores()
    image = image if image is not None else synthetic_frame(*FRAME_HW)
    opened = [_open(Path(model), threads) for model in models]
    totals = np.zeros((rounds, len(opened)))
    for round_index in range(rounds):
        for column, backend in enumerate(opened):
            result = time_backend_at(backend, image, input_hw, repeats, warmup)
            totals[round_index, column] = result.stages.total.median_ms
    ratios = totals / totals[:, :1]
    times = tuple(ModelTimes(str(b.model_file), b.name, tuple(totals[:, i]), tuple(ratios[:, i]))
                  for i, b in enumerate(opened))
    return CompareReport(describe_machine(threads), tuple(input_hw),
                         frame_name or f"synthetic {FRAME_HW[1]}x{FRAME_HW[0]}", repeats, times)


def format_compare(report: CompareReport) -> str:
    """The report as plain text, one row per file."""
    height, width = report.input_hw
    rounds = len(report.models[0].round_ms)
    lines = machine_lines(report.machine) + [
        f"frame: {report.frame}, input {width}x{height}, {rounds} round(s) of "
        f"{report.repeats} frames per file; total ms (pre + network + post), median per round",
        ""]
    round_names = " ".join(f"{'r' + str(i + 1):>7}" for i in range(rounds))
    header = (f"{'model':<44} {'backend':<12} | {round_names} | {'median':>7} | "
              f"{'ratio':>6}  (per round)")
    lines += [header, "-" * len(header)]
    for times in report.models:
        name = times.model if len(times.model) <= 44 else "..." + times.model[-41:]
        per_round = " ".join(f"{ms:7.1f}" for ms in times.round_ms)
        ratios = " ".join(f"{r:.2f}" for r in times.ratios)
        lines.append(f"{name:<44} {times.backend:<12} | {per_round} | {times.median_ms:7.1f} "
                     f"| {times.median_ratio:5.2f}x  ({ratios})")
    return "\n".join(lines)
