"""Message <-> array conversion (mos_ros.ros.convert): images, faces, markers, camera info."""
import array

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from mos_ros.core.errors import ImageError
from mos_ros.core.markers import head_axis_arrows, intrinsics_from_hfov
from mos_ros.core.pose import euler_to_quaternion
from mos_ros.core.types import Face, HeadPose
from mos_ros.ros import convert

RNG = np.random.default_rng(7)
BGR = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)


def image_msg(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: int = 0) -> Image:
    """An Image whose rows carry ``pad`` bytes of padding after the pixels."""
    height = pixels.shape[0]
    rows = pixels.reshape(height, -1).view(np.uint8)
    padded = np.concatenate([rows, np.full((height, pad), 0xAB, np.uint8)], axis=1)
    return Image(height=height, width=pixels.shape[1], encoding=encoding,
                 is_bigendian=bigendian, step=padded.shape[1],
                 data=array.array("B", padded.tobytes()))


@pytest.mark.parametrize("pad", [0, 6])
@pytest.mark.parametrize("encoding,pixels,expected", [
    ("bgr8", BGR, BGR),
    ("rgb8", BGR[..., ::-1].copy(), BGR),
    ("bgra8", np.dstack([BGR, np.full(BGR.shape[:2], 255, np.uint8)]), BGR),
    ("rgba8", np.dstack([BGR[..., ::-1], np.zeros(BGR.shape[:2], np.uint8)]), BGR),
    ("mono8", BGR[..., 0].copy(), np.dstack([BGR[..., 0]] * 3)),
])
def test_camera_encodings_become_bgr_honouring_row_padding(encoding, pixels, expected, pad):
    out = convert.image_to_bgr(image_msg(pixels, encoding, pad))
    assert out.shape == (6, 10, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_bgr8_is_a_zero_copy_view_of_the_message_buffer():
    msg = image_msg(BGR, "bgr8", pad=4)
    out = convert.image_to_bgr(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize("bigendian", [0, 1])
def test_mono16_is_scaled_to_8_bits_in_either_byte_order(bigendian):
    values = (BGR[..., 1].astype(np.uint16) << 8) | 0x7F
    pixels = values.astype(">u2" if bigendian else "<u2")
    out = convert.image_to_bgr(image_msg(pixels, "mono16", bigendian=bigendian))
    np.testing.assert_array_equal(out[..., 2], BGR[..., 1])


@pytest.mark.parametrize("encoding,order", [("yuv422", "UYVY"), ("yuyv", "YUYV"),
                                            ("yuv422_yuy2", "YUYV")])
def test_packed_yuv_422_is_converted(encoding, order):
    colour = np.array([[[40, 160, 220]]], np.uint8)  # BGR
    b, g, r = colour[0, 0].astype(float)
    # BT.601 video range, what cameras send in 4:2:2.
    y = round(16 + 0.257 * r + 0.504 * g + 0.098 * b)
    u = round(128 - 0.148 * r - 0.291 * g + 0.439 * b)
    v = round(128 + 0.439 * r - 0.368 * g - 0.071 * b)
    pair = [u, y, v, y] if order == "UYVY" else [y, u, y, v]
    packed = np.tile(np.array(pair, np.uint8), (4, 4)).reshape(4, 8, 2)
    out = convert.image_to_bgr(image_msg(packed, encoding))
    assert out.shape == (4, 8, 3)
    assert np.abs(out.astype(int) - colour.astype(int)).max() <= 3


@pytest.mark.parametrize("msg,reason", [
    (Image(height=2, width=2, encoding="bayer_rggb8", step=2, data=array.array("B", [0] * 4)),
     convert.UNKNOWN_ENCODING),
    (Image(height=2, width=2, encoding="bgr8", step=6, data=array.array("B", [0] * 5)),
     convert.SIZE_MISMATCH),
    (Image(height=2, width=2, encoding="bgr8", step=4, data=array.array("B", [0] * 8)),
     convert.SIZE_MISMATCH),
    (Image(height=2, width=3, encoding="yuyv", step=6, data=array.array("B", [0] * 12)),
     convert.SIZE_MISMATCH),
    (Image(height=2, width=2, encoding="bgr8", step=6), convert.EMPTY_DATA),
    (Image(height=0, width=0, encoding="bgr8", step=0), convert.ZERO_SIZE),
    (CompressedImage(format="jpeg", data=array.array("B", b"\xff\xd8 not a jpeg")),
     convert.UNDECODABLE),
    (CompressedImage(format="jpeg"), convert.EMPTY_DATA),
])
def test_unusable_messages_raise_image_error_with_a_reason(msg, reason):
    to_bgr = convert.compressed_to_bgr if isinstance(msg, CompressedImage) else \
        convert.image_to_bgr
    with pytest.raises(ImageError) as error:
        to_bgr(msg)
    assert error.value.reason == reason
    assert str(error.value).startswith(reason + ": ") and len(str(error.value)) > len(reason) + 5


def test_compressed_round_trip_and_bgr_image_message():
    header = Header(frame_id="cam")
    header.stamp.sec = 3
    image = cv2.GaussianBlur(cv2.resize(BGR, (80, 48)), (5, 5), 0)
    png = convert.bgr_to_compressed(image, header, fmt="png")
    np.testing.assert_array_equal(convert.compressed_to_bgr(png), image)
    jpeg = convert.bgr_to_compressed(image, header)
    assert jpeg.format == "jpeg" and jpeg.header == header
    assert np.abs(convert.compressed_to_bgr(jpeg).astype(int) - image).mean() < 8
    msg = convert.bgr_to_image(image, header)
    assert (msg.encoding, msg.step, msg.header) == ("bgr8", 80 * 3, header)
    assert isinstance(msg.data, array.array)
    np.testing.assert_array_equal(convert.image_to_bgr(msg), image)


def make_face(yaw=20.0, pitch=-10.0, roll=5.0):
    landmarks = np.array([[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]], np.float32)
    return Face(box=(5.0, 8.0, 40.0, 50.0), score=0.8, landmarks=landmarks,
                pose=HeadPose(yaw, pitch, roll))


def test_face_message_carries_box_landmarks_angles_and_the_pose_quaternion():
    face = make_face()
    msg = convert.face_to_msg(face)
    q = [msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w]
    np.testing.assert_allclose(q, euler_to_quaternion(20.0, -10.0, 5.0), atol=1e-12)
    assert (msg.track_id, msg.quality) == (0, -1.0)
    back = convert.face_from_msg(msg)
    np.testing.assert_allclose(back.box, face.box)
    np.testing.assert_allclose(back.landmarks, face.landmarks)
    assert (back.pose.yaw, back.pose.pitch, back.pose.roll) == pytest.approx((20.0, -10.0, 5.0))
    header = Header(frame_id="cam")
    array_msg = convert.faces_to_msg([face, face], header, 640, 480)
    assert (array_msg.header, array_msg.image_width, array_msg.image_height) == (header, 640, 480)
    assert len(array_msg.faces) == 2


def test_markers_start_with_deleteall_then_three_coloured_arrows_per_face():
    header = Header(frame_id="cam")
    intr = intrinsics_from_hfov(640, 480)
    faces = [make_face(), make_face(yaw=-40.0)]
    msg = convert.arrows_to_markers([head_axis_arrows(f, intr, 0.1) for f in faces], header)
    assert msg.markers[0].action == Marker.DELETEALL
    arrows = msg.markers[1:]
    assert len(arrows) == 6 and len({m.id for m in arrows}) == 6
    assert all(m.type == Marker.ARROW and m.header == header for m in arrows)
    red = arrows[3]
    assert (red.color.r, red.color.g, red.color.b) == (1.0, 0.0, 0.0)
    q = [red.pose.orientation.x, red.pose.orientation.y, red.pose.orientation.z,
         red.pose.orientation.w]
    np.testing.assert_allclose(q, euler_to_quaternion(-40.0, -10.0, 5.0), atol=1e-6)
    assert red.scale.x == pytest.approx(0.1)


def test_camera_info_holds_the_pinhole_model():
    intr = intrinsics_from_hfov(640, 480, 90.0)
    info = convert.camera_info(intr, 640, 480, Header(frame_id="cam"))
    np.testing.assert_allclose(info.k, [320.0, 0.0, 320.0, 0.0, 320.0, 240.0, 0.0, 0.0, 1.0])
    assert info.p[0] == pytest.approx(320.0) and info.p[3] == 0.0 and list(info.d) == [0.0] * 5


@pytest.mark.skipif(convert.Detection2DArray is not None, reason="vision_msgs is installed")
def test_without_vision_msgs_no_detections_are_built():
    assert convert.faces_to_detections([make_face()], Header()) is None


@pytest.mark.skipif(convert.Detection2DArray is None,
                    reason="vision_msgs has no wheel; it is tested where ROS installs it")
def test_detections_carry_the_face_boxes():
    msg = convert.faces_to_detections([make_face()], Header(frame_id="cam"))
    box = msg.detections[0].bbox
    assert (box.center.position.x, box.size_x) == (22.5, 35.0)
    assert msg.detections[0].results[0].hypothesis.class_id == "face"
