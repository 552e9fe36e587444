"""The ROS package builds and installs with CMake (as colcon would) into a fresh prefix.

A message generation and build takes about 20 s on two cores; skipped where cmake is missing.
Uses the venv as the underlay (its ROS wheels are an ament prefix; .ci/setup.sh has patched
their CMake files), like `colcon build --merge-install` on top of a ROS installation.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
BUILD_TIMEOUT_S = 900

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None,
                                reason="the CMake build needs cmake")


def run(*args, env):
    result = subprocess.run(args, env=env, capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def workspace(tmp_path):
    """A copy of the package as in a colcon workspace's src/ (the development venv lives inside
    the checkout, and CMake refuses exported include paths inside the source directory), and
    the environment of a sourced underlay: AMENT_PREFIX_PATH is where the ament index (type
    supports) is looked up, besides the install prefix."""
    source = tmp_path / "src" / "mos_ros"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", "build", ".git", "__pycache__", "*.onnx", "*.egg-info", ".pytest_cache"))
    env = dict(os.environ, CMAKE_PREFIX_PATH=str(VENV), AMENT_PREFIX_PATH=str(VENV),
               PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return source, env


def test_cmake_build_installs_executables_launch_config_and_messages(tmp_path):
    source, env = workspace(tmp_path)
    prefix, build = tmp_path / "install", tmp_path / "build"
    run("cmake", "-S", str(source), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={prefix}",
        f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF", env=env)
    run("cmake", "--build", str(build), "--parallel", "2", env=env)
    run("cmake", "--install", str(build), env=env)

    share = prefix / "share" / "mos_ros"
    detector = prefix / "lib" / "mos_ros" / "mos_detector"
    assert detector.is_file() and os.access(detector, os.X_OK)
    assert "mos_ros.ros.detector_node" in detector.read_text()
    for relative in ("launch/mos.launch.py", "config/mos.yaml", "config/mos.rviz",
                     "package.xml"):
        assert (share / relative).is_file(), relative
    if (source / "models").is_dir():  # the copy leaves the large ONNX files out
        # models/training holds checkpoints to train on, not to run: not installed.
        assert sorted(p.name for p in (share / "models").iterdir()) == \
            sorted(p.name for p in (source / "models").iterdir() if p.name != "training")
    assert (prefix / "share/ament_index/resource_index/packages/mos_ros").is_file()

    site = prefix / Path(sysconfig.get_paths()["purelib"]).relative_to(sys.prefix)
    probe = "import mos_ros.msg as m; print(m.__file__); print(m.FaceArray())"
    out = run(sys.executable, "-c", probe, env=dict(env, PYTHONPATH=str(site)))
    msg_file = out.splitlines()[0]
    assert msg_file.startswith(str(prefix))
    # The Python package is installed beside the messages (this venv's editable install may
    # still shadow it on import, so its files are checked directly).
    assert (site / "mos_ros" / "ros" / "detector_node.py").is_file()
    assert (site / "mos_ros" / "__init__.py").is_file()


def test_ctest_runs_the_pytest_suite_as_colcon_test_does(tmp_path):
    """``colcon test`` is ctest on the build folder: the suite is registered and passes (here
    narrowed to one quick module with PYTEST_ADDOPTS, which pytest reads under ctest too)."""
    source, env = workspace(tmp_path)
    build = tmp_path / "build"
    run("cmake", "-S", str(source), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={tmp_path}/i",
        f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=ON", env=env)
    assert "mos_ros_pytest" in run("ctest", "--test-dir", str(build), "-N", env=env)
    run("cmake", "--build", str(build), "--parallel", "2", env=env)
    out = run("ctest", "--test-dir", str(build), "-R", "mos_ros_pytest", "--output-on-failure",
              env=dict(env, PYTEST_ADDOPTS="-k test_dds -p no:cacheprovider"))
    assert "100% tests passed" in out
    results = list((build / "test_results" / "mos_ros").glob("*.xml"))
    assert results and 'failures="0"' in results[0].read_text()
