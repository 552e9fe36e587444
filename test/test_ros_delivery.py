"""Frames from a camera in another process come back as FaceArrays: a camera at Fast DDS
defaults, best effort or reliable (the benchmark, in a process of its own), and ``python -m
mos_ros.ros.detector_node`` in a third, over real DDS, at rates the node can serve
(frames it drops while busy are counted apart). The node's camera-frames profile makes the
camera reach it over UDP with large socket buffers instead of through the camera's small
shared-memory segment; ``reliability: auto`` lets a reliable camera repair what is lost.

Camera and node run at a robot's default discovery range (SUBNET) in a private network
namespace that holds only the loopback, so no packet leaves this host: the transmit counters
of every other interface stay where they were. Where no namespace can be made (not root), the
cells are skipped and say so.

The default run covers the extremes (640x480 at 5 Hz, 1280x720 at 15 Hz) for both kinds of
camera; MOS_SLOW_TESTS=1 runs 1, 5 and 15 Hz at both sizes. The full table comes from
``python -m mos_ros.bench.ros_delivery`` (README, "On a robot").
"""
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mos_ros.bench import ros_delivery
from mos_ros.ros import private_network
from mos_ros.ros.dds import PROFILE_VARIABLES
from mos_ros.testing import random_model

SLOW = os.environ.get("MOS_SLOW_TESTS") == "1"
SECONDS = 4.0
MIN_SHARE = 0.99
MIN_ANSWERED = 0.9
#: (size, rate) cells: the extremes by default, all of them with MOS_SLOW_TESTS=1.
CELLS = ([(f"{w}x{h}", rate) for w, h in ros_delivery.SIZES for rate in ros_delivery.RATES_HZ]
         if SLOW else [("640x480", 5.0), ("1280x720", 15.0)])
NETWORK_INTERFACES = Path("/sys/class/net")
IFF_LOOPBACK = 0x8


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    pytest.importorskip("torch", reason="the delivery benchmark builds a random-weights model")
    return random_model(tmp_path_factory.getbasetemp() / "mos_model")


def camera_environment() -> dict[str, str]:
    """Fast DDS defaults at a robot's default discovery range (SUBNET), in this run's domain.

    Under ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` rmw_fastrtps gives every participant
    shared memory whatever its profile says, so a best-effort frame over 512 KB cannot reach
    another process at all (README, "On a robot"); the test measures what a robot runs. The
    benchmark runs both processes in a private network, where discovery's multicast finds the
    loopback alone.
    """
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"
    return env


def deliver(model, reliability: str) -> list[ros_delivery.Delivery]:
    """The benchmark as the camera process (Fast DDS reads its XML profiles once per process,
    so a camera inside this test process could carry a profile loaded by an earlier test)."""
    rows = []
    for size, rate in CELLS:
        out = subprocess.run(
            [sys.executable, "-m", "mos_ros.bench.ros_delivery", "--json",
             "--random-model", str(model.parent), "--sizes", size, "--rates", str(rate),
             "--reliability", reliability, "--seconds", str(SECONDS)],
            env=camera_environment(), capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
        rows += [ros_delivery.Delivery(**row) for row in json.loads(out.stdout.splitlines()[-1])]
    return rows


def packets_sent() -> dict[str, int]:
    """Packets each network interface but the loopback has sent since it came up."""
    return {path.name: int((path / "statistics" / "tx_packets").read_text())
            for path in NETWORK_INTERFACES.iterdir()
            if not int((path / "flags").read_text(), 16) & IFF_LOOPBACK}


@dataclass(frozen=True)
class Deliveries:
    """The cells of each camera reliability, and the packets each interface but the loopback
    sent while they ran."""

    rows: dict[str, list[ros_delivery.Delivery]]
    sent: dict[str, int]


@pytest.fixture(scope="module")
def deliveries(model) -> Deliveries:
    """Both cameras' cells, once per module, counting what left the host meanwhile."""
    reason = private_network.unavailable()
    if reason:
        pytest.skip("the delivery cells run at the SUBNET range in a private network "
                    f"namespace, and none can be made here: {reason}")
    before = packets_sent()
    rows = {reliability: deliver(model, reliability)
            for reliability in ros_delivery.RELIABILITIES}
    after = packets_sent()
    return Deliveries(rows, {name: after.get(name, count) - count
                             for name, count in before.items()})


@pytest.mark.parametrize("reliability", list(ros_delivery.RELIABILITIES))
def test_camera_frames_at_fast_dds_defaults_reach_the_node_process(deliveries, reliability):
    rows = deliveries.rows[reliability]
    table = ros_delivery.format_table(rows)
    assert all(row.published >= row.rate_hz * SECONDS for row in rows), table
    # Every frame reaches the node; all but those displaced while it was busy (this machine
    # is shared, so its capacity dips) are answered.
    assert all(row.delivered >= MIN_SHARE for row in rows), table
    assert all(row.share >= MIN_ANSWERED for row in rows), table


def test_no_packet_leaves_through_any_interface_but_the_loopback(deliveries):
    if not deliveries.sent:
        pytest.skip("this host has no network interface but the loopback")
    # The counters are the host's: a process outside this test that sends meanwhile counts too.
    assert not any(deliveries.sent.values()), f"packets sent meanwhile: {deliveries.sent}"
