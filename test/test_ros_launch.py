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

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "mos.launch.py"
REQUIRED_ARGUMENTS = {"namespace", "image", "params_file", "backend", "model", "start_selector",
                      "use_rviz"}
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
    nodes = [keywords(c) for c in calls(tree, "Node")]
    packages = {literal(n["package"]) or "mos_ros" for n in nodes}
    assert packages == {"mos_ros", "rviz2"}
    for node in nodes:
        executable = literal(node["executable"])
        if executable == "rviz2":
            assert "condition" in node
            continue
        assert executable in executables, f"{executable} is not installed by CMakeLists.txt"
        module = ROOT / (executables[executable].replace(".", "/") + ".py")
        assert module.exists() or "condition" in node, f"{executable}: {module} is missing"
    assert (ROOT / "mos_ros/ros/detector_node.py").exists()


def test_config_files_named_by_the_launch_file_exist(tree):
    named = [[literal(e) for e in lst.elts] for lst in ast.walk(tree)
             if isinstance(lst, ast.List) and len(lst.elts) == 3
             and literal(lst.elts[1]) == "config"]
    assert sorted(parts[2] for parts in named) == ["mos.rviz", "mos.yaml"]
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
    used |= {literal(c.args[0]) for c in calls(tree, "arg") if c.args}
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
