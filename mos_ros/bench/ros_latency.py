"""What the ROS layer costs: image publish -> FaceArray received vs bare FaceDetector.detect.

On the same frames, in one run: the bare detector, mos_detector in this process (one
executor, no serialisation across processes) and mos_detector in a subprocess (DDS over
loopback, as with ``ros2 launch``). Frames are sent in lock-step (the next after the previous
result), so no frame is dropped and every sample is one frame's full path::

    python -m mos_ros.bench.ros_latency --frames 30 [--model M | --random-model DIR]
        [--host-network]

The ROS paths run in a private network namespace that holds only the loopback
(:mod:`mos_ros.ros.private_network`, needs root), so no ROS system outside this host hears
them; ``--host-network`` runs them on the host's network instead.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from mos_ros.bench.run import synthetic_frame
from mos_ros.bench.timing import Stat, elapsed_ms
from mos_ros.core.postprocess import DecodeSettings
from mos_ros.detector import FaceDetector
from mos_ros.msg import FaceArray
from mos_ros.resources import default_model_path
from mos_ros.ros import convert
from mos_ros.ros.detector_node import DetectorNode
from mos_ros.ros.private_network import (
    PrivateNetworkError, add_host_network_option, benchmark_network, describe_network,
    network_error)
from mos_ros.ros.testing import spin_until, stop_process
from mos_ros.testing import random_model

WARMUP_FRAMES = 2
#: Seconds to wait for a frame's result before sending it again, and the most sends.
REPLY_TIMEOUT_S = 2.0
SENDS_PER_FRAME = 10
DISCOVERY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
MODES = ("in-process", "two-process")
#: Faces kept per frame, in both paths. A random-weights model finds hundreds of noise
#: "faces" at the default threshold; a real scene has a few, and the message cost grows
#: with their number.
DEFAULT_KEEP_TOP_K = 10
#: Lock-step frames are sparse, and sparse large best-effort samples are often lost between
#: processes; the bench makes the detector's image subscription reliable through its QoS
#: parameter (depth 1: still latest-frame-wins) so every sample is a delivered frame.
RELIABLE_SETTING = "reliability"
RELIABLE_DEPTH_1 = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


def bare_latency(model: Path, frames: list, input_size: int, threads: int,
                 keep_top_k: int = DEFAULT_KEEP_TOP_K) -> list[float]:
    """Milliseconds of FaceDetector.detect per frame (after warm-up)."""
    options = {"threads": threads} if threads else {}
    detector = FaceDetector.open(model, backend_options=options, input_size=input_size,
                                 settings=DecodeSettings(keep_top_k=keep_top_k))
    for frame in frames[:WARMUP_FRAMES]:
        detector.detect(frame)
    samples = []
    for frame in frames:
        start = time.perf_counter()
        detector.detect(frame)
        samples.append(elapsed_ms(start))
    return samples


def _publisher_count(node, subscription) -> int:
    """Publishers matched to ``subscription`` (graph count where rclpy is older than Jazzy)."""
    if hasattr(subscription, "get_publisher_count"):
        return subscription.get_publisher_count()
    return node.count_publishers(subscription.topic_name)


def _round_trips(executor, probe, frames: list) -> list[float]:
    """Publish each frame, wait for its FaceArray; milliseconds per frame after warm-up."""
    received: dict[int, float] = {}
    sub = probe.create_subscription(FaceArray, "faces",
                                    lambda m: received.setdefault(m.header.stamp.sec,
                                                                  time.perf_counter()), 10)
    pub = probe.create_publisher(Image, "image", RELIABLE_DEPTH_1)
    matched = lambda: (pub.get_subscription_count() > 0  # noqa: E731
                       and _publisher_count(probe, sub) > 0)
    if not spin_until(executor, matched, DISCOVERY_TIMEOUT_S):
        raise RuntimeError("mos_detector did not connect to 'image' and 'faces'")
    messages = [convert.bgr_to_image(f, Header(frame_id="camera")) for f in frames]
    samples = []
    for index, msg in enumerate(messages[:WARMUP_FRAMES] + messages, start=1):
        msg.header.stamp.sec = index
        for _ in range(SENDS_PER_FRAME):  # best effort may lose a large frame: send again
            start = time.perf_counter()
            pub.publish(msg)
            if spin_until(executor, lambda: index in received, REPLY_TIMEOUT_S):
                break
        else:
            raise RuntimeError(f"no FaceArray for frame {index} after {SENDS_PER_FRAME} sends")
        if index > WARMUP_FRAMES:
            samples.append((received[index] - start) * 1e3)
    return samples


def ros_latency(model: Path, frames: list, input_size: int, threads: int,
                two_process: bool, keep_top_k: int = DEFAULT_KEEP_TOP_K) -> list[float]:
    """End-to-end milliseconds per frame through mos_detector, in or out of this process."""
    values = {"model_path": str(model), "input_size": input_size, "threads": threads,
              "keep_top_k": keep_top_k,
              RELIABLE_SETTING: "reliable"}
    context, child = Context(), None
    rclpy.init(args=[], context=context)
    executor = MultiThreadedExecutor(context=context)
    try:
        if two_process:
            overrides = [a for k, v in values.items() for a in ("-p", f"{k}:={v}")]
            child = subprocess.Popen([sys.executable, "-m", "mos_ros.ros.detector_node",
                                      "--ros-args", *overrides])
        else:
            executor.add_node(DetectorNode(context=context, parameter_overrides=[
                Parameter(k, value=v) for k, v in values.items()]))
        probe = rclpy.create_node("mos_latency_probe", context=context)
        executor.add_node(probe)
        return _round_trips(executor, probe, frames)
    finally:
        if child is not None:
            stop_process(child, STOP_TIMEOUT_S)
        executor.shutdown()
        for node in executor.get_nodes():
            node.destroy_node()
        rclpy.try_shutdown(context=context)


def run(model: Path, frames: int, size: tuple[int, int], input_size: int, threads: int,
        modes: Sequence[str], host_network: bool = False) -> dict[str, Stat]:
    """Latency statistics of the bare detector and of each mode, on the same frames; the
    modes in a private network unless ``host_network``."""
    images = [synthetic_frame(size[1], size[0], seed=i) for i in range(frames)]
    stats = {"bare detect": Stat.of(bare_latency(model, images, input_size, threads))}
    with benchmark_network(host_network):
        for mode in modes:
            stats[mode] = Stat.of(ros_latency(model, images, input_size, threads,
                                              two_process=mode == "two-process"))
    return stats


def format_stats(stats: dict[str, Stat]) -> str:
    """A table of medians, p90 and the overhead ratio to the bare detector."""
    bare = stats["bare detect"].median_ms
    lines = [f"{'path':<14} {'median ms':>10} {'p90 ms':>8} {'x bare':>7}"]
    for name, stat in stats.items():
        lines.append(f"{name:<14} {stat.median_ms:>10.1f} {stat.p90_ms:>8.1f} "
                     f"{stat.median_ms / bare:>7.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the latency table."""
    parser = argparse.ArgumentParser(prog="python -m mos_ros.bench.ros_latency",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    parser.add_argument("--random-model", type=Path, metavar="DIR",
                        help="build (or reuse) a random-weights model in DIR and use it")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--input-size", type=int, default=640)
    parser.add_argument("--threads", type=int, default=0, help="0: backend default")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    add_host_network_option(parser)
    args = parser.parse_args(argv)
    model = random_model(args.random_model) if args.random_model else (
        args.model or default_model_path())
    try:
        stats = run(model, args.frames, (args.width, args.height), args.input_size,
                    args.threads, args.modes, args.host_network)
    except PrivateNetworkError as exc:
        parser.error(network_error(exc))
    print(f"model {model}, {args.frames} frames {args.width}x{args.height}, "
          f"input {args.input_size}, {describe_network(args.host_network)}")
    print(format_stats(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
