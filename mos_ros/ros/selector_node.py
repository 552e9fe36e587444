"""face_selector: per tracked person, the frontal, sharp, large shots for face recognition.

Subscribes to the detector's ``faces`` and to the ``image`` they were found in, pairs the two
by header stamp in a bounded cache (:mod:`mos_ros.core.stamp_cache`) and hands each pair to
:class:`mos_ros.core.selection.FaceSelector`. ``faces/tracked`` gets every tracked face with
its id and quality; ``faces/selected`` a SelectedFace, with the aligned 112x112 crop, whenever
a track's best shot is due; ``/tf`` REP-155's ``face_<id>`` and ``gaze_<id>`` frames per
confirmed track placed in 3-D by the detector; with ``ros4hri`` (the default) the confirmed
tracks on ROS4HRI's ``humans/faces/...`` topics (:mod:`mos_ros.ros.hri`). Faces whose image
never arrives and unusable faces are counted.
A lifecycle node: configure builds the selector, activate subscribes.
"""
from __future__ import annotations

import sys
import time

from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from mos_ros.core.errors import ImageError
from mos_ros.core.hri import FaceIds, HriConfig
from mos_ros.core.quality import inter_eye_distance
from mos_ros.core import selection
from mos_ros.core.selection import FaceSelector, SelectionResult, SelectedShot
from mos_ros.core.stamp_cache import NS_PER_S, StampCache, StampSeconds, stamp_ns
from mos_ros.core.types import Face
from mos_ros.msg import FaceArray, SelectedFace
from mos_ros.ros import convert, faces3d, hri, selector_params
from mos_ros.ros.node_base import FAILURE, OUTPUT_DEPTH, SUCCESS, MosNode
from mos_ros.ros.stats import MS_PER_S, RateMeter
from mos_ros.ros.spin import run_node

#: Images kept by the subscription: every image with faces is needed, so a short burst
#: (while a selection runs) must not displace any.
IMAGE_DEPTH = 5
#: Reason under which unexpected selection failures are counted.
SELECTION_ERROR = "selection error"
#: Keys of FrameStats' summary renamed (its frames are face arrays; none are dropped here).
RENAMED = {"input rate (Hz)": "faces input rate (Hz)", "dropped frames": "",
           "inference latency median (ms)": "selection latency median (ms)",
           "frames received": "face arrays received", "frames processed": "face arrays paired"}
#: Reasons of valid faces that are no candidates (diagnostics key "gated: ..."); every other
#: reason the selector counts is a skipped, unusable face ("skipped: ...").
GATES = frozenset({selection.GATE_YAW, selection.GATE_PITCH, selection.GATE_ROLL,
                   selection.GATE_EYES, selection.GATE_SHARPNESS, selection.GATE_QUALITY})


def _stamp(header: Header) -> int:
    return stamp_ns(header.stamp.sec, header.stamp.nanosec)


def _face_msg(face: Face, track_id: int, quality: float):
    msg = convert.face_to_msg(face)
    msg.track_id, msg.quality = int(track_id), float(quality)
    return msg


class SelectorNode(MosNode):
    """Tracks the detector's faces and publishes each person's best shots."""

    TASK = "face selection"

    def __init__(self, **kwargs) -> None:
        super().__init__("face_selector", selector_params.SPECS, **kwargs)
        self.selector: FaceSelector | None = None
        self.cache: StampCache | None = None
        self.image_rate, self.selected = RateMeter(), 0
        self._times, self._logged = StampSeconds(), set()
        self._pubs, self._faces_sub = {}, None
        self.face_ids: FaceIds | None = None
        self.hri: hri.HriPublisher | None = None
        self.transforms = faces3d.TransformPublisher(self)
        self.start()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the selector and cache from the parameters; create the publishers."""
        if super().on_configure(state) != SUCCESS:
            return FAILURE
        configs = selector_params.configs(self.values)
        self.selector = FaceSelector(configs["selector"], configs["quality"], configs["tracker"])
        self.cache = StampCache(configs["cache"])
        pub = self.create_publisher
        self._pubs = {"selected": pub(SelectedFace, "faces/selected", OUTPUT_DEPTH),
                      "tracked": pub(FaceArray, "faces/tracked", OUTPUT_DEPTH)}
        self.face_ids = FaceIds()  # a new selector counts tracks from 1: new ids
        self._follow_hri(configs["hri"])
        return SUCCESS

    def _follow_hri(self, config: HriConfig) -> None:
        """Start or stop the REP-155 output as ``config.enabled`` says; pass on its sizes."""
        if config.enabled and self.hri is None:
            if hri.available():
                self.hri = hri.HriPublisher(self, config)
            else:
                self.get_logger().warning(hri.MISSING_HRI_MSGS)
        elif not config.enabled and self.hri is not None:
            self.hri.close()
            self.hri = None
        if self.hri is not None:
            self.hri.config = config

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the images and the detector's faces."""
        compressed = self.values["input"] == "compressed"
        kind, topic = (CompressedImage, "image/compressed") if compressed else (Image, "image")
        self.subscribe_frames(kind, topic, self._on_image, IMAGE_DEPTH)
        self._faces_sub = self.create_subscription(FaceArray, "faces", self._on_faces,
                                                   OUTPUT_DEPTH)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe."""
        self._drop_faces_subscription()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the publishers and forget the tracks."""
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything, from whichever state."""
        self._drop_faces_subscription()
        self._release()
        return super().on_shutdown(state)

    def _drop_faces_subscription(self) -> None:
        if self._faces_sub is not None:
            self.destroy_subscription(self._faces_sub)
        self._faces_sub = None

    def _release(self) -> None:
        for publisher in self._pubs.values():
            self.destroy_publisher(publisher)
        if self.hri is not None:
            self.hri.close()
        self._pubs, self.selector, self.cache, self.hri = {}, None, None, None

    def _on_image(self, msg) -> None:
        self.image_rate.tick()
        self._handle(*self.cache.add_image(_stamp(msg.header), msg))

    def _on_faces(self, msg: FaceArray) -> None:
        self.stats.frame_received(replaced_unprocessed=False)
        self._handle(*self.cache.add_faces(_stamp(msg.header), msg))

    def _handle(self, match, dropped) -> None:
        for entry in dropped:
            sec, nanosec = divmod(entry.stamp, NS_PER_S)
            self._bad(entry.reason, f"faces of stamp {sec}.{nanosec:09d}")
        if match is not None:
            self._select(match.image, match.faces)

    def _bad(self, reason: str, detail: str) -> None:
        if self.stats.bad_frame(reason):
            self.get_logger().warning(f"{reason} (logged once, counted in /diagnostics): "
                                      f"{detail}")

    def _select(self, image_msg, faces_msg: FaceArray) -> None:
        start = time.perf_counter()
        try:
            if isinstance(image_msg, CompressedImage):
                image = convert.compressed_to_bgr(image_msg)
            else:
                image = convert.image_to_bgr(image_msg)
            faces = [convert.face_from_msg(face) for face in faces_msg.faces]
            result = self.selector.process(faces, image,
                                           self._times.seconds(_stamp(image_msg.header)))
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the node
            reason = getattr(exc, "reason", "bad image" if isinstance(exc, ImageError)
                             else SELECTION_ERROR)
            self._bad(reason, str(exc))
            return
        for skipped in result.skipped:
            if skipped.reason not in self._logged:
                self._logged.add(skipped.reason)
                self.get_logger().warning(f"face skipped ({skipped.reason}; logged once, "
                                          f"counted in /diagnostics)")
        header, (height, width) = image_msg.header, image.shape[:2]
        tracked = [_face_msg(t.face, t.track_id, t.terms.total if t.terms else -1.0)
                   for t in result.tracked]
        faces3d.copy_positions(tracked, [faces_msg.faces[t.index] for t in result.tracked])
        self._pubs["tracked"].publish(FaceArray(header=header, image_width=width,
                                                image_height=height, faces=tracked))
        self._publish_faces(header, image, result, tracked)
        for shot in result.selected:
            self._pubs["selected"].publish(self._selected_msg(shot, header.frame_id))
        self.selected += len(result.selected)
        self.stats.frame_processed((time.perf_counter() - start) * MS_PER_S)

    def _publish_faces(self, header: Header, image, result: SelectionResult,
                       tracked: list) -> None:
        """The confirmed tracks under their REP-155 ids: TF frames, and the ROS4HRI topics."""
        confirmed = [(self.face_ids(t.track_id), t.face, msg)
                     for t, msg in zip(result.tracked, tracked) if t.confirmed]
        self.transforms.send(faces3d.face_transforms(header, {i: m for i, _, m in confirmed}))
        if self.hri is not None:
            live = [self.face_ids(t.track_id) for t in self.selector.tracker.tracks
                    if t.confirmed]
            self.hri.publish(header, image, live, {i: face for i, face, _ in confirmed})

    def _selected_msg(self, shot: SelectedShot, frame_id: str) -> SelectedFace:
        """The shot with the header of the frame it was seen in (maybe an earlier one)."""
        sec, nanosec = divmod(self._times.nanoseconds(shot.stamp), NS_PER_S)
        header = Header(frame_id=frame_id)
        header.stamp.sec, header.stamp.nanosec = sec, nanosec
        terms = shot.terms
        return SelectedFace(header=header, face=_face_msg(shot.face, shot.track_id, shot.quality),
                            aligned=convert.bgr_to_image(shot.crop, header),
                            detector_score=terms.detector, pose_quality=terms.pose,
                            size_quality=terms.size, sharpness_quality=terms.sharpness,
                            inter_eye_distance=inter_eye_distance(shot.face.landmarks))

    def publish_diagnostics(self) -> None:
        """Expire faces whose image never came, then report (see :class:`MosNode`)."""
        if self.cache is not None:
            self._handle(None, self.cache.expire())
        super().publish_diagnostics()

    def report(self) -> tuple[dict[str, str], str]:
        """Rates, selections, skips and gates."""
        values = {"image input rate (Hz)": f"{self.image_rate.rate():.2f}"}
        for key, value in self.stats.summary().items():
            if RENAMED.get(key, key):
                values[RENAMED.get(key, key)] = value
        values["selected faces"] = str(self.selected)
        values["ros4hri faces"] = ("off" if self.hri is None
                                   else str(len(self.hri.face_ids)))
        if self.selector is None:
            return values, ""
        values.update({"active tracks": str(len(self.selector.tracker)),
                       "images waiting for faces": str(self.cache.images),
                       "face arrays waiting for images": str(self.cache.waiting),
                       "images without faces": str(self.cache.images_unused)})
        values.update({f"{'gated' if reason in GATES else 'skipped'}: {reason}": str(count)
                       for reason, count in sorted(self.selector.counts.items())})
        return values, ""

    def problems(self, changes) -> list[str]:
        """The core configurations' rules, under the parameters' names."""
        return selector_params.problems(changes, self.values)

    def apply(self, changes) -> None:
        """Reconfigure the selector, the cache and the ROS4HRI output in place (tracks are
        kept)."""
        if self.selector is None:
            return
        configs = selector_params.configs(self.values)
        self.selector.configure(configs["selector"], configs["quality"], configs["tracker"])
        self._handle(None, self.cache.configure(configs["cache"]))
        self._follow_hri(configs["hri"])


def main(args=None) -> int:
    """Run the selector node until Ctrl-C or shutdown."""
    return run_node(SelectorNode, args)


if __name__ == "__main__":
    sys.exit(main())
