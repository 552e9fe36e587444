"""Node bookkeeping without ROS: rates, latency median, drops, bad input; latest-wins worker."""
import threading
import time

import pytest

from mos_ros.ros.stats import FrameStats, RateMeter
from mos_ros.ros.worker import LatestWorker


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_rate_counts_events_in_the_window_only():
    clock = FakeClock()
    meter = RateMeter(window_s=5.0, clock=clock)
    assert meter.rate() == 0.0
    for _ in range(11):  # 10 intervals of 0.1 s
        meter.tick()
        clock.now += 0.1
    assert meter.rate() == pytest.approx(10.0)
    clock.now += 10.0
    assert meter.rate() == 0.0


def test_frame_stats_count_drops_latency_and_bad_input_by_reason():
    clock = FakeClock()
    stats = FrameStats(latency_samples=3, clock=clock)
    stats.frame_received(replaced_unprocessed=False)
    stats.frame_received(replaced_unprocessed=True)
    for latency in (10.0, 50.0, 20.0, 30.0):  # only the newest 3 count
        stats.frame_processed(latency)
    assert stats.median_latency_ms() == 30.0
    assert stats.bad_frame("empty data") is True
    assert stats.bad_frame("empty data") is False
    assert stats.bad_frame("unknown encoding") is True
    summary = stats.summary()
    assert summary["dropped frames"] == "1"
    assert summary["frames received"] == "2" and summary["frames processed"] == "4"
    assert summary["bad input: empty data"] == "2"
    assert summary["bad input: unknown encoding"] == "1"
    assert summary["bad input frames"] == "3"
    assert summary["inference latency median (ms)"] == "30.0"
    assert set(summary) >= {"input rate (Hz)", "output rate (Hz)"}


def test_latency_is_not_available_before_the_first_frame():
    assert FrameStats().summary()["inference latency median (ms)"] == "n/a"


def test_worker_takes_the_newest_item_and_drops_the_rest():
    processed, started, gate = [], threading.Event(), threading.Event()

    def slow(item):
        started.set()
        gate.wait(5.0)
        processed.append(item)

    worker = LatestWorker(slow)
    worker.start()
    assert worker.put(0) is False
    assert started.wait(5.0)  # item 0 is in progress; what comes now has to wait
    replaced = [worker.put(i) for i in range(1, 6)]
    assert replaced == [False, True, True, True, True]
    gate.set()
    deadline = time.monotonic() + 5.0
    while len(processed) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert processed == [0, 5]
    assert not worker.running


def test_stopped_worker_discards_pending_items_and_can_restart():
    seen = []
    worker = LatestWorker(seen.append)
    worker.put("stale")
    worker.stop()
    worker.start()
    worker.put("fresh")
    deadline = time.monotonic() + 5.0
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert seen == ["fresh"]
