"""Conversions between ROS messages and the arrays and dataclasses of :mod:`mos_ros.core`.

Images: the encodings cameras send (bgr8, rgb8, mono8, mono16, bgra8, rgba8, and the packed
4:2:2 YUV formats) are converted here with numpy/OpenCV, zero-copy for bgr8 (a strided view of
the message buffer that honours row padding). Other encodings go to cv_bridge where it is
installed; without it they are rejected. Every unusable image raises :class:`ImageMessageError`,
whose ``reason`` is a short fixed category (for counting and logging once) and whose message
gives the details.
"""
from __future__ import annotations

import array
from typing import Iterable

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Quaternion
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from mos_ros.core.errors import ImageError
from mos_ros.core.markers import AxisArrow, Intrinsics
from mos_ros.core.pose import euler_to_quaternion
from mos_ros.core.types import Face, HeadPose
from mos_ros.msg import Face as FaceMsg
from mos_ros.msg import FaceArray

try:  # vision_msgs is optional: installed with ROS, not available as a wheel
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose
except ImportError:  # pragma: no cover - depends on the installation
    Detection2DArray = None

#: Short reasons an image message is rejected (keys of the bad-input counters).
UNKNOWN_ENCODING = "unknown encoding"
SIZE_MISMATCH = "step/size mismatch"
EMPTY_DATA = "empty data"
UNDECODABLE = "undecodable compressed image"
ZERO_SIZE = "zero-size image"

#: Encodings converted here: name -> (channels, numpy dtype, OpenCV conversion to BGR or None).
BUILTIN_ENCODINGS = {
    "bgr8": (3, np.uint8, None),
    "rgb8": (3, np.uint8, cv2.COLOR_RGB2BGR),
    "mono8": (1, np.uint8, cv2.COLOR_GRAY2BGR),
    "8uc1": (1, np.uint8, cv2.COLOR_GRAY2BGR),
    "8uc3": (3, np.uint8, None),
    "mono16": (1, np.uint16, cv2.COLOR_GRAY2BGR),
    "bgra8": (4, np.uint8, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, np.uint8, cv2.COLOR_RGBA2BGR),
    "yuv422": (2, np.uint8, cv2.COLOR_YUV2BGR_UYVY),
    "uyvy": (2, np.uint8, cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": (2, np.uint8, cv2.COLOR_YUV2BGR_YUY2),
    "yuyv": (2, np.uint8, cv2.COLOR_YUV2BGR_YUY2),
}
#: The 4:2:2 formats pack two pixels into four bytes, so their width must be even.
PACKED_422 = frozenset({"yuv422", "uyvy", "yuv422_yuy2", "yuyv"})
#: Distortion model named in the CameraInfo of an ideal (undistorted) camera.
PLUMB_BOB = "plumb_bob"
PLUMB_BOB_COEFFICIENTS = 5
#: Label of every face in vision_msgs output.
FACE_CLASS_ID = "face"
MARKER_NAMESPACE = "head_axes"


class ImageMessageError(ImageError):
    """An image message that cannot be used; ``reason`` is one of the fixed categories."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _bridge():
    """cv_bridge's CvBridge where installed, else None (looked up once)."""
    if not hasattr(_bridge, "instance"):
        try:
            from cv_bridge import CvBridge
            _bridge.instance = CvBridge()
        except ImportError:
            _bridge.instance = None
    return _bridge.instance


def _check_size(msg: Image | CompressedImage) -> None:
    if len(msg.data) == 0:
        raise ImageMessageError(EMPTY_DATA, "the message carries no pixel data")


def image_to_bgr(msg: Image) -> np.ndarray:
    """A ``sensor_msgs/Image`` as an (H, W, 3) BGR uint8 array (a view of ``msg.data`` for
    bgr8). Raises :class:`ImageMessageError` saying why when it cannot be converted."""
    if msg.height == 0 or msg.width == 0:
        raise ImageMessageError(ZERO_SIZE, f"image is {msg.width}x{msg.height}")
    _check_size(msg)
    encoding = msg.encoding.lower()
    if encoding not in BUILTIN_ENCODINGS:
        return _bridge_to_bgr(msg)
    channels, dtype, conversion = BUILTIN_ENCODINGS[encoding]
    row_bytes = msg.width * channels * np.dtype(dtype).itemsize
    if msg.step < row_bytes or len(msg.data) != msg.step * msg.height:
        raise ImageMessageError(
            SIZE_MISMATCH, f"{encoding} {msg.width}x{msg.height} needs step >= {row_bytes} and "
            f"step*height bytes; got step {msg.step} and {len(msg.data)} bytes")
    if encoding in PACKED_422 and msg.width % 2:
        raise ImageMessageError(SIZE_MISMATCH, f"{encoding} needs an even width, got {msg.width}")
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, :row_bytes]
    if dtype == np.uint16:
        order = ">" if msg.is_bigendian else "<"
        pixels = np.ascontiguousarray(rows).view(f"{order}u2").astype(np.uint16)
        pixels = (pixels >> 8).astype(np.uint8)
    else:
        pixels = rows
    pixels = pixels.reshape(msg.height, msg.width, channels)
    if conversion is None:
        return pixels
    return cv2.cvtColor(np.ascontiguousarray(pixels), conversion)


def _bridge_to_bgr(msg: Image) -> np.ndarray:
    bridge = _bridge()
    known = ", ".join(sorted(BUILTIN_ENCODINGS))
    if bridge is None:
        raise ImageMessageError(UNKNOWN_ENCODING, f"'{msg.encoding}' is not supported without "
                                f"cv_bridge (supported: {known})")
    try:
        return np.asarray(bridge.imgmsg_to_cv2(msg, desired_encoding="bgr8"))
    except Exception as exc:  # noqa: BLE001 - CvBridgeError or a numpy error, both bad input
        raise ImageMessageError(UNKNOWN_ENCODING, f"cv_bridge cannot convert "
                                f"'{msg.encoding}' to bgr8: {exc}") from None


def compressed_to_bgr(msg: CompressedImage) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` (JPEG, PNG, ...) decoded to BGR uint8."""
    _check_size(msg)
    image = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageMessageError(UNDECODABLE, f"OpenCV cannot decode {len(msg.data)} bytes of "
                                f"format '{msg.format}' (corrupt or unsupported)")
    if image.size == 0:
        raise ImageMessageError(ZERO_SIZE, "the decoded image has no pixels")
    return image


def bgr_to_image(image: np.ndarray, header: Header) -> Image:
    """A BGR uint8 (H, W, 3) array as a bgr8 ``sensor_msgs/Image`` with ``header``."""
    height, width = image.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding="bgr8", is_bigendian=0,
                step=width * 3)
    msg.data = array.array("B", np.ascontiguousarray(image, dtype=np.uint8).tobytes())
    return msg


def bgr_to_compressed(image: np.ndarray, header: Header, fmt: str = "jpeg") -> CompressedImage:
    """A BGR image encoded as a ``sensor_msgs/CompressedImage`` (``fmt``: jpeg or png)."""
    ok, data = cv2.imencode(".jpg" if fmt == "jpeg" else f".{fmt}", image)
    if not ok:
        raise ImageError(f"OpenCV cannot encode the image as {fmt}")
    return CompressedImage(header=header, format=fmt, data=array.array("B", data.tobytes()))


def face_to_msg(face: Face) -> FaceMsg:
    """A core :class:`Face` as ``mos_ros/Face`` (pixels, degrees, optical-frame quaternion)."""
    x, y, z, w = euler_to_quaternion(face.pose.yaw, face.pose.pitch, face.pose.roll)
    return FaceMsg(
        x_min=float(face.box[0]), y_min=float(face.box[1]), x_max=float(face.box[2]),
        y_max=float(face.box[3]), score=float(face.score),
        landmarks=[Point(x=float(u), y=float(v), z=0.0) for u, v in face.landmarks],
        yaw=float(face.pose.yaw), pitch=float(face.pose.pitch), roll=float(face.pose.roll),
        orientation=Quaternion(x=float(x), y=float(y), z=float(z), w=float(w)),
        track_id=0, quality=-1.0)


def face_from_msg(msg: FaceMsg) -> Face:
    """A ``mos_ros/Face`` back as a core :class:`Face` (the inverse of :func:`face_to_msg`)."""
    landmarks = np.array([[p.x, p.y] for p in msg.landmarks], dtype=np.float32)
    return Face(box=(msg.x_min, msg.y_min, msg.x_max, msg.y_max), score=msg.score,
                landmarks=landmarks, pose=HeadPose(msg.yaw, msg.pitch, msg.roll))


def faces_to_msg(faces: Iterable[Face], header: Header, width: int, height: int) -> FaceArray:
    """All faces of one image, with the image's header and size."""
    return FaceArray(header=header, image_width=width, image_height=height,
                     faces=[face_to_msg(face) for face in faces])


def arrows_to_markers(arrows_per_face: Iterable[list[AxisArrow]], header: Header) -> MarkerArray:
    """rviz ARROW markers (pose-defined: arrow along the orientation's +x), preceded by a
    DELETEALL so that markers of faces no longer seen vanish."""
    markers = [Marker(header=header, ns=MARKER_NAMESPACE, action=Marker.DELETEALL)]
    for face_index, arrows in enumerate(arrows_per_face):
        for arrow in arrows:
            marker = Marker(header=header, ns=MARKER_NAMESPACE, type=Marker.ARROW,
                            action=Marker.ADD, id=face_index * len(arrows) + arrow.axis)
            marker.pose.position = Point(x=float(arrow.position[0]),
                                         y=float(arrow.position[1]),
                                         z=float(arrow.position[2]))
            qx, qy, qz, qw = (float(v) for v in arrow.orientation)
            marker.pose.orientation = Quaternion(x=qx, y=qy, z=qz, w=qw)
            marker.scale.x, marker.scale.y, marker.scale.z = arrow.scale
            marker.color = ColorRGBA(r=arrow.rgba[0], g=arrow.rgba[1], b=arrow.rgba[2],
                                     a=arrow.rgba[3])
            markers.append(marker)
    return MarkerArray(markers=markers)


def faces_to_detections(faces: Iterable[Face], header: Header):
    """``vision_msgs/Detection2DArray`` of the faces (class "face"); None without vision_msgs.

    Boxes are centre and size in pixels (vision_msgs 4, Humble and newer).
    """
    if Detection2DArray is None:
        return None
    detections = []
    for face in faces:
        detection = Detection2D(header=header)
        detection.bbox.center.position.x = (face.box[0] + face.box[2]) / 2.0
        detection.bbox.center.position.y = (face.box[1] + face.box[3]) / 2.0
        detection.bbox.size_x, detection.bbox.size_y = float(face.width), float(face.height)
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = FACE_CLASS_ID
        hypothesis.hypothesis.score = float(face.score)
        detection.results.append(hypothesis)
        detections.append(detection)
    return Detection2DArray(header=header, detections=detections)


def camera_info(intrinsics: Intrinsics, width: int, height: int, header: Header) -> CameraInfo:
    """CameraInfo of an undistorted pinhole camera with ``intrinsics``."""
    k = intrinsics.matrix()
    projection = [k[0, 0], 0.0, k[0, 2], 0.0, 0.0, k[1, 1], k[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    return CameraInfo(header=header, width=width, height=height, distortion_model=PLUMB_BOB,
                      d=[0.0] * PLUMB_BOB_COEFFICIENTS, k=[float(v) for v in k.reshape(-1)],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], p=projection)


def diagnostics(name: str, values: dict[str, str], ok: bool, message: str, hardware_id: str,
                header: Header) -> DiagnosticArray:
    """A DiagnosticArray with one status: OK or WARN, the key/value pairs in order."""
    status = DiagnosticStatus(level=DiagnosticStatus.OK if ok else DiagnosticStatus.WARN,
                              name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    return DiagnosticArray(header=header, status=[status])
