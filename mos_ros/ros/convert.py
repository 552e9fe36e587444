"""Conversions between ROS messages and the arrays and dataclasses of :mod:`mos_ros.core`.

Images and faces are converted by :mod:`mos_ros.core.messages` (which needs no rclpy); this
module adds what needs the generated classes: building messages, cv_bridge for encodings not
built in (where cv_bridge is installed; without it they are rejected), markers, detections,
camera info and diagnostics. Every unusable image raises :class:`ImageMessageError`, whose
``reason`` is a short fixed category (for counting and logging once).
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

from mos_ros.core import messages
from mos_ros.core.errors import ImageError
from mos_ros.core.markers import AxisArrow, Intrinsics
from mos_ros.core.messages import (  # noqa: F401 - re-exported: the nodes count these reasons
    BUILTIN_ENCODINGS, EMPTY_DATA, SIZE_MISMATCH, UNDECODABLE, UNKNOWN_ENCODING, ZERO_SIZE,
    ImageMessageError, compressed_to_bgr)
from mos_ros.core.messages import face_from_fields as face_from_msg  # noqa: F401
from mos_ros.core.types import Face
from mos_ros.msg import Face as FaceMsg
from mos_ros.msg import FaceArray

try:  # vision_msgs is optional: installed with ROS, not available as a wheel
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose
except ImportError:  # pragma: no cover - depends on the installation
    Detection2DArray = None

#: Distortion model named in the CameraInfo of an ideal (undistorted) camera.
PLUMB_BOB = "plumb_bob"
PLUMB_BOB_COEFFICIENTS = 5
#: Label of every face in vision_msgs output.
FACE_CLASS_ID = "face"
MARKER_NAMESPACE = "head_axes"


def _bridge():
    """cv_bridge's CvBridge where installed, else None (looked up once)."""
    if not hasattr(_bridge, "instance"):
        try:
            from cv_bridge import CvBridge  # optional, ROS only: looked up on first use
            _bridge.instance = CvBridge()
        except ImportError:
            _bridge.instance = None
    return _bridge.instance


def image_to_bgr(msg: Image) -> np.ndarray:
    """A ``sensor_msgs/Image`` as an (H, W, 3) BGR uint8 array (a view of ``msg.data`` for
    bgr8); encodings not built in go to cv_bridge. Raises :class:`ImageMessageError`."""
    return messages.image_to_bgr(msg, _bridge_to_bgr)


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
    fields = messages.face_fields(face)
    x, y, z, w = fields.pop("orientation")
    landmarks = [Point(x=u, y=v, z=0.0) for u, v in fields.pop("landmarks")]
    return FaceMsg(landmarks=landmarks, orientation=Quaternion(x=x, y=y, z=z, w=w), **fields)


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


def diagnostics(name: str, values: dict[str, str], level: int, message: str,
                hardware_id: str, header: Header) -> DiagnosticArray:
    """A DiagnosticArray with one status of ``level`` (0 OK, 1 WARN, 2 ERROR), the key/value
    pairs in order."""
    status = DiagnosticStatus(level=bytes([int(level)]),
                              name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    return DiagnosticArray(header=header, status=[status])
