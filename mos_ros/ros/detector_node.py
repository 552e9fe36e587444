"""mos_detector: camera images in; faces, head-pose axis markers and diagnostics out, and with
the camera's camera_info the heads in 3-D (faces/poses, and a position in every Face).

A lifecycle node: configure loads the model, activate subscribes, deactivate unsubscribes,
cleanup frees the model. The subscription only keeps the newest frame; a worker thread runs
the network on it, so a slow model never works through a backlog (displaced frames are
counted as dropped).
"""
from __future__ import annotations

import sys
import time

from geometry_msgs.msg import PoseArray
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from mos_ros.backends import device_options
from mos_ros.core.draw import draw_faces
from mos_ros.core.errors import ImageError
from mos_ros.core.markers import (head_axis_arrows, intrinsics_from_hfov, intrinsics_from_k,
                                  placed_head_arrows)
from mos_ros.detector import FaceDetector, backend_for_path
from mos_ros.msg import FaceArray
from mos_ros.resources import default_model_path
from mos_ros.ros import convert, faces3d, params
from mos_ros.ros.node_base import FAILURE, OUTPUT_DEPTH, SUCCESS, MosNode
from mos_ros.ros.stats import MS_PER_S
from mos_ros.ros.worker import LatestWorker
from mos_ros.ros.spin import run_node

#: Reason under which unexpected inference failures are counted.
INFERENCE_ERROR = "inference error"


class DetectorNode(MosNode):
    """Runs MOS on the newest camera frame and publishes faces, markers and diagnostics."""

    TASK = "face detection"

    def __init__(self, **kwargs) -> None:
        super().__init__("mos_detector", params.SPECS, **kwargs)
        self.detector: FaceDetector | None = None
        self.model = ""
        self.worker = LatestWorker(self._process, name="mos_inference")
        self._camera_info = None
        self.heads = faces3d.HeadPlacer()
        self._pubs = {}
        self.start()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model and create the publishers; a model that cannot load fails the
        transition with the reason (log and diagnostics, ERROR)."""
        if super().on_configure(state) != SUCCESS:
            return FAILURE
        v = self.values
        try:
            self.model = v["model_path"] or str(default_model_path(v["device"], v["backend"]))
            backend = v["backend"] or backend_for_path(self.model)
            options = device_options(backend, v["device"], v["threads"])
            self.detector = FaceDetector.open(self.model, backend, options,
                                              settings=params.decode_settings(v),
                                              input_size=v["input_size"])
        except Exception as exc:  # noqa: BLE001 - any load failure fails the transition
            self.configured = False
            return self.fail(f"cannot load the model {self.model or '(default)'}: {exc}")
        self.get_logger().info(f"loaded {self.model} ({self.detector.backend.name} on "
                               f"{self.detector.backend.device})")
        pub = self.create_publisher
        self._pubs = {"faces": pub(FaceArray, "faces", OUTPUT_DEPTH),
                      "poses": pub(PoseArray, "faces/poses", OUTPUT_DEPTH),
                      "markers": pub(MarkerArray, "faces/markers", OUTPUT_DEPTH),
                      "image": pub(Image, "faces/image", OUTPUT_DEPTH)}
        if convert.Detection2DArray is None:
            self.get_logger().info("vision_msgs is not installed: not publishing 'detections'")
        else:
            self._pubs["detections"] = pub(convert.Detection2DArray, "detections", OUTPUT_DEPTH)
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the camera and start the inference worker."""
        compressed = self.values["input"] == "compressed"
        kind, topic = (CompressedImage, "image/compressed") if compressed else (Image, "image")
        self.subscribe_frames(kind, topic, self._on_image)
        self.subscribe_frames(CameraInfo, "camera_info", self._on_camera_info)
        self.worker.start()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop the worker."""
        result = super().on_deactivate(state)
        self.worker.stop()
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the publishers and free the model."""
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything, from whichever state."""
        result = super().on_shutdown(state)
        self.worker.stop()
        self._release()
        return result

    def destroy_node(self) -> None:
        """Stop the worker thread before the node goes."""
        self.drop_frame_subscriptions()
        self.worker.stop()
        super().destroy_node()

    def _release(self) -> None:
        for publisher in self._pubs.values():
            self.destroy_publisher(publisher)
        self._pubs, self.detector = {}, None

    def _on_image(self, msg) -> None:
        self.stats.frame_received(replaced_unprocessed=self.worker.put(msg))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg
        self.heads.set_camera_info(msg)

    def _process(self, msg) -> None:
        start = time.perf_counter()
        try:
            if isinstance(msg, CompressedImage):
                image = convert.compressed_to_bgr(msg)
            else:
                image = convert.image_to_bgr(msg)
            faces = self.detector.detect(image)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the node
            reason = getattr(exc, "reason", "bad image" if isinstance(exc, ImageError)
                             else INFERENCE_ERROR)
            if self.stats.bad_frame(reason):
                self.get_logger().warning(f"frame skipped ({reason}; logged once, counted "
                                          f"in /diagnostics): {exc}")
            return
        height, width = image.shape[:2]
        header = msg.header
        faces_msg = convert.faces_to_msg(faces, header, width, height)
        heads, scale = self.heads.place(faces, width, height), self.values["marker_scale"]
        if heads is None:
            intrinsics = self._intrinsics(width, height)
            arrows = [head_axis_arrows(face, intrinsics, scale) for face in faces]
        else:
            faces3d.set_positions(faces_msg.faces, heads)
            self._pubs["poses"].publish(faces3d.pose_array(heads, header))
            arrows = [placed_head_arrows(head, scale) for head in heads]
        if (change := self.heads.status_change()) is not None:
            self.get_logger().info(f"{faces3d.DIAGNOSTICS_KEY}: {change}")
        self._pubs["faces"].publish(faces_msg)
        self._pubs["markers"].publish(convert.arrows_to_markers(arrows, header))
        if self.values["publish_annotated"]:
            self._pubs["image"].publish(convert.bgr_to_image(draw_faces(image, faces), header))
        if "detections" in self._pubs:
            self._pubs["detections"].publish(convert.faces_to_detections(faces, header))
        self.stats.frame_processed((time.perf_counter() - start) * MS_PER_S)

    def _intrinsics(self, width: int, height: int):
        info = self._camera_info
        calibrated = info and intrinsics_from_k(info.k, (info.width, info.height),
                                                (width, height))
        return calibrated or intrinsics_from_hfov(width, height, self.values["default_hfov_deg"])

    def report(self) -> tuple[dict[str, str], str]:
        """Rates, latency, drops and bad input, with the model and where it runs."""
        values = dict(self.stats.summary(), model=self.model,
                      **{faces3d.DIAGNOSTICS_KEY: self.heads.status})
        if self.detector is None:
            return values, ""
        backend = self.detector.backend
        values.update(backend=backend.name, device=backend.device)
        return values, backend.device

    def problems(self, changes) -> list[str]:
        """Choice and threshold rules, on the merged values."""
        return params.problems(changes, self.values)

    def apply(self, changes) -> None:
        """Thresholds and input size take effect on the next frame."""
        if self.detector is not None:
            self.detector.settings = params.decode_settings(self.values)
            self.detector.input_size = self.values["input_size"]


def main(args=None) -> int:
    """Run the detector node until Ctrl-C or shutdown."""
    return run_node(DetectorNode, args)


if __name__ == "__main__":
    sys.exit(main())
