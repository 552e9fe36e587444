"""face_selector over real DDS (loopback): pairing by stamp, tracking, best shots, parameters,
bad input and faces whose image never comes. Each test runs its own selector in its own
namespace, spun by one background MultiThreadedExecutor; a probe node plays the camera and the
detector (images, and FaceArrays built directly with the landmarks of a face drawn here).
"""
import math
import time

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from mos_ros.core.quality import assess
from mos_ros.core.selection import GATE_YAW
from mos_ros.core.stamp_cache import IMAGE_NEVER_ARRIVED
from mos_ros.core.types import Face, HeadPose
from mos_ros.msg import FaceArray, SelectedFace
from mos_ros.ros import convert
from mos_ros.ros.selector_node import SelectorNode
from mos_ros.ros.testing import ProbeRig, wait

TIMEOUT_S = 10.0
HEIGHT, WIDTH = 240, 320
#: Frontal landmarks in units of the inter-eye distance from the eye midpoint: (x, y, depth).
FACE_POINTS = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.57, 0.6],
                        [-0.41, 1.16, 0.2], [0.41, 1.16, 0.2]])


def drawn_face(yaw=0.0, blur=0.0, cx=160.0, cy=100.0, eye=40.0):
    """A textured face drawn on a textured scene, and the Face whose landmarks it was drawn at
    (the eyes, nose and mouth follow ``yaw``); ``blur`` is a Gaussian sigma in pixels."""
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.normal(110.0, 40.0, (HEIGHT, WIDTH, 3)), (0, 0), 2.0)
    image = np.clip(noise, 0, 255).astype(np.uint8)
    a = math.radians(yaw)
    x = FACE_POINTS[:, 0] * math.cos(a) - FACE_POINTS[:, 2] * math.sin(a)
    landmarks = np.stack([x, FACE_POINTS[:, 1]], axis=1) * eye + [cx, cy]
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.ellipse(mask, (int(cx), int(cy + 0.45 * eye)), (int(eye), int(1.3 * eye)), 0, 0, 360,
                255, -1)
    skin = np.clip(rng.normal(0.0, 25.0, image.shape) + (120, 150, 190), 0, 255)
    image[mask > 0] = skin.astype(np.uint8)[mask > 0]
    point = [tuple(int(v) for v in np.round(p)) for p in landmarks]
    for eye_point in point[:2]:
        cv2.circle(image, eye_point, int(0.12 * eye), (40, 30, 30), -1)
    cv2.circle(image, point[2], int(0.08 * eye), (90, 100, 150), -1)
    cv2.line(image, point[3], point[4], (60, 50, 140), 3)
    if blur:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    face = Face(box=(cx - eye, cy - 0.9 * eye, cx + eye, cy + 1.6 * eye), score=0.95,
                landmarks=landmarks.astype(np.float32), pose=HeadPose(yaw, 0.0, 0.0))
    return image, face


class Rig(ProbeRig):
    """The probe rig with a /diagnostics listener; selectors are added per test."""

    def __init__(self):
        super().__init__()
        self.diagnostics = self.listen(DiagnosticArray, "/diagnostics")

    def selector(self, **params):
        values = dict(faces_wait_s=5.0)
        values.update(params)
        namespace = f"/s{self.count + 1}"
        return self.add(SelectorNode, namespace, **values), namespace

    def publishers(self, ns, image_kind=Image, image_topic="image"):
        image = self.probe.create_publisher(image_kind, f"{ns}/{image_topic}",
                                            qos_profile_sensor_data)
        faces = self.probe.create_publisher(FaceArray, f"{ns}/faces", 10)
        assert wait(lambda: image.get_subscription_count() > 0
                    and faces.get_subscription_count() > 0), "the selector did not subscribe"
        return image, faces

    def latest_diagnostics(self, ns) -> dict:
        mine = [s for d in self.diagnostics for s in d.status if s.name.startswith(f"{ns}/")]
        return {kv.key: kv.value for kv in mine[-1].values} if mine else {}


@pytest.fixture(scope="module")
def rig():
    rig = Rig()
    yield rig
    rig.close()


def header(sec: int, nanosec: int = 0) -> Header:
    h = Header(frame_id="camera_optical")
    h.stamp.sec, h.stamp.nanosec = sec, nanosec
    return h


def send_frame(pubs, image_msg, faces_msg, tracked: list, faces_first=False):
    """Publish one frame's image and FaceArray (in either order) until its tracked faces come
    back; the image is sent again when best effort lost it (its faces wait in the cache)."""
    image_pub, faces_pub = pubs
    stamp = faces_msg.header.stamp
    if faces_first:
        faces_pub.publish(faces_msg)
    for attempt in range(3):
        image_pub.publish(image_msg)
        if attempt == 0 and not faces_first:
            faces_pub.publish(faces_msg)
        if wait(lambda: any(m.header.stamp == stamp for m in tracked), 3.0):
            return next(m for m in tracked if m.header.stamp == stamp)
    raise AssertionError(f"no tracked faces for stamp {stamp}")


def frame_msgs(image, faces, h):
    return convert.bgr_to_image(image, h), convert.faces_to_msg(faces, h, WIDTH, HEIGHT)


def test_the_frontal_sharp_frame_of_a_person_is_selected_with_its_stamp_and_crop(rig):
    _, ns = rig.selector(min_hits=3, min_interval_s=10.0)
    tracked = rig.listen(FaceArray, f"{ns}/faces/tracked")
    selected = rig.listen(SelectedFace, f"{ns}/faces/selected")
    pubs = rig.publishers(ns)
    # The sharp frontal frame comes before the track is confirmed (third frame): its shot
    # goes out with the third frame, carrying the header of the frame it was seen in.
    frames = [drawn_face(yaw=60.0), drawn_face(), drawn_face(blur=1.5), drawn_face(blur=1.5),
              drawn_face(yaw=-60.0)]
    outputs = []
    for index, (image, face) in enumerate(frames):
        h = header(1_700_000_000, 100_000_000 * index + 7)  # 0.1 s apart, odd nanoseconds
        outputs.append(send_frame(pubs, *frame_msgs(image, [face], h), tracked,
                                  faces_first=index % 2 == 1))
    assert all(out.header.frame_id == "camera_optical" for out in outputs)
    assert all((out.image_width, out.image_height) == (WIDTH, HEIGHT) for out in outputs)
    ids = {out.faces[0].track_id for out in outputs}
    assert len(ids) == 1 and 0 not in ids, "one person, one stable track id"
    quality = [out.faces[0].quality for out in outputs]
    assert quality[0] == quality[4] == -1.0  # turned away: gated before assessment
    assert quality[1] > quality[2] > 0 and quality[1] > quality[3] > 0

    assert wait(lambda: len(selected) >= 1)
    time.sleep(0.3)  # anything else would have been published with the frames
    (shot,) = selected
    assert shot.header == outputs[1].header  # the sharp frontal frame, to the nanosecond
    assert shot.face.track_id in ids and shot.face.quality == pytest.approx(quality[1])
    assert shot.sharpness_quality > 0.5 and shot.pose_quality == pytest.approx(1.0)
    assert shot.detector_score == pytest.approx(0.95)
    assert shot.inter_eye_distance == pytest.approx(40.0, abs=0.01)
    product = (shot.detector_score * shot.pose_quality * shot.size_quality
               * shot.sharpness_quality)
    assert shot.face.quality == pytest.approx(product, rel=1e-5)
    assert (shot.aligned.width, shot.aligned.height, shot.aligned.encoding) == (112, 112, "bgr8")
    assert shot.aligned.header == shot.header
    expected = assess(frames[1][1], frames[1][0]).crop  # the crop of the paired image
    np.testing.assert_array_equal(convert.image_to_bgr(shot.aligned), expected)

    def reported():
        values = rig.latest_diagnostics(ns)
        return (values.get(f"gated: {GATE_YAW}") == "2" and values.get("selected faces") == "1"
                and values.get("active tracks") == "1")
    assert wait(reported, 5.0), rig.latest_diagnostics(ns)


def test_compressed_input_is_paired_too(rig):
    _, ns = rig.selector(input="compressed", min_hits=1)
    tracked = rig.listen(FaceArray, f"{ns}/faces/tracked")
    selected = rig.listen(SelectedFace, f"{ns}/faces/selected")
    pubs = rig.publishers(ns, CompressedImage, "image/compressed")
    image, face = drawn_face()
    h = header(5)
    out = send_frame(pubs, convert.bgr_to_compressed(image, h, "png"),
                     convert.faces_to_msg([face], h, WIDTH, HEIGHT), tracked)
    assert out.faces[0].track_id > 0 and out.faces[0].quality > 0
    assert wait(lambda: len(selected) == 1) and selected[0].header.stamp == h.stamp


def set_params(rig, node_name, **values):
    request = SetParameters.Request(
        parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
    client = rig.probe.create_client(SetParameters, f"{node_name}/set_parameters")
    try:
        assert client.wait_for_service(timeout_sec=TIMEOUT_S)
        for _ in range(3):  # a reply can be lost while the reply writer is being discovered
            future = client.call_async(request)
            if wait(future.done, TIMEOUT_S / 3):
                return future.result().results
        raise AssertionError("no answer from set_parameters")
    finally:
        rig.probe.destroy_client(client)


def test_parameters_are_validated_and_applied_at_run_time(rig):
    node, ns = rig.selector()
    name = f"{ns}/face_selector"
    (bad,) = set_params(rig, name, track_timeout_s=0.0)
    assert not bad.successful and "track_timeout_s must be > 0" in bad.reason
    (bad,) = set_params(rig, name, iou_threshold=0.0)
    assert not bad.successful and "iou_threshold must be in (0, 1]" in bad.reason
    (out_of_range,) = set_params(rig, name, max_abs_yaw_deg=120.0)
    assert not out_of_range.successful
    (read_only,) = set_params(rig, name, input="compressed")
    assert not read_only.successful and "read-only" in read_only.reason.lower()
    assert node.selector.tracker.config.timeout_s == 2.0
    assert node.selector.selector.config.max_abs_yaw_deg == 45.0
    ok = set_params(rig, name, max_abs_yaw_deg=30.0, min_hits=2, min_sharpness=0.5,
                    faces_cache_size=4, faces_wait_s=0.25)
    assert all(r.successful for r in ok)
    assert node.selector.selector.config.max_abs_yaw_deg == 30.0
    assert node.selector.selector.config.min_sharpness == 0.5
    assert node.selector.tracker.config.min_hits == 2
    assert (node.cache.config.faces_cache_size, node.cache.config.faces_wait_s) == (4, 0.25)


def test_invalid_start_parameters_fail_configure_naming_them(rig):
    node = SelectorNode(context=rig.context, namespace="/refused",
                        parameter_overrides=[Parameter("iou_threshold", value=0.0)])
    try:
        assert not node.configured and not node.active
        assert "iou_threshold must be in" in node.failure
    finally:
        node.destroy_node()


def test_bad_faces_and_images_are_skipped_counted_and_logged_once(rig, capfd):
    node, ns = rig.selector(min_hits=1)
    tracked = rig.listen(FaceArray, f"{ns}/faces/tracked")
    pubs = rig.publishers(ns)
    image, good = drawn_face()
    bad = [Face(good.box, 0.9, good.landmarks, HeadPose(float("nan"), 0.0, 0.0)),
           Face((10.0, 10.0, 10.0, 50.0), 0.9, good.landmarks, good.pose),
           Face(good.box, 0.9, good.landmarks + [5000.0, 0.0], good.pose)]
    for sec in (1, 2):
        out = send_frame(pubs, *frame_msgs(image, [bad[0], good, bad[1], bad[2]], header(sec)),
                         tracked)
        assert len(out.faces) == 1 and out.faces[0].quality > 0
    unknown = Image(header=header(3), height=HEIGHT, width=WIDTH, encoding="bayer_rggb8",
                    step=WIDTH, data=bytes(WIDTH * HEIGHT))
    pubs[1].publish(convert.faces_to_msg([good], header(3), WIDTH, HEIGHT))
    for _ in range(3):
        pubs[0].publish(unknown)
        if wait(lambda: node.stats.bad_input[convert.UNKNOWN_ENCODING] == 1, 3.0):
            break
    out = send_frame(pubs, *frame_msgs(image, [good], header(4)), tracked)
    assert len(out.faces) == 1, "the node keeps serving"

    def counted():
        values = rig.latest_diagnostics(ns)
        # A diagnostics message from after the last frame was paired (they come each second).
        return (values.get(f"bad input: {convert.UNKNOWN_ENCODING}") == "1"
                and values.get("face arrays paired") == "3"
                and sum(int(v) for k, v in values.items() if k.startswith("skipped:")) == 6)
    assert wait(counted, 5.0), rig.latest_diagnostics(ns)
    values = rig.latest_diagnostics(ns)
    assert values["skipped: zero-size box"] == "2"
    assert values["skipped: pose contains NaN or inf"] == "2"
    assert values["active tracks"] == "1" and values["face arrays paired"] == "3"
    logged = capfd.readouterr().err
    assert logged.count("face skipped (zero-size box;") == 1
    assert logged.count(f"{convert.UNKNOWN_ENCODING} (logged once") == 1


def test_faces_whose_image_never_arrives_are_counted_and_the_caches_stay_bounded(rig):
    node, ns = rig.selector(faces_wait_s=0.3, faces_cache_size=4, image_cache_size=3)
    tracked = rig.listen(FaceArray, f"{ns}/faces/tracked")
    image_pub, faces_pub = pubs = rig.publishers(ns)
    image, face = drawn_face()
    faces_pub.publish(convert.faces_to_msg([face], header(1), WIDTH, HEIGHT))
    assert wait(lambda: rig.latest_diagnostics(ns).get(f"bad input: {IMAGE_NEVER_ARRIVED}")
                == "1", 5.0), "a lone FaceArray expires within the 1 Hz diagnostics period"
    waiting = []
    for sec in range(10, 30):  # images lost, faces keep coming
        faces_pub.publish(convert.faces_to_msg([face], header(sec), WIDTH, HEIGHT))
        waiting.append(node.cache.waiting)
        time.sleep(0.01)
    for sec in range(40, 50):  # images without faces
        image_pub.publish(convert.bgr_to_image(image, header(sec)))
        time.sleep(0.02)
    assert wait(lambda: node.cache.unmatched[IMAGE_NEVER_ARRIVED] == 21, 5.0)
    assert max(waiting) <= 4 and node.cache.waiting == 0
    assert node.cache.images <= 3 and node.cache.images_unused >= 1
    out = send_frame(pubs, *frame_msgs(image, [face], header(60)), tracked)
    assert len(out.faces) == 1, "the node keeps serving"
    assert wait(lambda: rig.latest_diagnostics(ns).get("face arrays waiting for images") == "0")
