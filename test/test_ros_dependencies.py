"""package.xml declares what the nodes and the launch file import, under rosdep keys, and
nothing else: the imports are read from the source (every module the node executables reach
inside mos_ros, plus the default inference backend) and held against the declarations."""
import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What `ros2 run mos_ros ...` and the launch file start, and the backend of the default model.
ENTRY_MODULES = ("mos_ros.ros.detector_node", "mos_ros.ros.selector_node",
                 "mos_ros.ros.image_source", "mos_ros.ros.bringup",
                 "mos_ros.backends.onnxruntime_backend")
LAUNCH_FILES = tuple((ROOT / "launch").glob("*.launch.py"))
#: Top-level import name -> rosdep key.
ROSDEP_KEYS = {
    "rclpy": "rclpy", "rcl_interfaces": "rcl_interfaces", "lifecycle_msgs": "lifecycle_msgs",
    "builtin_interfaces": "builtin_interfaces", "std_msgs": "std_msgs",
    "sensor_msgs": "sensor_msgs", "geometry_msgs": "geometry_msgs",
    "visualization_msgs": "visualization_msgs", "diagnostic_msgs": "diagnostic_msgs",
    "tf2_msgs": "tf2_msgs", "vision_msgs": "vision_msgs", "hri_msgs": "hri_msgs",
    "cv_bridge": "cv_bridge",
    "ament_index_python": "ament_index_python", "launch": "launch", "launch_ros": "launch_ros",
    "numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml",
    "onnxruntime": "python3-onnxruntime-pip",
}
#: Declared without an import: the generated messages' runtime and the `ros2 launch` command.
NOT_IMPORTED = {"rosidl_default_runtime", "ros2launch"}
#: Optional backends, installed by the user when chosen (README, "On a robot").
OPTIONAL = {"torch", "ncnn"}


def module_file(name: str) -> Path | None:
    path = ROOT / Path(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(mos_ros modules imported at module level, other top-level names imported anywhere)."""
    internal, external = set(), set()
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "mos_ros":
                in_try = any(id(node) in {id(n) for n in getattr(t, "body", [])}
                             for t in tree.body if isinstance(t, ast.Try))
                if id(node) in top_level or in_try:
                    internal.add(name)
            else:
                external.add(name.split(".")[0])
    return internal, external


def imported_packages() -> set[str]:
    seen, todo, external = set(), list(ENTRY_MODULES), set()
    while todo:
        name = todo.pop()
        path = module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        internal, found = imports(path)
        todo += sorted(internal)
        external |= found
    for launch in LAUNCH_FILES:
        external |= imports(launch)[1]
    return {name for name in external
            if name not in sys.stdlib_module_names and name != "__future__"} - OPTIONAL


def declared_keys() -> set[str]:
    tree = ET.parse(ROOT / "package.xml")
    return {e.text.strip() for tag in ("depend", "exec_depend") for e in tree.iter(tag)}


def test_every_import_has_a_rosdep_key():
    unknown = imported_packages() - set(ROSDEP_KEYS)
    assert not unknown, f"add these imports' rosdep keys to ROSDEP_KEYS: {sorted(unknown)}"


def test_package_xml_declares_exactly_what_the_nodes_import():
    needed = {ROSDEP_KEYS[name] for name in imported_packages() if name in ROSDEP_KEYS}
    declared = declared_keys()
    assert needed - declared == set(), "imported but not declared"
    assert declared - needed - NOT_IMPORTED == set(), "declared but not imported"


def test_the_walk_reaches_the_nodes_conversions_and_backend():
    found = imported_packages()
    assert {"rclpy", "onnxruntime", "vision_msgs", "cv_bridge", "numpy", "cv2"} <= found
