"""Frame delivery between processes: a camera process at Fast DDS defaults feeds
``python -m mos_ros.ros.detector_node`` (its own process, as ``ros2 run`` starts it); the share
of published frames that come back as a FaceArray, per rate, size and camera reliability::

    python -m mos_ros.bench.ros_delivery [--rates 1 5 15] [--sizes 640x480 1280x720]
        [--reliability best_effort reliable] [--seconds 10] [--node-source DIR]
        [--camera-profile] [--host-network] [--json]

Camera and node run in a private network namespace that holds only the loopback
(:mod:`mos_ros.ros.private_network`, needs root): discovery at the robot's default SUBNET range
behaves as on a robot, and no packet leaves the host. ``--host-network`` runs them on the
host's network instead, where every ROS system on it can hear them.

This process is the camera: it publishes bgr8 frames at a steady rate (never a burst) with
the chosen reliability and Fast DDS's defaults (unless ``--camera-profile`` loads the
package's camera-frames profile here too), and counts the FaceArrays by stamp. The node keeps
running across the matrix. ``--node-source DIR`` runs the node from another checkout of the
package (e.g. an older commit, for a before/after comparison). The model is a random-weights
MOS at a small input size, so the node serves every rate asked of it: what is measured is
delivery, not inference speed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from mos_ros.bench.run import synthetic_frame
from mos_ros.msg import FaceArray
from mos_ros.ros import convert
from mos_ros.ros.dds import PROFILE_VARIABLES, apply_camera_frames_profile
from mos_ros.ros.private_network import (
    PrivateNetworkError, add_host_network_option, benchmark_network, describe_network,
    network_error)
from mos_ros.ros.testing import spin_until, stop_process
from mos_ros.testing import random_model

RATES_HZ = (1.0, 5.0, 15.0)
SIZES = ((640, 480), (1280, 720))
RELIABILITIES = {"best_effort": ReliabilityPolicy.BEST_EFFORT,
                 "reliable": ReliabilityPolicy.RELIABLE}
#: Depth of the camera's publisher (keep last), as a camera driver's default profile has.
CAMERA_DEPTH = 10
NAMESPACE = "/mos_delivery"
INPUT_SIZE = 160
KEEP_TOP_K = 5
DISCOVERY_TIMEOUT_S = 60.0
#: Time for the node's ``reliability: auto`` to follow a new camera publisher (it re-checks
#: every second), and for the last results to come back.
SETTLE_S = 2.5
DRAIN_S = 3.0
#: The node's diagnostics key counting the frames it received.
RECEIVED_KEY = "frames received"


@dataclass(frozen=True)
class Delivery:
    """One cell of the matrix: frames published and answered."""

    width: int
    height: int
    rate_hz: float
    reliability: str
    published: int
    answered: int
    #: Frames the node received (its diagnostics' count): answered ones and those displaced
    #: by a newer frame while the node was busy (over its capacity at that moment).
    received: int

    @property
    def share(self) -> float:
        """Answered share of the published frames, [0, 1]."""
        return self.answered / self.published if self.published else 0.0

    @property
    def delivered(self) -> float:
        """Share of the published frames that reached the node, [0, 1]."""
        return self.received / self.published if self.published else 0.0


def start_node(model: Path, node_source: Path | None) -> subprocess.Popen:
    """``python -m mos_ros.ros.detector_node`` in its own process, camera-facing defaults.

    The child does not inherit a profile chosen for this process (the camera): the node
    decides for itself, as it would when started by ``ros2 run``.
    """
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    if node_source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(node_source),
                                                          env.get("PYTHONPATH")]))
    params = {"model_path": str(Path(model).resolve()), "input_size": INPUT_SIZE,
              "keep_top_k": KEEP_TOP_K, "threads": 1}
    args = [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
    return subprocess.Popen([sys.executable, "-m", "mos_ros.ros.detector_node", "--ros-args",
                             "-r", f"__ns:={NAMESPACE}", *args], env=env,
                            cwd=str(node_source) if node_source else None)


class Camera:
    """Publishes frames and counts the FaceArrays that answer them (by stamp)."""

    def __init__(self, context: Context) -> None:
        self.node = rclpy.create_node("mos_delivery_camera", namespace=NAMESPACE,
                                      context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.answered: set[int] = set()
        self.next_stamp = 1
        #: The node's newest "frames received" count and when it came.
        self.node_received, self.diagnostics_at = 0, 0.0
        self.node.create_subscription(FaceArray, "faces", self._on_faces, 100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_faces(self, msg: FaceArray) -> None:
        self.answered.add(msg.header.stamp.sec)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.startswith(f"{NAMESPACE}/mos_detector") and RECEIVED_KEY in values:
                self.node_received = int(values[RECEIVED_KEY])
                self.diagnostics_at = time.monotonic()

    def _fresh_received(self) -> int:
        """The node's received count from a diagnostics message that is yet to come."""
        asked = time.monotonic()
        spin_until(self.executor, lambda: self.diagnostics_at > asked, DRAIN_S)
        return self.node_received

    def run(self, width: int, height: int, rate_hz: float, reliability: str,
            seconds: float) -> Delivery:
        """Publish ``rate_hz`` x ``seconds`` frames; count the answers."""
        qos = QoSProfile(depth=CAMERA_DEPTH, reliability=RELIABILITIES[reliability])
        pub = self.node.create_publisher(Image, "image", qos)
        try:
            if not spin_until(self.executor, lambda: pub.get_subscription_count() > 0,
                              DISCOVERY_TIMEOUT_S):
                raise RuntimeError("mos_detector did not subscribe to 'image'")
            spin_until(self.executor, lambda: False, SETTLE_S)
            received0 = self._fresh_received()
            msg = convert.bgr_to_image(synthetic_frame(height, width), Header(frame_id="cam"))
            count = max(1, round(rate_hz * seconds))
            stamps = range(self.next_stamp, self.next_stamp + count)
            self.next_stamp += count
            start = time.monotonic()
            for index, stamp in enumerate(stamps):
                msg.header.stamp.sec = stamp
                pub.publish(msg)
                due = start + (index + 1) / rate_hz
                spin_until(self.executor, lambda: time.monotonic() >= due, seconds + 1.0)
            last = stamps[-1]
            spin_until(self.executor, lambda: last in self.answered, DRAIN_S)
            spin_until(self.executor, lambda: False, 0.2)
            answered = len(self.answered.intersection(stamps))
            received = self._fresh_received() - received0
        finally:
            self.node.destroy_publisher(pub)
        return Delivery(width, height, rate_hz, reliability, count, answered, received)


def run(model: Path, rates: Sequence[float], sizes: Sequence[tuple[int, int]],
        reliabilities: Sequence[str], seconds: float, node_source: Path | None = None,
        camera_profile: bool = False, host_network: bool = False) -> list[Delivery]:
    """The delivery matrix, one node process for all of it, in a private network unless
    ``host_network``."""
    if camera_profile:
        apply_camera_frames_profile()
    else:
        for name in PROFILE_VARIABLES:
            os.environ.pop(name, None)
    with benchmark_network(host_network):
        return _matrix(model, rates, sizes, reliabilities, seconds, node_source)


def _matrix(model: Path, rates: Sequence[float], sizes: Sequence[tuple[int, int]],
            reliabilities: Sequence[str], seconds: float,
            node_source: Path | None) -> list[Delivery]:
    """Start the node, then be its camera for every cell."""
    child = start_node(model, node_source)
    context = Context()
    rclpy.init(args=[], context=context)
    camera = Camera(context)
    try:
        return [camera.run(width, height, rate, reliability, seconds)
                for width, height in sizes for reliability in reliabilities for rate in rates]
    finally:
        stop_process(child)
        camera.executor.shutdown()
        camera.node.destroy_node()
        rclpy.try_shutdown(context=context)


def format_table(rows: Sequence[Delivery]) -> str:
    """Per cell: frames answered with a FaceArray, and frames that reached the node."""
    lines = [f"{'size':<10} {'camera':<12} {'rate Hz':>7} {'answered':>10} {'share':>7} "
             f"{'reached node':>12}"]
    for row in rows:
        size = f"{row.width}x{row.height}"
        lines.append(f"{size:<10} {row.reliability:<12} {row.rate_hz:>7g} "
                     f"{row.answered:>4}/{row.published:<5} {100 * row.share:>6.1f}% "
                     f"{100 * row.delivered:>11.1f}%")
    return "\n".join(lines)


def _size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the delivery table."""
    parser = argparse.ArgumentParser(prog="python -m mos_ros.bench.ros_delivery",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES_HZ))
    parser.add_argument("--sizes", type=_size, nargs="+", default=list(SIZES))
    parser.add_argument("--reliability", nargs="+", choices=RELIABILITIES,
                        default=list(RELIABILITIES))
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time per cell")
    parser.add_argument("--random-model", type=Path, default=Path("build/bench_model"),
                        metavar="DIR", help="where the random-weights model is built or reused")
    parser.add_argument("--node-source", type=Path,
                        help="run the node from this checkout of the package")
    parser.add_argument("--camera-profile", action="store_true",
                        help="the camera loads config/fastdds_camera_frames.xml too")
    parser.add_argument("--json", action="store_true",
                        help="print the cells as one JSON list instead of the table")
    add_host_network_option(parser)
    args = parser.parse_args(argv)
    try:
        rows = run(random_model(args.random_model), args.rates, args.sizes, args.reliability,
                   args.seconds, args.node_source, args.camera_profile, args.host_network)
    except PrivateNetworkError as exc:
        parser.error(network_error(exc))
    if args.json:
        print(json.dumps([asdict(row) for row in rows]))
        return 0
    source = args.node_source or "this checkout"
    discovery = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") or "the default (SUBNET)"
    print(f"node from {source}; camera at "
          f"{'the camera-frames profile' if args.camera_profile else 'Fast DDS defaults'}; "
          f"discovery range {discovery}; {describe_network(args.host_network)}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
