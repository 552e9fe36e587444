"""In-process bringup: the parameter file as rcl applies it, the image source as a camera,
and run_demo."""
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CameraInfo, Image

from mos_ros.core.markers import intrinsics_from_hfov
from mos_ros.ros import params, selector_params
from mos_ros.ros.bringup import rcl_arguments, run_demo
from mos_ros.ros.image_source import ImageSourceNode
from mos_ros.ros.testing import spin_until

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 20.0


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:02d}.png"), rng.integers(0, 256, (90, 120, 3), np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


def rcl_parameters(params_file, node_name, namespace=""):
    """The parameters rcl gives ``node_name`` in ``namespace`` from ``params_file``."""
    context = Context()
    rclpy.init(args=rcl_arguments(params_file), context=context)
    try:
        node = rclpy.create_node(node_name, namespace=namespace, context=context)
        values = {name: p.value for name, p in node._parameter_overrides.items()}
        node.destroy_node()
        return values
    finally:
        rclpy.try_shutdown(context=context)


@pytest.mark.parametrize("namespace", ["", "/robot", "/robot/head"])
def test_shipped_parameter_file_sets_every_detector_parameter_in_any_namespace(namespace):
    loaded = rcl_parameters(ROOT / "config/mos.yaml", "mos_detector", namespace)
    declared = {spec.name: spec for spec in params.SPECS}
    assert set(loaded) == set(declared)
    for name, value in loaded.items():
        assert type(value) is type(declared[name].default), name


@pytest.mark.parametrize("namespace", ["", "/robot"])
def test_shipped_parameter_file_sets_every_selector_parameter_to_its_default(namespace):
    loaded = rcl_parameters(ROOT / "config/mos.yaml", "face_selector", namespace)
    declared = {spec.name: spec.default for spec in selector_params.SPECS}
    assert loaded == declared
    assert all(type(value) is type(declared[name]) for name, value in loaded.items())


def test_image_source_plays_a_folder_once_with_a_pinhole_camera_info(images):
    context = Context()
    rclpy.init(args=[], context=context)
    executor = SingleThreadedExecutor(context=context)
    try:
        source = ImageSourceNode(context=context, parameter_overrides=[
            rclpy.parameter.Parameter("path", value=str(images)),
            rclpy.parameter.Parameter("rate", value=20.0),
            rclpy.parameter.Parameter("hfov_deg", value=90.0),
            rclpy.parameter.Parameter("frame_id", value="cam")])
        viewer = rclpy.create_node("viewer", context=context)
        frames, infos = [], []
        qos = rclpy.qos.qos_profile_sensor_data
        viewer.create_subscription(Image, "image", frames.append, qos)
        viewer.create_subscription(CameraInfo, "camera_info", infos.append, qos)
        executor.add_node(source)
        executor.add_node(viewer)
        assert spin_until(executor, lambda: source.finished, TIMEOUT_S)
        spin_until(executor, lambda: len(infos) == 3, 2.0)
        assert source.published == 3  # the text file is skipped with a warning
        assert len(frames) == 3 and frames[0].header.frame_id == "cam"
        assert (frames[0].width, frames[0].height, frames[0].encoding) == (120, 90, "bgr8")
        expected = intrinsics_from_hfov(120, 90, 90.0)
        np.testing.assert_allclose(infos[0].k, expected.matrix().reshape(-1))
        assert infos[0].header.stamp == frames[0].header.stamp
    finally:
        executor.shutdown()
        rclpy.try_shutdown(context=context)


def test_run_demo_writes_annotated_frames_and_stops_after_n(images, model, tmp_path):
    lines = []
    summary = run_demo(images, tmp_path / "out", model, frames=4, rate_hz=5.0,
                       detector_params={"score_threshold": 0.0, "keep_top_k": 2,
                                        "top_k": 20, "input_size": 128},
                       timeout_s=60.0, echo=lines.append)
    assert len(summary.faces_per_frame) >= 4 and set(summary.faces_per_frame) == {2}
    assert len(summary.written) >= 4 and summary.frames_published >= 4
    assert summary.elapsed_s < 60.0
    written = cv2.imread(summary.written[0])
    assert written.shape == (90, 120, 3)
    assert any("2 face(s)" in line for line in lines)


def test_run_demo_writes_the_selected_crops_of_face_selector(images, model, tmp_path):
    """At score threshold 0 most faces are low-score guesses: gates open wide, every
    assessable face is a shot."""
    lines = []
    wide_open = {"max_abs_yaw_deg": 90.0, "max_abs_pitch_deg": 90.0,
                 "max_abs_roll_deg": 180.0, "min_inter_eye_px": 0.0, "min_sharpness": 0.0,
                 "min_hits": 1, "min_interval_s": 0.0, "improvement_margin": 0.0}
    summary = run_demo(images, tmp_path / "out", model, frames=3, rate_hz=5.0,
                       detector_params={"score_threshold": 0.0, "keep_top_k": 2,
                                        "top_k": 20, "input_size": 128},
                       selector_params=wide_open, timeout_s=60.0, echo=lines.append)
    assert summary.selected, "no crop written"
    for path in map(Path, summary.selected):
        assert path.parent == tmp_path / "out" / "selected"
        assert re.fullmatch(r"track[1-9]\d*_\d{5}\.png", path.name), path.name
        assert cv2.imread(str(path)).shape == (112, 112, 3)
    assert sum("selected track" in line for line in lines) == len(summary.selected)
    no_selector = run_demo(images, tmp_path / "out2", model, frames=1, rate_hz=5.0,
                           detector_params={"input_size": 128}, selector_params=wide_open,
                           start_selector=False, timeout_s=60.0, echo=lines.append)
    assert no_selector.selected == [] and not (tmp_path / "out2" / "selected").exists()


def test_run_demo_with_a_model_that_cannot_load_says_so(images, tmp_path):
    with pytest.raises(RuntimeError, match="did not start"):
        run_demo(images, tmp_path / "out", tmp_path / "missing.onnx", frames=1, timeout_s=5.0)
