"""launch/mos.launch.py: built where launch_ros is installed; checked statically everywhere.

`launch` and `launch_ros` have no wheels, so here the file is parsed (AST) instead: every
executable it starts must be installed by CMakeLists.txt from an existing module (or be
conditional), every config file it names must exist, and every argument must be described.
"""
import ast
import importlib.util
import re
from pathlib import Path

import pytest

from mos_ros.ros.launch_args import READ_ARGUMENTS

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "mos.launch.py"
REQUIRED_ARGUMENTS = {"namespace", "image", "params_file", "backend", "model", "start_selector",
                      "use_rviz", "input", "use_sim_time", "fixed_frame", "dds_profile"}
HAVE_LAUNCH_ROS = all(importlib.util.find_spec(m) for m in ("launch", "launch_ros"))


def calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


def keywords(call):
    return {k.arg: k.value for k in call.keywords}


def literal(node):
    return node.value if isinstance(node, ast.Constant) else None


@pytest.fixture(scope="module")
def tree():
    return ast.parse(LAUNCH.read_text())


def installed_executables():
    text = (ROOT / "CMakeLists.txt").read_text()
    return dict(re.findall(r'"([a-z_]+)=([\w.]+):\w+"', text))


def test_every_started_mos_ros_executable_is_installed_from_an_existing_module(tree):
    executables = installed_executables()
    lifecycle = [literal(c.args[1]) for c in calls(tree, "lifecycle_node")]
    assert sorted(lifecycle) == ["face_selector", "mos_detector"]
    for executable in lifecycle:
        assert executable in executables, f"{executable} is not installed by CMakeLists.txt"
        module = ROOT / (executables[executable].replace(".", "/") + ".py")
        assert module.exists(), f"{executable}: {module} is missing"
    others = [keywords(c) for c in calls(tree, "Node")]
    assert [literal(n["executable"]) for n in others] == ["rviz2"]
    assert all("condition" in n for n in others)


def test_mos_ros_nodes_are_lifecycle_nodes_with_the_params_file_first(tree):
    helper = next(n for n in ast.walk(tree)
                  if isinstance(n, ast.FunctionDef) and n.name == "lifecycle_node")
    node_calls = calls(helper, "LifecycleNode")
    assert len(node_calls) == 1
    assert "additional_env" in keywords(node_calls[0]), "the nodes' DDS profile"
    assert not calls(tree, "SetEnvironmentVariable"), "the profile is the nodes' alone"
    parameters = keywords(node_calls[0])["parameters"]
    first = parameters.elts[0]
    assert ast.unparse(first) == 'LaunchConfiguration("params_file")'.replace('"', "'")


def test_config_files_named_by_the_launch_file_exist(tree):
    named = [[literal(e) for e in lst.elts] for lst in ast.walk(tree)
             if isinstance(lst, ast.List) and len(lst.elts) == 3
             and literal(lst.elts[1]) == "config"]
    assert sorted(parts[2] for parts in named) == ["fastdds_camera_frames.xml", "mos.rviz",
                                                   "mos.yaml"]
    for parts in named:
        assert (ROOT / "config" / parts[2]).is_file()


def test_launch_arguments_are_declared_and_described(tree):
    declared = {}
    for call in calls(tree, "DeclareLaunchArgument"):
        declared[literal(call.args[0])] = keywords(call)
    assert REQUIRED_ARGUMENTS <= set(declared)
    for name, kwargs in declared.items():
        assert "description" in kwargs and "default_value" in kwargs, name
    used = {literal(c.args[0]) for c in calls(tree, "LaunchConfiguration") if c.args}
    used |= READ_ARGUMENTS  # read from the launch configuration by parameter_overrides
    assert set(declared) <= used, f"declared but unused: {set(declared) - used}"


@pytest.mark.skipif(not HAVE_LAUNCH_ROS, reason="launch/launch_ros are not installable from "
                    "wheels here; the file is checked statically instead (tests above)")
def test_launch_description_builds():
    spec = importlib.util.spec_from_file_location("mos_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {getattr(e, "name", None) for e in description.entities}
    assert REQUIRED_ARGUMENTS <= names
