"""Test-session settings shared by all tests.

ROS 2 tests use real rclpy over DDS. Set before anything imports rclpy, these keep every test
run on the loopback interface and on a DDS domain of its own, so parallel runs (other
checkouts, CI jobs on one host) and live robots on the network never hear each other. Tests
that need a robot's SUBNET discovery range run their processes in a private network namespace
(mos_ros.ros.private_network). onnxruntime's telemetry is switched off for this process and
its children (the pinned Linux wheel looks up a Microsoft host seconds after its import).
"""
import configparser
import os
import re
from pathlib import Path

import pytest

# One domain per test run (pytest process), 1..100, never the one the shell names: on a robot
# that is the running graph's domain, which the tests must not join.
_domain = 1 + os.getpid() % 100
if os.environ.get('ROS_DOMAIN_ID', '').strip() == str(_domain):
    _domain = 1 + _domain % 100
os.environ['ROS_DOMAIN_ID'] = str(_domain)
# Discovery on localhost only: ROS_AUTOMATIC_DISCOVERY_RANGE (Jazzy and newer) and
# ROS_LOCALHOST_ONLY (Humble).
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ['ROS_LOCALHOST_ONLY'] = '1'


@pytest.fixture(scope="session")
def obama_sources():
    """The turnable face (and its mirror) of a training photo, fitted by FaceMesh: what a face
    bank holds. Skipped where the data engine's teachers or the photo cache are missing."""
    pytest.importorskip("mediapipe", reason="the FaceMesh teacher")
    from mos_ros.core.image_io import read_image
    from mos_ros.data.mesh_fit import fit_face_mesh
    from mos_ros.data.sources import CATALOGUE, SourceError, photo_path
    from mos_ros.data.teachers import open_teacher
    from mos_ros.scenes.reface import face_sources
    try:
        (photo,) = [p for p in CATALOGUE if p.name == "face_recognition/obama.jpg"]
        image = read_image(photo_path(photo))
    except SourceError as exc:
        pytest.skip(f"training photos not available: {exc}")
    (face,) = open_teacher("yuface").detect(image)
    fit = fit_face_mesh(image, face.box)
    return face_sources(image, fit.points, "obama")


@pytest.fixture(scope="session")
def model():
    """The model the ROS tests run: the shipped default (ONNX, onnxruntime), as on a robot
    that installed the package without the training stack."""
    from mos_ros.resources import default_model_path
    return default_model_path()


#: Backend -> the Python package it runs on (an extra of mos_ros; missing on a robot that
#: installed the package without it).
BACKEND_RUNTIMES = {"onnxruntime": "onnxruntime", "torch": "torch", "ncnn": "ncnn"}


def skip_without_runtime(backend: str) -> None:
    """Skip the calling test where ``backend``'s runtime is not installed."""
    pytest.importorskip(BACKEND_RUNTIMES[backend],
                        reason=f"the {backend} backend is not installed (mos_ros[{backend}])")


def optional_packages() -> set[str]:
    """What the extras of setup.cfg install (their import names are their names): what a
    robot with the light install lacks."""
    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    extras = config["options.extras_require"].values()
    return {name for value in extras for name in re.split(r"[;\s]+", value) if name}
