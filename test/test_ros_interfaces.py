"""The interface packages a robot has but the package index lacks (vision_msgs, tf2_msgs) are
built into the environment by .ci/setup.sh from their message definitions, and carry real
messages between two processes over DDS: the detector's Detection2DArray output and a
TFMessage go out from this process; a listener in another process echoes what it got as JSON.
"""
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TransformStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Header

from mos_ros.core.types import Face, HeadPose
from mos_ros.ros import convert

vision_msgs = pytest.importorskip("vision_msgs.msg", reason="run bash .ci/setup.sh")
tf2_msgs = pytest.importorskip("tf2_msgs.msg", reason="run bash .ci/setup.sh")

TIMEOUT_S = 40.0
PUBLISH_PERIOD_S = 0.2

# The listener process: one message of each kind, then their fields as one JSON line.
LISTENER = """
import json, rclpy
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection2DArray
rclpy.init()
node = rclpy.create_node("interface_listener")
got = {}
node.create_subscription(Detection2DArray, "detections", lambda m: got.setdefault("det", m), 10)
node.create_subscription(TFMessage, "tf", lambda m: got.setdefault("tf", m), 10)
while rclpy.ok() and len(got) < 2:
    rclpy.spin_once(node, timeout_sec=0.1)
det, tf = got["det"], got["tf"]
print(json.dumps({
    "frame_id": det.header.frame_id,
    "detections": [[d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x,
                    d.bbox.size_y, d.results[0].hypothesis.class_id,
                    d.results[0].hypothesis.score] for d in det.detections],
    "transforms": [[t.header.frame_id, t.child_frame_id, t.transform.translation.z,
                    t.transform.rotation.w] for t in tf.transforms]}), flush=True)
node.destroy_node()
rclpy.shutdown()
"""


def _faces():
    landmarks = np.zeros((5, 2), np.float32)
    return [Face(box=(10.0, 20.0, 50.0, 80.0), score=0.9, landmarks=landmarks,
                 pose=HeadPose(0.0, 0.0, 0.0)),
            Face(box=(100.0, 40.0, 130.0, 70.0), score=0.6, landmarks=landmarks,
                 pose=HeadPose(10.0, 0.0, 0.0))]


def _transform() -> TransformStamped:
    transform = TransformStamped(header=Header(frame_id="camera_optical_frame"),
                                 child_frame_id="face_0")
    transform.transform.translation.z = 1.25
    transform.transform.rotation.w = 1.0
    return transform


def test_detections_and_transforms_cross_processes_over_dds():
    listener = subprocess.Popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    context = Context()
    rclpy.init(args=[], context=context)
    node = rclpy.create_node("interface_talker", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        header = Header(frame_id="camera_optical_frame")
        detections = convert.faces_to_detections(_faces(), header)
        tf = tf2_msgs.TFMessage(transforms=[_transform()])
        publishers = [(node.create_publisher(vision_msgs.Detection2DArray, "detections", 10),
                       detections),
                      (node.create_publisher(tf2_msgs.TFMessage, "tf", 10), tf)]
        deadline = time.monotonic() + TIMEOUT_S
        while listener.poll() is None and time.monotonic() < deadline:
            for publisher, message in publishers:
                publisher.publish(message)
            executor.spin_once(timeout_sec=PUBLISH_PERIOD_S)
    finally:
        if listener.poll() is None:
            listener.kill()
        out, err = listener.communicate()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)

    assert listener.returncode == 0, err[-2000:]
    echoed = json.loads(out.strip().splitlines()[-1])
    assert echoed["frame_id"] == "camera_optical_frame"
    assert echoed["detections"] == [[30.0, 50.0, 40.0, 60.0, "face", pytest.approx(0.9)],
                                    [115.0, 55.0, 30.0, 30.0, "face", pytest.approx(0.6)]]
    assert echoed["transforms"] == [["camera_optical_frame", "face_0", 1.25, 1.0]]
