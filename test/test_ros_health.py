"""Health on /diagnostics: ERROR when the model failed to load or the node is unconfigured,
WARN on stale input, sustained drops or latency over budget, OK otherwise. The rules alone,
then mos_detector over real DDS (loopback) with a listener on /diagnostics."""

import threading

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from mos_ros.ros import convert
from mos_ros.ros.detector_node import DetectorNode
from mos_ros.ros.health import HealthLimits, Level, NodeState, assess
from mos_ros.ros.testing import ProbeRig, wait

FRAME = np.random.default_rng(4).integers(0, 256, (120, 160, 3), dtype=np.uint8)
LIMITS = HealthLimits(stale_input_s=2.0, max_drop_share=0.5, latency_budget_ms=100.0)
WORKING = NodeState(configured=True, active=True, seconds_since_input=0.1, drop_share=0.0,
                    median_latency_ms=20.0)


@pytest.mark.parametrize("state, level, words", [
    (NodeState(configured=False, active=False, failure="cannot load the model x"),
     Level.ERROR, "cannot load"),
    (NodeState(configured=False, active=False), Level.ERROR, "unconfigured"),
    (NodeState(configured=True, active=False), Level.OK, "inactive"),
    (NodeState(configured=True, active=True), Level.WARN, "no input yet"),
    (NodeState(configured=True, active=True, seconds_since_input=3.5), Level.WARN,
     "no input for 3.5 s"),
    (NodeState(configured=True, active=True, seconds_since_input=0.1, drop_share=0.8),
     Level.WARN, "dropping 80%"),
    (NodeState(configured=True, active=True, seconds_since_input=0.1, median_latency_ms=250),
     Level.WARN, "latency 250 ms over the 100 ms budget"),
    (NodeState(configured=True, active=True, seconds_since_input=0.1,
               host_warning="net.core.rmem_max is 208 KB"), Level.WARN, "rmem_max"),
    (WORKING, Level.OK, "ok"),
])
def test_health_levels(state, level, words):
    got_level, message = assess(state, LIMITS)
    assert got_level == level and words in message


def test_a_zero_limit_turns_its_check_off():
    state = NodeState(configured=True, active=True, drop_share=1.0, median_latency_ms=1e6)
    assert assess(state, HealthLimits(0.0, 0.0, 0.0)) == (Level.OK, "ok")


class Rig(ProbeRig):
    """The probe rig with a listener on /diagnostics; detectors per test."""

    def __init__(self):
        super().__init__("health_probe")
        self.statuses = {}
        self.probe.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics,
                                       50)

    def _on_diagnostics(self, msg):
        for status in msg.status:
            self.statuses[status.name.split(":")[0]] = status

    def detector(self, **params):
        return self.add(DetectorNode, f"/h{self.count + 1}", **params)

    def level_becomes(self, node, level, words="") -> bool:
        name = node.get_fully_qualified_name()

        def reached():
            status = self.statuses.get(name)
            return (status is not None and status.level == bytes([level])
                    and words in status.message)
        return wait(reached)


@pytest.fixture(scope="module")
def rig():
    rig = Rig()
    yield rig
    rig.close()


def test_a_model_that_cannot_load_fails_configure_and_reports_error(rig, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    node = rig.detector(model_path=str(broken))
    assert not node.configured and "cannot load the model" in node.failure
    assert rig.level_becomes(node, Level.ERROR, str(broken)), rig.statuses


def test_unconfigured_is_error_then_stale_input_warns_then_frames_are_ok(rig, model):
    node = rig.detector(model_path=str(model), autostart=False, stale_input_s=1.0,
                        input_size=128, keep_top_k=3)
    assert rig.level_becomes(node, Level.ERROR, "unconfigured")
    assert node.trigger_configure() is not None and node.configured
    node.trigger_activate()
    assert rig.level_becomes(node, Level.WARN, "no input")
    ns = node.get_namespace()
    pub = rig.probe.create_publisher(Image, f"{ns}/image",
                                     QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    # The image subscription follows the camera's reliability within a diagnostics period;
    # frames start once it has (a subscription swapped while frames arrive may lose a few).
    image_sub = next(sub for sub in node.frame_subscriptions if sub.topic == "image")
    assert wait(lambda: image_sub.reliability == ReliabilityPolicy.RELIABLE)
    assert wait(lambda: pub.get_subscription_count() > 0)
    stop = threading.Event()

    def camera():
        while not stop.wait(0.2):
            pub.publish(convert.bgr_to_image(FRAME, Header(frame_id="cam")))
    threading.Thread(target=camera, daemon=True).start()
    try:
        assert rig.level_becomes(node, Level.OK, "ok"), rig.statuses.get(
            node.get_fully_qualified_name())
        node.set_parameters([Parameter("latency_budget_ms", value=0.001)])
        assert rig.level_becomes(node, Level.WARN, "over the")
    finally:
        stop.set()
