"""Image and face messages as arrays and dataclasses, for any message implementation.

The functions read and write attributes only (``height``, ``width``, ``encoding``, ``step``,
``data``, ...), so they serve rclpy's generated classes in the nodes and rosbags' classes in
``mos bag`` alike, with no ROS installation. Images: the encodings cameras send (bgr8, rgb8,
mono8, mono16, bgra8, rgba8, and the packed 4:2:2 YUV formats) become BGR uint8, zero-copy for
bgr8 (a strided view that honours row padding). Every unusable image raises
:class:`ImageMessageError`, whose ``reason`` is a short fixed category (for counting and
logging once) and whose message gives the details.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from mos_ros.core.errors import ImageError
from mos_ros.core.pose import euler_to_quaternion
from mos_ros.core.types import Face, HeadPose

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
#: Face message fields that the detector does not set: untracked, quality not assessed.
UNTRACKED = {"track_id": 0, "quality": -1.0}


class ImageMessageError(ImageError):
    """An image message that cannot be used; ``reason`` is one of the fixed categories."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def reject_unknown_encoding(msg: Any) -> np.ndarray:
    """The default for encodings not in :data:`BUILTIN_ENCODINGS`: refuse, naming them."""
    known = ", ".join(sorted(BUILTIN_ENCODINGS))
    raise ImageMessageError(UNKNOWN_ENCODING, f"'{msg.encoding}' is not supported "
                            f"(supported: {known})")


def _check_data(msg: Any) -> None:
    if len(msg.data) == 0:
        raise ImageMessageError(EMPTY_DATA, "the message carries no pixel data")


def image_to_bgr(msg: Any,
                 other_encoding: Callable[[Any], np.ndarray] = reject_unknown_encoding
                 ) -> np.ndarray:
    """A ``sensor_msgs/Image`` as an (H, W, 3) BGR uint8 array (a view of ``msg.data`` for
    bgr8). Encodings not built in go to ``other_encoding`` (e.g. cv_bridge). Raises
    :class:`ImageMessageError` saying why when the image cannot be converted."""
    if msg.height == 0 or msg.width == 0:
        raise ImageMessageError(ZERO_SIZE, f"image is {msg.width}x{msg.height}")
    _check_data(msg)
    encoding = msg.encoding.lower()
    if encoding not in BUILTIN_ENCODINGS:
        return other_encoding(msg)
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


def compressed_to_bgr(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` (JPEG, PNG, ...) decoded to BGR uint8."""
    _check_data(msg)
    image = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageMessageError(UNDECODABLE, f"OpenCV cannot decode {len(msg.data)} bytes of "
                                f"format '{msg.format}' (corrupt or unsupported)")
    if image.size == 0:
        raise ImageMessageError(ZERO_SIZE, "the decoded image has no pixels")
    return image


def face_fields(face: Face) -> dict[str, Any]:
    """The ``mos_ros/Face`` fields of a detected face, as plain values: floats for the box,
    score and angles, ``landmarks`` as five (x, y) pixel pairs, ``orientation`` as the
    optical-frame quaternion (x, y, z, w), plus :data:`UNTRACKED`."""
    return {
        "x_min": float(face.box[0]), "y_min": float(face.box[1]),
        "x_max": float(face.box[2]), "y_max": float(face.box[3]),
        "score": float(face.score),
        "landmarks": [(float(u), float(v)) for u, v in face.landmarks],
        "yaw": float(face.pose.yaw), "pitch": float(face.pose.pitch),
        "roll": float(face.pose.roll),
        "orientation": tuple(float(q) for q in euler_to_quaternion(
            face.pose.yaw, face.pose.pitch, face.pose.roll)),
        **UNTRACKED,
    }


def face_from_fields(msg: Any) -> Face:
    """A ``mos_ros/Face`` message (any implementation) back as a core :class:`Face`."""
    landmarks = np.array([[p.x, p.y] for p in msg.landmarks], dtype=np.float32)
    return Face(box=(msg.x_min, msg.y_min, msg.x_max, msg.y_max), score=msg.score,
                landmarks=landmarks, pose=HeadPose(msg.yaw, msg.pitch, msg.roll))
