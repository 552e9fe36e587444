"""A parameter file reaches the nodes in any namespace: each node runs as its own process
(``python -m ...node --ros-args -r __ns:=/robot/head --params-file FILE``, as ``ros2 run`` and
``ros2 launch`` start it) and the values are read back over its parameter services; so are the
descriptors, which come from the core configurations' fields."""
import subprocess
import sys
from pathlib import Path

import pytest
import rclpy
import yaml
from rcl_interfaces.srv import DescribeParameters, GetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import parameter_value_to_python

from mos_ros.core.postprocess import DecodeSettings
from mos_ros.core.validation import describe
from mos_ros.ros import params, selector_params
from mos_ros.ros.health import HealthLimits
from mos_ros.ros.launch_args import parameter_overrides
from mos_ros.ros.testing import spin_until, stop_process

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "/robot/head"
TIMEOUT_S = 60.0
NODES = {"mos_detector": "mos_ros.ros.detector_node",
         "face_selector": "mos_ros.ros.selector_node"}
#: Values other than the defaults, set in the shipped file's sections (autostart off: the
#: named model file does not exist and is never loaded).
CHANGED = {"mos_detector": {"score_threshold": 0.31, "autostart": False, "backend": "ncnn",
                            "model_path": "/nonexistent/model.ncnn", "reliability": "reliable"},
           "face_selector": {"min_hits": 7, "max_abs_yaw_deg": 20.0, "ros4hri": False,
                             "ros4hri_face_width": 96}}


@pytest.fixture
def params_file(tmp_path):
    document = yaml.safe_load((ROOT / "config/mos.yaml").read_text())
    for name, values in CHANGED.items():
        document[f"/**/{name}"]["ros__parameters"].update(values)
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def reader():
    """A node and executor of this process that ask the node processes."""
    context = Context()
    rclpy.init(args=[], context=context)
    node = rclpy.create_node("params_reader", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    yield node, executor
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)


def ask(node, executor, kind, service: str, request):
    client = node.create_client(kind, service)
    assert spin_until(executor, client.service_is_ready, TIMEOUT_S), f"no service {service}"
    future = client.call_async(request)
    assert spin_until(executor, future.done, TIMEOUT_S), f"{service} did not answer"
    return future.result()


def read_back(node, executor, fqn: str, names: list[str]) -> dict:
    result = ask(node, executor, GetParameters, f"{fqn}/get_parameters",
                 GetParameters.Request(names=names))
    return {name: parameter_value_to_python(value) for name, value in zip(names, result.values)}


#: Per node: parameter name -> (configuration, field) whose metadata describes it.
FIELD_BACKED = {
    "mos_detector": {**{name: (DecodeSettings, name) for name in params.DECODE_NAMES},
                     **{spec.name: (HealthLimits, spec.name) for spec in params.HEALTH_SPECS}},
    "face_selector": {spec.name: (selector_params.CONFIGS[group], field)
                      for spec, group, field in selector_params.TABLE},
}


def descriptors_back(node, executor, fqn: str, names: list[str]) -> dict:
    """name -> (description, (low, high) or None) as the node process describes it."""
    result = ask(node, executor, DescribeParameters, f"{fqn}/describe_parameters",
                 DescribeParameters.Request(names=names))
    described = {}
    for d in result.descriptors:
        ranges = list(d.integer_range) or list(d.floating_point_range)
        described[d.name] = (d.description,
                             (ranges[0].from_value, ranges[0].to_value) if ranges else None)
    return described


def test_node_processes_under_a_namespace_take_the_parameter_file(params_file, reader):
    children = [subprocess.Popen([sys.executable, "-m", module, "--ros-args", "-r",
                                  f"__ns:={NAMESPACE}", "--params-file", str(params_file)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for module in NODES.values()]
    try:
        for name, values in CHANGED.items():
            got = read_back(*reader, f"{NAMESPACE}/{name}", list(values))
            assert got == values, name
        for name, backed in FIELD_BACKED.items():
            got = descriptors_back(*reader, f"{NAMESPACE}/{name}", list(backed))
            expected = {param: describe(*where)[1:] for param, where in backed.items()}
            assert got == expected, name
    finally:
        for child in children:
            stop_process(child)
        errors = [child.communicate(timeout=TIMEOUT_S)[1] for child in children]
    assert all("Traceback" not in err for err in errors), errors


@pytest.mark.parametrize("arguments, expected", [
    # Nothing given: the file decides everything.
    ({"model": "", "backend": "", "input": "", "use_sim_time": "", "use_rviz": "false"},
     {"model_path": "/nonexistent/model.ncnn", "backend": "ncnn", "input": "raw",
      "use_sim_time": False, "publish_annotated": False}),
    # Given arguments win over the file; the others keep the file's values.
    ({"model": "/models/other.onnx", "backend": "", "input": "compressed",
      "use_sim_time": "true", "use_rviz": "true"},
     {"model_path": "/models/other.onnx", "backend": "ncnn", "input": "compressed",
      "use_sim_time": True, "publish_annotated": True}),
])
def test_launch_arguments_override_the_file_only_when_given(params_file, tmp_path, reader,
                                                            arguments, expected):
    """As launch_ros passes them: the user's file, then the overrides in a file of their own
    under ``/**``, to the node process."""
    overrides = parameter_overrides(arguments, "mos_detector")
    override_file = tmp_path / "launch_overrides.yaml"
    override_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": overrides}}))
    child = subprocess.Popen([sys.executable, "-m", NODES["mos_detector"], "--ros-args", "-r",
                              f"__ns:={NAMESPACE}", "--params-file", str(params_file),
                              "--params-file", str(override_file)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        got = read_back(*reader, f"{NAMESPACE}/mos_detector", list(expected))
    finally:
        stop_process(child)
        err = child.communicate(timeout=TIMEOUT_S)[1]
    assert got == expected, err[-2000:]
