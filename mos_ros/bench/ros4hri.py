"""face_selector's ROS4HRI (REP-155) output, read the way a consumer reads it::

    python -m mos_ros.bench.ros4hri [--photo models/demo/einstein.jpg] [--rate 15]
        [--still 80] [--damage-every N] [--json]

``python -m mos_ros.ros.detector_node`` and ``python -m mos_ros.ros.selector_node`` run in
processes of their own (the shipped model, default parameters); this process is the camera and
the consumer. The camera (reliable, with a camera_info) shows an empty view (a flat frame of
the photo's mean colour), then the photo for ``still`` frames (its faces enter and stay), then
the empty view again (they leave). The consumer subscribes to ``humans/faces/tracked`` and,
for each id listed there, to its ``roi``, ``landmarks``, ``cropped`` and ``aligned``; it also
follows ``/tf`` and, as the reference, the detector's ``faces``. Measured: how long the faces
took to appear in ``tracked`` and to leave it, and their topics to leave the graph; how far
each roi lies from its FaceArray box; how far each aligned image lies from the five-point
alignment of the photo at the FaceArray's landmarks; how many frames the ids stayed the same;
the share of (face, stamp) pairs whose ``face_<id>`` and ``gaze_<id>`` frames came at that
stamp.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from hri_msgs.msg import IdsList, NormalizedRegionOfInterest2D
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from mos_ros.core.hri import aligned_face, normalized_box
from mos_ros.core.image_io import read_image
from mos_ros.core.nms import iou_matrix
from mos_ros.core.types import Face
from mos_ros.msg import FaceArray
from mos_ros.resources import find_shared_file
from mos_ros.ros import convert
from mos_ros.ros.hri import SUBTOPICS, TRACKED_TOPIC, face_topic
from mos_ros.ros.testing import spin_until, stop_process

NAMESPACE = "/hri_bench"
#: Two real people, turned a little: two faces enter, stay and leave.
DEFAULT_PHOTO = "models/demo/einstein.jpg"
FRAME_ID = "camera_optical_frame"
#: Horizontal field of view of the camera_info sent with the photo, degrees.
HFOV_DEG = 60.0
DISCOVERY_TIMEOUT_S = 60.0
#: The empty view before the photo: long enough for the nodes' ``reliability: auto`` to follow
#: the reliable camera (they re-check every second) and for answers to come steadily.
WARM_UP_S = 4.0
#: The empty view after the photo, and the time left for the last answers.
LEAVE_S = 4.0
DRAIN_S = 2.0
NS = 1_000_000_000


@dataclass
class Ros4hriRun:
    """What the consumer saw (wall times: ``time.monotonic()``)."""

    published: dict[int, float] = field(default_factory=dict)     # stamp -> published at
    faces: dict[int, FaceArray] = field(default_factory=dict)      # stamp -> detector's faces
    tracked: list[tuple[float, int, tuple[str, ...]]] = field(default_factory=list)
    rois: dict[tuple[str, int], NormalizedRegionOfInterest2D] = field(default_factory=dict)
    aligned: list[tuple[str, int, Image]] = field(default_factory=list)
    landmarks: list = field(default_factory=list)
    frames: set[tuple[str, int]] = field(default_factory=set)     # (child frame, stamp)
    topics_gone_at: float | None = None
    #: Topics with a publisher while the photo was shown.
    topics: tuple[str, ...] = ()
    #: Newest diagnostics values per status name.
    diagnostics: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Frames sent damaged (see :meth:`Consumer.play`).
    damaged: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Ros4hriReport:
    """The measured figures (seconds, normalised image units, grey levels)."""

    faces_in_view: int
    ids: tuple[str, ...]
    enter_s: float
    leave_s: float
    topics_gone_s: float
    roi_error: float
    aligned_error: float
    landmark_points: int
    stable_frames: int
    tf_share: float
    tracked_messages: int
    photo_frames: int
    damaged_frames: int
    #: "bad input frames" in each node's diagnostics at the end.
    detector_bad_frames: int
    selector_bad_frames: int
    #: "dropped frames" in the detector's diagnostics at the end (frames that came while it
    #: was busy: under load a damaged frame may be among them, counted but never examined).
    detector_dropped_frames: int


def start_nodes(namespace: str, selector_args: tuple[str, ...] = ()) -> list[subprocess.Popen]:
    """mos_detector and face_selector (defaults, shipped model), each in its own process."""
    return [subprocess.Popen([sys.executable, "-m", f"mos_ros.ros.{module}", "--ros-args",
                              "-r", f"__ns:={namespace}", *args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for module, args in (("detector_node", ()), ("selector_node", selector_args))]


def camera_info(width: int, height: int) -> CameraInfo:
    """A distortion-free camera of :data:`HFOV_DEG` for a ``width`` x ``height`` image."""
    focal = width / 2.0 / np.tan(np.radians(HFOV_DEG / 2.0))
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return CameraInfo(header=Header(frame_id=FRAME_ID), width=width, height=height,
                      distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[focal, 0.0, cx, 0.0, focal, cy, 0.0, 0.0, 1.0],
                      p=[focal, 0.0, cx, 0.0, 0.0, focal, cy, 0.0, 0.0, 0.0, 1.0, 0.0])


class Consumer:
    """The camera and a REP-155 consumer in one node of this process."""

    def __init__(self, context: Context, namespace: str, rate_hz: float) -> None:
        self.rate_hz = rate_hz
        self.node = rclpy.create_node("hri_consumer", namespace=namespace, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.run = Ros4hriRun()
        camera_qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(Image, "image", camera_qos)
        self.info_pub = self.node.create_publisher(CameraInfo, "camera_info", 10)
        self._followed: set[str] = set()
        sub = self.node.create_subscription
        sub(FaceArray, "faces", self._on_faces, 100)
        sub(IdsList, TRACKED_TOPIC, self._on_tracked, 100)
        sub(TFMessage, "/tf", self._on_tf, 100)
        sub(DiagnosticArray, "/diagnostics", self._on_diagnostics, 100)
        self.faces_pub = self.node.create_publisher(FaceArray, "faces", 10)

    def _on_faces(self, msg: FaceArray) -> None:
        if self._index(msg) not in self.run.damaged:
            self.run.faces.setdefault(self._index(msg), msg)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.run.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def _on_tracked(self, msg: IdsList) -> None:
        self.run.tracked.append((time.monotonic(), self._index(msg), tuple(msg.ids)))
        for face_id in msg.ids:
            if face_id not in self._followed:
                self._follow(face_id)

    def _follow(self, face_id: str) -> None:
        """Subscribe to a new face's topics, as a consumer does when its id appears."""
        self._followed.add(face_id)
        run, sub, index = self.run, self.node.create_subscription, self._index
        sub(SUBTOPICS["roi"], face_topic(face_id, "roi"),
            lambda m: run.rois.setdefault((face_id, index(m)), m), 100)
        sub(SUBTOPICS["landmarks"], face_topic(face_id, "landmarks"), run.landmarks.append, 100)
        sub(Image, face_topic(face_id, "aligned"),
            lambda m: run.aligned.append((face_id, index(m), m)), 100)
        sub(Image, face_topic(face_id, "cropped"), lambda m: None, 10)

    def _on_tf(self, msg: TFMessage) -> None:
        self.run.frames.update((t.child_frame_id, self._index(t)) for t in msg.transforms)

    def topics_exist(self, face_ids) -> bool:
        """Whether any publisher of the faces' topics is still in the graph."""
        return any(self.node.count_publishers(f"{self.node.get_namespace()}/"
                                              f"{face_topic(i, name)}")
                   for i in face_ids for name in SUBTOPICS)

    def _index(self, msg) -> int:
        """The camera frame a message's header stamp belongs to (see :meth:`play`)."""
        stamp = msg.header.stamp
        return round((stamp.sec * NS + stamp.nanosec) * self.rate_hz / NS)

    def play(self, frame: np.ndarray, frames: range, info: CameraInfo, on_frame=None,
             damage_every: int = 0) -> None:
        """Publish ``frame`` as camera frames ``frames`` at the camera's rate, spinning in
        between; frame k has stamp k / rate seconds, so stamp time runs as wall time does
        (the tracker's time-outs are in stamp seconds). Every ``damage_every``-th frame goes
        out damaged (its data cut short), and with it on ``faces`` the newest faces the
        detector found, as if it had answered: bad input for both nodes."""
        start = time.monotonic()
        for index, stamp in enumerate(frames):
            header = Header(frame_id=FRAME_ID)
            header.stamp.sec, header.stamp.nanosec = divmod(round(stamp * NS / self.rate_hz),
                                                            NS)
            info.header = header
            self.info_pub.publish(info)
            image = convert.bgr_to_image(frame, header)
            if damage_every and (index + 1) % damage_every == 0 and self.run.faces:
                self.run.damaged.add(stamp)
                image.data = image.data[:len(image.data) // 2]
                newest = self.run.faces[max(self.run.faces)]
                self.faces_pub.publish(FaceArray(header=header, image_width=newest.image_width,
                                                 image_height=newest.image_height,
                                                 faces=newest.faces))
            self.image_pub.publish(image)
            self.run.published[stamp] = time.monotonic()
            due = start + (index + 1) / self.rate_hz
            while time.monotonic() < due:
                self.executor.spin_once(timeout_sec=0.005)
                if on_frame is not None:
                    on_frame()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def play_scene(photo: np.ndarray, rate_hz: float, still: int, namespace: str = NAMESPACE,
               selector_args: tuple[str, ...] = (), damage_every: int = 0
               ) -> tuple[Ros4hriRun, range]:
    """Run the nodes and play empty view, photo (every ``damage_every``-th frame damaged),
    empty view; what the consumer saw, and the photo's frames. RuntimeError with their
    output when a node process failed."""
    children = start_nodes(namespace, selector_args)
    context = Context()
    rclpy.init(args=[], context=context)
    consumer = Consumer(context, namespace, rate_hz)
    empty = np.empty_like(photo)
    empty[:] = photo.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    info = camera_info(photo.shape[1], photo.shape[0])
    try:
        for pub in (consumer.image_pub, consumer.info_pub):
            if not spin_until(consumer.executor, lambda: pub.get_subscription_count() > 0,
                              DISCOVERY_TIMEOUT_S):
                raise RuntimeError(f"nobody subscribed to {pub.topic_name}")
        warm = round(WARM_UP_S * rate_hz)
        consumer.play(empty, range(1, 1 + warm), info)
        photo_stamps = range(1 + warm, 1 + warm + still)
        consumer.play(photo, photo_stamps, info, damage_every=damage_every)
        run = consumer.run
        run.topics = tuple(name for name, _ in consumer.node.get_topic_names_and_types()
                           if consumer.node.count_publishers(name))
        ids = {i for _, _, listed in run.tracked for i in listed}

        def watch_topics():
            if run.topics_gone_at is None and not consumer.topics_exist(ids):
                run.topics_gone_at = time.monotonic()

        leave = photo_stamps.stop
        consumer.play(empty, range(leave, leave + round(LEAVE_S * rate_hz)), info, watch_topics)
        spin_until(consumer.executor, lambda: False, DRAIN_S)
        return run, photo_stamps
    finally:
        consumer.close()
        rclpy.try_shutdown(context=context)
        errors = []
        for child in children:
            stop_process(child)
            errors.append(child.communicate()[1])
        if any("Traceback" in e for e in errors):
            raise RuntimeError("a node process failed:\n" + "\n".join(e[-3000:] for e in errors))


def _matched(faces: FaceArray, roi) -> tuple[Face, np.ndarray]:
    """The FaceArray face that overlaps ``roi`` most, and its normalised box."""
    size = (faces.image_width, faces.image_height)
    found = [convert.face_from_msg(f) for f in faces.faces]
    boxes = np.array([normalized_box(f.box, *size) for f in found])
    index = int(np.argmax(iou_matrix(np.array([_roi_box(roi)]), boxes)[0]))
    return found[index], boxes[index]


def _roi_box(roi) -> list[float]:
    return [roi.xmin, roi.ymin, roi.xmax, roi.ymax]


def report(run: Ros4hriRun, photo: np.ndarray, photo_stamps: range) -> Ros4hriReport:
    """The figures of one scene (see the module docstring)."""
    counts = Counter(len(run.faces[s].faces) for s in photo_stamps if s in run.faces)
    in_view = counts.most_common(1)[0][0]        # the faces the detector finds in the photo
    entered = next(t for t, s, ids in run.tracked if s in photo_stamps and len(ids) >= in_view)
    ids = next(ids for _, s, ids in run.tracked if s in photo_stamps and len(ids) >= in_view)
    left_stamp = photo_stamps.stop
    left = next(t for t, s, listed in run.tracked
                if s >= left_stamp and not set(ids) & set(listed))
    roi_errors = [float(np.max(np.abs(_matched(run.faces[s], roi)[1] - _roi_box(roi))))
                  for (_, s), roi in run.rois.items() if s in run.faces]
    aligned_errors = []
    for face_id, s, msg in run.aligned:
        if (face_id, s) in run.rois and s in photo_stamps and s in run.faces:
            face, _ = _matched(run.faces[s], run.rois[face_id, s])
            expected = aligned_face(photo, face.landmarks, msg.width, msg.height)
            got = convert.image_to_bgr(msg)
            aligned_errors.append(float(np.mean(np.abs(got.astype(float) - expected))))
    runs, current = [], 0
    for _, s, listed in run.tracked:
        if s in photo_stamps:
            current = current + 1 if listed == ids else 0
            runs.append(current)
    seen = [(i, s) for i, s in run.rois if s in photo_stamps]
    with_frames = [(i, s) for i, s in seen
                   if (f"face_{i}", s) in run.frames and (f"gaze_{i}", s) in run.frames]
    return Ros4hriReport(
        faces_in_view=in_view, ids=ids,
        enter_s=entered - run.published[photo_stamps.start],
        leave_s=left - run.published[left_stamp],
        topics_gone_s=(run.topics_gone_at - run.published[left_stamp]
                       if run.topics_gone_at is not None else float("inf")),
        roi_error=max(roi_errors), aligned_error=max(aligned_errors),
        landmark_points=max(sum(p.c > 0 for p in m.landmarks) for m in run.landmarks),
        stable_frames=max(runs), tf_share=len(with_frames) / max(len(seen), 1),
        tracked_messages=sum(s in photo_stamps for _, s, _ in run.tracked),
        photo_frames=len(photo_stamps), damaged_frames=len(run.damaged),
        detector_bad_frames=_counted(run, "mos_detector", "bad input frames"),
        selector_bad_frames=_counted(run, "face_selector", "bad input frames"),
        detector_dropped_frames=_counted(run, "mos_detector", "dropped frames"))


def _counted(run: Ros4hriRun, node: str, key: str) -> int:
    """The count ``key`` a node reported last (its status name starts with its name)."""
    values = [v for name, v in run.diagnostics.items() if name.split(":")[0].endswith(node)]
    return int(values[-1].get(key, 0)) if values else 0


def main(argv: list[str] | None = None) -> int:
    """Play the scene and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m mos_ros.bench.ros4hri",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=find_shared_file(DEFAULT_PHOTO))
    parser.add_argument("--rate", type=float, default=15.0, help="camera rate, Hz")
    parser.add_argument("--still", type=int, default=80, help="frames the photo is shown")
    parser.add_argument("--damage-every", type=int, default=0,
                        help="damage every N-th photo frame (bad input); 0: none")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    photo = read_image(args.photo)
    run, photo_stamps = play_scene(photo, args.rate, args.still, damage_every=args.damage_every)
    figures = report(run, photo, photo_stamps)
    if args.json:
        print(json.dumps(asdict(figures)))
    else:
        for key, value in asdict(figures).items():
            print(f"{key:>19}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
