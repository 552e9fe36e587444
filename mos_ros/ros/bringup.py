"""In-process bringup: the nodes of ``launch/mos.launch.py`` with the same YAML, in ONE process.

Where ``ros2 launch`` is not installed (or one process is wanted: no serialisation between the
camera and the detector), this starts the image source, mos_detector and face_selector in
one MultiThreadedExecutor, with parameters from ``config/mos.yaml`` handed to rcl, which
matches its sections to the nodes as it does for any node process::

    python -m mos_ros.ros.bringup IMAGES_OR_VIDEO --out annotated/ --frames 20

:func:`run_demo` is the same as a function: it prints the faces found per frame, writes the
annotated frames and, when face_selector runs, each selected aligned crop (``selected/``), and
returns a summary after ``frames`` detector outputs.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from mos_ros.msg import FaceArray, SelectedFace
from mos_ros.resources import find_shared_file
from mos_ros.ros import convert
from mos_ros.ros.dds import apply_camera_frames_profile
from mos_ros.ros.detector_node import DetectorNode
from mos_ros.ros.image_source import ImageSourceNode
from mos_ros.ros.selector_node import SelectorNode

PARAMS_FILE = "config/mos.yaml"
DEMO_RATE_HZ = 5.0
DEMO_TIMEOUT_S = 300.0
SPIN_PERIOD_S = 0.05
OUTPUT_DEPTH = 10
#: Sub-folder of the demo's output folder for the selected aligned crops.
SELECTED_DIR = "selected"


def rcl_arguments(params_file: str | Path | None = None) -> list[str]:
    """Command-line arguments that hand ``params_file`` (default: the shipped YAML) to rcl,
    which applies its sections to every node of the context by rcl's own matching rules
    (``/**``, ``/**/name``, ``/namespace/name``, ...), exactly as for a node process."""
    return ["--ros-args", "--params-file", str(params_file or find_shared_file(PARAMS_FILE))]


def make_nodes(context: Context, namespace: str = "",
               overrides: dict[str, dict[str, Any]] | None = None,
               start_selector: bool = True) -> list[Node]:
    """mos_detector (and face_selector) in ``context``, whose rcl arguments carry the
    parameter file (:func:`rcl_arguments`); ``overrides`` by node name win over it."""
    overrides = overrides or {}
    classes = [("mos_detector", DetectorNode)]
    if start_selector:
        classes.append(("face_selector", SelectorNode))
    return [cls(context=context, namespace=namespace, parameter_overrides=[
        Parameter(k, value=v) for k, v in overrides.get(name, {}).items()])
        for name, cls in classes]


@dataclass
class DemoSummary:
    """What a demo run did."""

    frames_published: int = 0
    faces_per_frame: list[int] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    #: Aligned crops of the selected faces, written as ``selected/track<id>_<frame>.png``.
    selected: list[str] = field(default_factory=list)
    dropped_frames: int = 0
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)


def _seconds(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class _Recorder(Node):
    """Receives faces, annotated frames and selected faces; echoes counts, writes images."""

    def __init__(self, out_dir: Path, summary: DemoSummary, echo: Callable[[str], None],
                 **kwargs) -> None:
        super().__init__("mos_demo_recorder", **kwargs)
        self._out_dir, self._summary, self._echo = out_dir, summary, echo
        self._frame_of: dict[tuple[int, int], int] = {}
        self.create_subscription(FaceArray, "faces", self._on_faces, OUTPUT_DEPTH)
        self.create_subscription(Image, "faces/image", self._on_image, OUTPUT_DEPTH)
        self.create_subscription(SelectedFace, "faces/selected", self._on_selected, OUTPUT_DEPTH)

    def _on_faces(self, msg: FaceArray) -> None:
        self._summary.faces_per_frame.append(len(msg.faces))
        frame = len(self._summary.faces_per_frame)
        self._frame_of[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = frame
        self._echo(f"frame {frame} (stamp {_seconds(msg.header):.3f}): {len(msg.faces)} face(s)")

    def _frame(self, header) -> int:
        """The demo's number of the frame with ``header`` (the newest if not seen yet)."""
        key = (header.stamp.sec, header.stamp.nanosec)
        return self._frame_of.get(key, len(self._summary.faces_per_frame))

    def _on_selected(self, msg: SelectedFace) -> None:
        frame = self._frame(msg.header)
        path = self._out_dir / SELECTED_DIR / f"track{msg.face.track_id}_{frame:05d}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), convert.image_to_bgr(msg.aligned))
        self._summary.selected.append(str(path))
        self._echo(f"frame {frame}: selected track {msg.face.track_id} (quality "
                   f"{msg.face.quality:.2f}) -> {path}")

    def _on_image(self, msg: Image) -> None:
        path = self._out_dir / f"frame_{len(self._summary.written) + 1:05d}.jpg"
        cv2.imwrite(str(path), convert.image_to_bgr(msg))
        self._summary.written.append(str(path))


def run_demo(images_dir: str | Path, out_dir: str | Path, model: str | Path | None = None,
             frames: int = 10, *, params_file: str | Path | None = None,
             rate_hz: float = DEMO_RATE_HZ, detector_params: dict[str, Any] | None = None,
             timeout_s: float = DEMO_TIMEOUT_S, selector_params: dict[str, Any] | None = None,
             start_selector: bool = True,
             echo: Callable[[str], None] = print) -> DemoSummary:
    """Play ``images_dir`` (folder or video) through mos_detector (and face_selector) in one
    process until ``frames`` frames have been detected and written to ``out_dir``.

    Stops early when the source has no more frames (it loops while it has any) or after
    ``timeout_s``. ``detector_params`` and ``selector_params`` override the YAML (e.g.
    ``{"input_size": 320}``, ``{"min_hits": 1}``). The selected crops go to
    ``out_dir/selected/``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    overrides = dict(detector_params or {}, publish_annotated=True, autostart=True)
    if model is not None:
        overrides["model_path"] = str(model)
    summary, context = DemoSummary(), Context()
    apply_camera_frames_profile()
    rclpy.init(args=rcl_arguments(params_file), context=context)
    executor = MultiThreadedExecutor(context=context)
    start = time.monotonic()
    try:
        nodes = make_nodes(context, start_selector=start_selector,
                           overrides={"mos_detector": overrides,
                                      "face_selector": selector_params or {}})
        if not nodes[0].worker.running:
            raise RuntimeError("mos_detector did not start (see its log for the reason)")
        nodes.append(_Recorder(out, summary, echo, context=context))
        source = ImageSourceNode(context=context, parameter_overrides=[
            Parameter("path", value=str(images_dir)), Parameter("rate", value=float(rate_hz)),
            Parameter("loop", value=True)])
        nodes.append(source)
        for node in nodes:
            executor.add_node(node)
        while (min(len(summary.faces_per_frame), len(summary.written)) < frames
               and not source.finished and time.monotonic() - start < timeout_s):
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
        summary.frames_published = source.published
        summary.dropped_frames = nodes[0].stats.dropped
    finally:
        summary.elapsed_s = time.monotonic() - start
        executor.shutdown()
        for node in executor.get_nodes():
            node.destroy_node()
        rclpy.try_shutdown(context=context)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line of :func:`run_demo`."""
    parser = argparse.ArgumentParser(prog="python -m mos_ros.ros.bringup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", help="image folder or video file played as the camera")
    parser.add_argument("--out", default="mos_demo", help="folder for the annotated frames")
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--frames", type=int, default=10, help="stop after this many frames")
    parser.add_argument("--params", help=f"parameter file (default: {PARAMS_FILE})")
    parser.add_argument("--rate", type=float, default=DEMO_RATE_HZ, help="frames per second")
    parser.add_argument("--no-selector", action="store_true", help="do not start face_selector")
    args = parser.parse_args(argv)
    summary = run_demo(args.images, args.out, args.model, args.frames, params_file=args.params,
                       rate_hz=args.rate, start_selector=not args.no_selector)
    print(f"{len(summary.faces_per_frame)} frame(s), {sum(summary.faces_per_frame)} face(s), "
          f"{summary.dropped_frames} dropped, annotated frames in {args.out}, "
          f"{len(summary.selected)} selected crop(s) in {Path(args.out) / SELECTED_DIR}")
    return 0 if summary.faces_per_frame else 1


if __name__ == "__main__":
    sys.exit(main())
