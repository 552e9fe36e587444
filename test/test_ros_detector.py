"""mos_detector over real DDS (loopback): outputs, parameters, lifecycle, diagnostics, overload,
bad input. Each test runs its own detector in its own namespace, spun by one background
MultiThreadedExecutor; a probe node publishes camera frames and listens to the outputs.

The model is the shipped default (the ``model`` fixture of conftest.py); on these noise frames,
with score_threshold 0, it reports keep_top_k low-score faces per image, which is all the
plumbing needs.
"""
import array
import os
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from conftest import skip_without_runtime
from mos_ros.core.markers import Intrinsics
from mos_ros.core.pose import euler_to_quaternion
from mos_ros.msg import FaceArray
from mos_ros.ros import convert
from mos_ros.ros.detector_node import DetectorNode
from mos_ros.ros.testing import RIG_TIMEOUT_S as TIMEOUT_S
from mos_ros.ros.testing import ProbeRig, wait

INPUT_SIZE = 160
FRAME = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
SLOW = os.environ.get("MOS_SLOW_TESTS") == "1"


class Rig(ProbeRig):
    """The probe rig with detectors and service calls."""

    def detector(self, model, **params) -> DetectorNode:
        values = dict(model_path=str(model), score_threshold=0.0, top_k=50, keep_top_k=3,
                      input_size=INPUT_SIZE)
        values.update(params)
        return self.add(DetectorNode, f"/t{self.count + 1}", **values)

    def call(self, kind, service, request, tries=3):
        """Call a service; None when no answer came (a response can be lost while the
        server's reply writer is still being discovered, so idempotent calls are retried)."""
        client = self.probe.create_client(kind, service)
        try:
            assert client.wait_for_service(timeout_sec=TIMEOUT_S), service
            for _ in range(tries):
                future = client.call_async(request)
                if wait(future.done, TIMEOUT_S / tries):
                    return future.result()
            return None
        finally:
            self.probe.destroy_client(client)


@pytest.fixture(scope="module")
def rig():
    rig = Rig()
    yield rig
    rig.close()


def header(sec: int, frame_id: str = "camera_optical") -> Header:
    h = Header(frame_id=frame_id)
    h.stamp.sec, h.stamp.nanosec = sec, 500
    return h


def send_and_receive(pub, msg, received: list):
    """Publish ``msg`` until an output with its stamp arrives (best effort may lose one)."""
    for _ in range(3):
        pub.publish(msg)
        if wait(lambda: any(m.header.stamp == msg.header.stamp for m in received), 5.0):
            return next(m for m in received if m.header.stamp == msg.header.stamp)
    raise AssertionError(f"no output for stamp {msg.header.stamp}")


def test_faces_keep_the_image_stamp_frame_id_and_size(rig, model):
    node = rig.detector(model)
    faces = rig.listen(FaceArray, "/t1/faces")
    pub = rig.publisher(Image, "/t1/image")
    for sec in (11, 12, 13):
        out = send_and_receive(pub, convert.bgr_to_image(FRAME, header(sec)), faces)
        assert out.header.frame_id == "camera_optical"
        assert (out.image_width, out.image_height) == (160, 120)
        assert len(out.faces) == 3
        for face in out.faces:
            q = [face.orientation.x, face.orientation.y, face.orientation.z, face.orientation.w]
            np.testing.assert_allclose(q, euler_to_quaternion(face.yaw, face.pitch, face.roll),
                                       atol=1e-5)
            assert 0 <= face.x_min <= face.x_max <= 160
    assert node.stats.processed >= 3


def test_markers_show_each_face_pose_at_its_placed_head(rig, model):
    rig.detector(model, marker_scale=0.3)
    faces = rig.listen(FaceArray, "/t2/faces")
    markers = rig.listen(MarkerArray, "/t2/faces/markers")
    info_pub = rig.publisher(CameraInfo, "/t2/camera_info")
    k = Intrinsics(200.0, 210.0, 75.0, 65.0)
    info = CameraInfo(header=header(1), width=160, height=120,
                      k=[k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0])
    info_pub.publish(info)
    pub = rig.publisher(Image, "/t2/image")
    msg = convert.bgr_to_image(FRAME, header(21))
    face_array = send_and_receive(pub, msg, faces)

    def of_this_frame():
        return [m for m in markers if m.markers[-1].header.stamp == msg.header.stamp]
    assert wait(of_this_frame), "no markers for the frame"
    marker_array = of_this_frame()[0]
    first, arrows = marker_array.markers[0], marker_array.markers[1:]
    assert first.action == Marker.DELETEALL
    assert len(arrows) == 3 * len(face_array.faces)
    for index, face in enumerate(face_array.faces):
        gaze = arrows[3 * index]
        assert gaze.header.frame_id == "camera_optical" and gaze.type == Marker.ARROW
        assert (gaze.color.r, gaze.color.g, gaze.color.b) == (1.0, 0.0, 0.0)
        assert gaze.scale.x == pytest.approx(0.3)
        o = gaze.pose.orientation
        np.testing.assert_allclose([o.x, o.y, o.z, o.w], [face.orientation.x, face.orientation.y,
                                                          face.orientation.z, face.orientation.w],
                                   atol=1e-6)
        # With camera_info, the arrows start at the head placed in 3-D (faces/poses).
        assert face.position_valid and gaze.pose.position == face.position


def test_compressed_input_and_a_corrupt_jpeg_does_not_stop_it(rig, model):
    node = rig.detector(model, input="compressed")
    faces = rig.listen(FaceArray, "/t3/faces")
    pub = rig.publisher(CompressedImage, "/t3/image/compressed")
    out = send_and_receive(pub, convert.bgr_to_compressed(FRAME, header(31)), faces)
    assert (out.image_width, out.image_height) == (160, 120)
    assert out.header.frame_id == "camera_optical"
    pub.publish(CompressedImage(header=header(32), format="jpeg",
                                data=array.array("B", b"\xff\xd8\xff garbage")))
    assert wait(lambda: node.stats.bad_input[convert.UNDECODABLE] == 1)
    send_and_receive(pub, convert.bgr_to_compressed(FRAME, header(33)), faces)


def bad_images():
    zeros = array.array("B", bytes(160 * 120 * 3))
    return [
        (convert.UNKNOWN_ENCODING, Image(height=120, width=160, encoding="bayer_rggb8",
                                         step=160, data=array.array("B", bytes(160 * 120)))),
        (convert.SIZE_MISMATCH, Image(height=120, width=160, encoding="bgr8", step=400,
                                      data=zeros)),
        (convert.EMPTY_DATA, Image(height=120, width=160, encoding="bgr8", step=480)),
        (convert.ZERO_SIZE, Image(height=0, width=0, encoding="bgr8", step=0)),
    ]


def test_bad_input_is_logged_once_counted_and_never_stops_the_node(rig, model, capfd):
    node = rig.detector(model)
    faces = rig.listen(FaceArray, "/t4/faces")
    diagnostics = rig.listen(DiagnosticArray, "/diagnostics")
    pub = rig.publisher(Image, "/t4/image")
    for sec, (reason, msg) in enumerate(bad_images() * 2, start=40):
        msg.header = header(sec)
        expected = node.stats.bad_input[reason] + 1
        for _ in range(3):
            pub.publish(msg)
            if wait(lambda: node.stats.bad_input[reason] == expected, 5.0):
                break
        assert node.stats.bad_input[reason] == expected, reason
        send_and_receive(pub, convert.bgr_to_image(FRAME, header(sec + 100)), faces)
    logged = capfd.readouterr().err
    for reason, _ in bad_images():
        assert logged.count(f"frame skipped ({reason};") == 1, (reason, logged)

    def counted():
        mine = [s for d in diagnostics for s in d.status if s.name.startswith("/t4/")]
        values = {kv.key: kv.value for kv in mine[-1].values} if mine else {}
        return all(values.get(f"bad input: {r}") == "2" for r, _ in bad_images())
    assert wait(counted, 5.0)


def test_diagnostics_report_rate_latency_drops_backend_and_model(rig, model):
    rig.detector(model)
    diagnostics = rig.listen(DiagnosticArray, "/diagnostics")
    faces = rig.listen(FaceArray, "/t5/faces")
    pub = rig.publisher(Image, "/t5/image")
    for sec in (51, 52):
        send_and_receive(pub, convert.bgr_to_image(FRAME, header(sec)), faces)

    def latest():
        mine = [s for d in diagnostics for s in d.status if s.name.startswith("/t5/")]
        return {kv.key: kv.value for kv in mine[-1].values} if mine else {}
    assert wait(lambda: latest().get("frames processed") == "2")
    values = latest()
    assert {"input rate (Hz)", "output rate (Hz)", "inference latency median (ms)",
            "dropped frames", "bad input frames", "backend", "device", "model",
            "state"} <= set(values)
    assert float(values["inference latency median (ms)"]) > 0
    assert values["model"] == str(model) and values["state"] == "active"
    assert values["backend"] in ("onnxruntime", "torch")


def set_params(rig, node_name, **values):
    request = SetParameters.Request(
        parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
    answer = rig.call(SetParameters, f"{node_name}/set_parameters", request)
    assert answer is not None, "no answer from set_parameters"
    return answer.results


def test_parameters_are_validated_and_applied_at_run_time(rig, model):
    node = rig.detector(model)
    faces = rig.listen(FaceArray, "/t6/faces")
    (ok,) = set_params(rig, "/t6/mos_detector", score_threshold=0.25)
    assert ok.successful and node.detector.settings.score_threshold == 0.25
    (bad,) = set_params(rig, "/t6/mos_detector", nms_threshold=0.0)
    assert not bad.successful and "nms_threshold must be in (0, 1]" in bad.reason
    (out_of_range,) = set_params(rig, "/t6/mos_detector", score_threshold=1.5)
    assert not out_of_range.successful
    (read_only,) = set_params(rig, "/t6/mos_detector", model_path="/elsewhere.onnx")
    assert not read_only.successful and "read-only" in read_only.reason.lower()
    assert node.detector.settings.nms_threshold == 0.4
    assert node.detector.settings.score_threshold == 0.25
    assert node.get_parameter("model_path").value == str(model)
    ok_all = set_params(rig, "/t6/mos_detector", score_threshold=0.0, keep_top_k=1,
                        input_size=128)
    assert all(r.successful for r in ok_all)
    assert node.detector.input_size == 128
    pub = rig.publisher(Image, "/t6/image")
    out = send_and_receive(pub, convert.bgr_to_image(FRAME, header(61)), faces)
    assert len(out.faces) == 1


def lifecycle(rig, name, transition=None):
    """The node's state after asking for ``transition`` through its lifecycle services.

    A transition is not repeated when its reply is lost (that would ask for a second one):
    the state, read back through get_state, is what the test checks.
    """
    if transition is not None:
        request = ChangeState.Request(transition=Transition(id=transition))
        rig.call(ChangeState, f"{name}/change_state", request, tries=1)
    state = rig.call(GetState, f"{name}/get_state", GetState.Request())
    assert state is not None, "no answer from get_state"
    return state.current_state.id


def test_lifecycle_services_load_subscribe_unsubscribe_and_free(rig, model):
    node = rig.detector(model, autostart=False)
    name = "/t7/mos_detector"
    faces = rig.listen(FaceArray, "/t7/faces")
    pub = rig.probe.create_publisher(Image, "/t7/image", qos_profile_sensor_data)
    assert lifecycle(rig, name) == State.PRIMARY_STATE_UNCONFIGURED and node.detector is None
    assert lifecycle(rig, name, Transition.TRANSITION_CONFIGURE) == State.PRIMARY_STATE_INACTIVE
    assert node.detector is not None and pub.get_subscription_count() == 0
    assert lifecycle(rig, name, Transition.TRANSITION_ACTIVATE) == State.PRIMARY_STATE_ACTIVE
    assert wait(lambda: pub.get_subscription_count() == 1)
    send_and_receive(pub, convert.bgr_to_image(FRAME, header(71)), faces)
    assert lifecycle(rig, name, Transition.TRANSITION_DEACTIVATE) == State.PRIMARY_STATE_INACTIVE
    assert wait(lambda: pub.get_subscription_count() == 0) and not node.worker.running
    assert lifecycle(rig, name, Transition.TRANSITION_CLEANUP) == State.PRIMARY_STATE_UNCONFIGURED
    assert node.detector is None


@pytest.mark.parametrize("backend, file", [("onnxruntime", "mos-mbv2-faces.int8.onnx"),
                                           ("torch", "mos-mbv2-faces.pt")])
def test_without_a_model_path_the_node_loads_the_default_for_its_backend(rig, monkeypatch,
                                                                         backend, file):
    skip_without_runtime(backend)
    monkeypatch.delenv("MOS_MODEL", raising=False)
    params = {} if backend == "onnxruntime" else {"backend": backend}
    node = rig.detector("", autostart=False, **params)
    name = f"{node.get_namespace()}/mos_detector"
    assert lifecycle(rig, name, Transition.TRANSITION_CONFIGURE) == State.PRIMARY_STATE_INACTIVE
    assert node.model.endswith(file) and node.detector.backend.name == backend


def test_a_model_that_cannot_load_fails_configure_with_the_reason(rig, tmp_path, capfd):
    missing = tmp_path / "missing.onnx"
    node = rig.detector(missing, autostart=False)
    state = lifecycle(rig, f"{node.get_namespace()}/mos_detector", Transition.TRANSITION_CONFIGURE)
    assert state == State.PRIMARY_STATE_UNCONFIGURED and node.detector is None
    assert "cannot load the model" in capfd.readouterr().err


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.parametrize("duration_s", [6.0] + ([60.0] if SLOW else []))
def test_overload_keeps_serving_the_newest_frames_and_counts_drops(rig, model, duration_s):
    """Frames at about 3x the rate the node can serve: outputs keep coming, for the newest
    frames, drops are counted; the long run (MOS_SLOW_TESTS=1) also checks memory stays flat."""
    node = rig.detector(model)
    ns = f"/t{rig.count}"
    faces = rig.listen(FaceArray, f"{ns}/faces")
    pub = rig.publisher(Image, f"{ns}/image")
    for sec in range(3):  # measure how fast the node serves
        send_and_receive(pub, convert.bgr_to_image(FRAME, header(sec)), faces)
    period = node.stats.median_latency_ms() / 1000 / 3
    received0, processed0, dropped0 = (node.stats.received, node.stats.processed,
                                       node.stats.dropped)
    start, sent, rss = time.monotonic(), 0, []
    while time.monotonic() - start < duration_s:
        sent += 1
        pub.publish(convert.bgr_to_image(FRAME, header(1000 + sent)))
        if sent % 50 == 0:
            rss.append(rss_mb())
        time.sleep(period)
    last = header(1000 + sent).stamp
    assert wait(lambda: any(m.header.stamp == last for m in faces)), "newest frame not served"
    # Every frame that arrived was either served or displaced by a newer one (and counted);
    # the served count follows the newest output by a moment.
    stats = node.stats
    assert wait(lambda: stats.received - received0 == (stats.processed - processed0)
                + (stats.dropped - dropped0)), "frames neither served nor counted as dropped"
    served, dropped = stats.processed - processed0, stats.dropped - dropped0
    assert dropped > 0 and 0 < served < sent
    stamps = [m.header.stamp.sec for m in faces if m.header.stamp.sec > 1000]
    assert stamps == sorted(stamps)  # never an older frame after a newer one
    if duration_s > 30 and len(rss) > 4:
        settled = rss[len(rss) // 4]
        assert rss[-1] - settled < 30.0, f"RSS grew from {settled:.0f} to {rss[-1]:.0f} MB"
