"""Wall-clock sampling and robust summaries (median, p90) for the benchmarks."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

MS_PER_S = 1000.0
#: The upper percentile reported next to the median: how bad the slow frames get.
TAIL_PERCENTILE = 90


@dataclass(frozen=True)
class Stat:
    """Median and 90th percentile of repeated timings, in milliseconds."""

    median_ms: float
    p90_ms: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Stat:
        """Summarise timings; at least one sample is required."""
        if len(samples_ms) == 0:
            raise ValueError("cannot summarise an empty list of timings")
        values = np.asarray(samples_ms, dtype=np.float64)
        return cls(float(np.median(values)), float(np.percentile(values, TAIL_PERCENTILE)))


def elapsed_ms(start: float) -> float:
    """Milliseconds since ``start`` (a :func:`time.perf_counter` reading)."""
    return (time.perf_counter() - start) * MS_PER_S
