"""image_source: plays a folder of images or a video file as a camera.

Publishes ``image`` (bgr8 Image), optionally ``image/compressed`` (JPEG), and ``camera_info``
(an undistorted pinhole camera with the ``hfov_deg`` field of view) at ``rate`` Hz, stamped
with the current time and ``frame_id``. Playback waits for a first subscriber, so no frame is
published into nothing, and stops after the last frame unless ``loop`` is set.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from mos_ros.core.errors import ImageError
from mos_ros.core.image_io import IMAGE_SUFFIXES, read_image
from mos_ros.core.markers import DEFAULT_HFOV_DEG, HFOV_LIMITS_DEG, intrinsics_from_hfov
from mos_ros.ros import convert
from mos_ros.ros.spin import run_node

DEFAULT_RATE_HZ = 10.0
RATE_LIMITS_HZ = (0.01, 1000.0)
DEFAULT_FRAME_ID = "camera_optical_frame"


def iter_frames(path: Path, on_error=None) -> Iterator[np.ndarray]:
    """BGR frames of an image folder (sorted by name) or of a video file."""
    if path.is_dir():
        for file in sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                yield read_image(file)
            except ImageError as exc:
                if on_error is not None:
                    on_error(exc)
        return
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ImageError(f"{path}: not an image folder or a readable video file")
    try:
        ok, frame = capture.read()
        while ok:
            yield frame
            ok, frame = capture.read()
    finally:
        capture.release()


class ImageSourceNode(Node):
    """Publishes the frames of a folder or video at a fixed rate, like a camera driver."""

    def __init__(self, **kwargs) -> None:
        super().__init__("image_source", **kwargs)
        describe = ParameterDescriptor
        self.declare_parameter("path", "", describe(description="Image folder or video file",
                                                    read_only=True))
        self.declare_parameter("rate", DEFAULT_RATE_HZ, describe(
            description="Frames per second", read_only=True, floating_point_range=[
                FloatingPointRange(from_value=RATE_LIMITS_HZ[0], to_value=RATE_LIMITS_HZ[1])]))
        self.declare_parameter("frame_id", DEFAULT_FRAME_ID, describe(
            description="Optical frame of the published images"))
        self.declare_parameter("loop", False, describe(description="Start over at the end"))
        self.declare_parameter("hfov_deg", DEFAULT_HFOV_DEG, describe(
            description="Horizontal field of view in camera_info, degrees",
            floating_point_range=[FloatingPointRange(from_value=HFOV_LIMITS_DEG[0],
                                                     to_value=HFOV_LIMITS_DEG[1])]))
        self.declare_parameter("max_frames", 0, describe(
            description="Stop after this many frames; 0: no limit"))
        self.declare_parameter("publish_compressed", False, describe(
            description="Also publish image/compressed (JPEG)"))
        self.path = Path(self.get_parameter("path").value)
        if not self.path.exists():
            raise FileNotFoundError(f"image_source: no image folder or video at '{self.path}'")
        self.published = 0
        self.finished = False
        self._frames = iter_frames(self.path, self._skip)
        self._pubs = {
            "image": self.create_publisher(Image, "image", qos_profile_sensor_data),
            "compressed": self.create_publisher(CompressedImage, "image/compressed",
                                                qos_profile_sensor_data),
            "info": self.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)}
        self._timer = self.create_timer(1.0 / self.get_parameter("rate").value, self._tick)

    def _skip(self, error: ImageError) -> None:
        self.get_logger().warning(f"skipping an unreadable file: {error}")

    def _param(self, name: str):
        return self.get_parameter(name).value

    def _tick(self) -> None:
        if self.finished or not (self._pubs["image"].get_subscription_count()
                                 or self._pubs["compressed"].get_subscription_count()):
            return
        frame = next(self._frames, None)
        if frame is None and self._param("loop") and self.published:
            self._frames = iter_frames(self.path, self._skip)
            frame = next(self._frames, None)
        if frame is None:
            return self._finish()
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self._param("frame_id"))
        height, width = frame.shape[:2]
        self._pubs["image"].publish(convert.bgr_to_image(frame, header))
        if self._param("publish_compressed"):
            self._pubs["compressed"].publish(convert.bgr_to_compressed(frame, header))
        intrinsics = intrinsics_from_hfov(width, height, self._param("hfov_deg"))
        self._pubs["info"].publish(convert.camera_info(intrinsics, width, height, header))
        self.published += 1
        if self.published == self._param("max_frames"):
            self._finish()

    def _finish(self) -> None:
        self.finished = True
        self._timer.cancel()
        self.get_logger().info(f"played {self.published} frame(s) of {self.path}")


def main(args=None) -> int:
    """Play a folder or video until its end (or forever with loop) or Ctrl-C."""
    return run_node(ImageSourceNode, args)


if __name__ == "__main__":
    sys.exit(main())
