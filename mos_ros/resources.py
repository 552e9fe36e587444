"""Where the package's shipped files (models, messages, configs) are found: in a checkout, a
wheel install or a ROS install."""
from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

#: The default model, ``models/<DEFAULT_MODEL><suffix>``.
DEFAULT_MODEL = "mos-mbv2-faces"
#: Backend -> suffix of the default model's file (on the CPU, on an accelerator): int8 where
#: it is measured faster (onnxruntime on the CPU: 2x), else fp32; CUDA and TensorRT build their
#: own reduced precision from fp32. ``.int8.ncnn`` ships too, for ARM boards to try: on the
#: x86 build machine it runs at fp32's speed (models/README.md).
DEFAULT_MODEL_SUFFIXES = {
    "onnxruntime": (".int8.onnx", ".onnx"),
    "ncnn": (".ncnn", ".ncnn"),
    "torch": (".pt", ".pt"),
}
_CPU_DEVICE_NAMES = {"cpu", "cpuexecutionprovider"}
PACKAGE_NAME = "mos_ros"


def share_dirs() -> list[Path]:
    """Folders that may hold ``models/``, ``msg/`` and ``config/``, in the order searched:
    the source checkout, the files packaged in an installed wheel (``mos_ros/share/``, see
    setup.py), then the ament share directory of an installed ROS package."""
    dirs = []
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "package.xml").is_file():
        dirs.append(checkout)
    packaged = Path(str(importlib.resources.files(PACKAGE_NAME) / "share"))
    if packaged.is_dir():
        dirs.append(packaged)
    try:
        from ament_index_python.packages import get_package_share_directory  # ROS only
        dirs.append(Path(get_package_share_directory(PACKAGE_NAME)))
    except Exception:  # noqa: BLE001 - not a ROS install, or the package is not installed
        pass
    return dirs


def find_shared_file(relative: str) -> Path:
    """First existing ``relative`` path (e.g. ``models/x.onnx``) among :func:`share_dirs`."""
    for base in share_dirs():
        candidate = base / relative
        if candidate.exists():
            return candidate
    searched = ", ".join(str(d) for d in share_dirs())
    raise FileNotFoundError(f"{relative} not found (searched {searched})")


def is_cpu_device(device: str) -> bool:
    """Whether a device string (as :func:`mos_ros.backends.device_options` reads it; empty
    for the backend's default) names nothing but the CPU."""
    names = {name.strip().lower() for name in device.split(",") if name.strip()}
    return names <= _CPU_DEVICE_NAMES


def default_model_path(device: str = "", backend: str = "") -> Path:
    """The model used when none is named: ``$MOS_MODEL`` if set, else the shipped default in
    the form ``backend`` (empty: onnxruntime) reads on ``device`` (empty: the backend's
    default, the CPU); see :data:`DEFAULT_MODEL_SUFFIXES` and ``models/README.md``."""
    override = os.environ.get("MOS_MODEL")
    if override:
        return Path(override)
    backend = backend or "onnxruntime"
    if backend not in DEFAULT_MODEL_SUFFIXES:
        raise ValueError(f"no default model for backend {backend!r}; known: "
                         f"{', '.join(sorted(DEFAULT_MODEL_SUFFIXES))}")
    cpu_suffix, accelerator_suffix = DEFAULT_MODEL_SUFFIXES[backend]
    suffix = cpu_suffix if is_cpu_device(device) else accelerator_suffix
    return find_shared_file(f"models/{DEFAULT_MODEL}{suffix}")
