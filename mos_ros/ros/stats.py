"""Frame bookkeeping for a node, without ROS: rates, recent latency, drops, bad input.

Thread-safe: a subscription callback, a worker thread and a diagnostics timer may call it at
the same time. Time comes from an injectable clock so tests can drive it.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Callable

import numpy as np

#: Seconds of history the input and output rates are measured over.
RATE_WINDOW_S = 5.0
#: Inference latencies kept for the median.
LATENCY_SAMPLES = 50
MS_PER_S = 1000.0


class RateMeter:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = RATE_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()

    def tick(self) -> None:
        """Record one event now."""
        self._times.append(self._clock())
        self._expire()

    def rate(self) -> float:
        """Events per second in the window (0 with fewer than two events)."""
        self._expire()
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def count(self) -> int:
        """Events in the window."""
        self._expire()
        return len(self._times)

    def _expire(self) -> None:
        oldest = self._clock() - self._window_s
        while self._times and self._times[0] < oldest:
            self._times.popleft()


class FrameStats:
    """Counts and timings of a frame-processing node, summarised for diagnostics."""

    def __init__(self, window_s: float = RATE_WINDOW_S, latency_samples: int = LATENCY_SAMPLES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._input = RateMeter(window_s, clock)
        self._output = RateMeter(window_s, clock)
        self._drops = RateMeter(window_s, clock)
        self._clock = clock
        self._last_input: float | None = None
        self._latency_ms: deque[float] = deque(maxlen=latency_samples)
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.bad_input: Counter[str] = Counter()

    def frame_received(self, replaced_unprocessed: bool) -> None:
        """A frame arrived; ``replaced_unprocessed``: it displaced one never processed."""
        with self._lock:
            self.received += 1
            self.dropped += int(replaced_unprocessed)
            self._input.tick()
            self._last_input = self._clock()
            if replaced_unprocessed:
                self._drops.tick()

    def frame_processed(self, latency_ms: float) -> None:
        """A frame's results were published after ``latency_ms`` of processing."""
        with self._lock:
            self.processed += 1
            self._latency_ms.append(latency_ms)
            self._output.tick()

    def bad_frame(self, reason: str) -> bool:
        """Count a frame rejected for ``reason``; True the first time this reason is seen."""
        with self._lock:
            self.bad_input[reason] += 1
            return self.bad_input[reason] == 1

    def seconds_since_input(self) -> float | None:
        """Seconds since the last frame arrived; None before the first."""
        with self._lock:
            return None if self._last_input is None else self._clock() - self._last_input

    def drop_share(self) -> float:
        """Share of the frames that arrived in the rate window and were dropped, [0, 1]."""
        with self._lock:
            arrived = self._input.count()
            return min(1.0, self._drops.count() / arrived) if arrived else 0.0

    def median_latency_ms(self) -> float | None:
        """Median of the recent processing latencies; None before the first frame."""
        with self._lock:
            return float(np.median(self._latency_ms)) if self._latency_ms else None

    def summary(self) -> dict[str, str]:
        """Key/value pairs for a ``diagnostic_msgs/DiagnosticStatus`` (units in the keys)."""
        latency = self.median_latency_ms()
        with self._lock:
            values = {
                "input rate (Hz)": f"{self._input.rate():.2f}",
                "output rate (Hz)": f"{self._output.rate():.2f}",
                "inference latency median (ms)": "n/a" if latency is None else f"{latency:.1f}",
                "frames received": str(self.received),
                "frames processed": str(self.processed),
                "dropped frames": str(self.dropped),
                "bad input frames": str(sum(self.bad_input.values())),
            }
            values.update({f"bad input: {reason}": str(count)
                           for reason, count in sorted(self.bad_input.items())})
        return values
