"""The test suite on a robot that installed mos_ros without its extras (no torch, onnx, pnnx,
ncnn, scipy, matplotlib, rosbags, the teachers): every test module collects, and what needs
a missing extra is skipped with its name, never an error. ``colcon test`` on such a robot
checks its install this way.

The missing extras are made unimportable in a child pytest by a ``sitecustomize`` that refuses
them. Collecting takes seconds; ``MOS_SLOW_TESTS=1`` also runs the whole suite so (about two
minutes, the ROS tests included, which run on the shipped ONNX model).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import optional_packages

ROOT = Path(__file__).resolve().parents[1]
#: Set in the child run, so that this module does not start another one.
CHILD = "MOS_TESTS_WITHOUT_EXTRAS"
BLOCKER = '''
import importlib.abc
import sys

MISSING = {missing!r}


class RefuseExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, RefuseExtras())
'''

pytestmark = pytest.mark.skipif(os.environ.get(CHILD) == "1", reason="the run without extras")


def run_without_extras(tmp_path: Path, *pytest_args: str) -> subprocess.CompletedProcess:
    (tmp_path / "sitecustomize.py").write_text(
        BLOCKER.format(missing=sorted(optional_packages())))
    env = {**os.environ, CHILD: "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path),
                                                       os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           *pytest_args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800)


def test_the_extras_are_really_missing_in_the_child(tmp_path):
    result = run_without_extras(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import mos_ros.detector, onnxruntime\n"
         "try:\n    import torch\nexcept ModuleNotFoundError:\n    print('no torch')"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True)
    assert probe.stdout.strip() == "no torch", probe.stderr


def test_every_test_module_collects_without_the_extras(tmp_path):
    result = run_without_extras(tmp_path, "--collect-only", "-q", "test")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "error" not in result.stdout.splitlines()[-1], result.stdout[-3000:]


@pytest.mark.skipif(os.environ.get("MOS_SLOW_TESTS") != "1", reason="slow: MOS_SLOW_TESTS=1")
def test_the_suite_passes_without_the_extras(tmp_path):
    result = run_without_extras(tmp_path, "-q", "test")
    summary = result.stdout.splitlines()[-1] if result.stdout else ""
    print(summary)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in summary and "skipped" in summary
