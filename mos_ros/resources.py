"""Where the package's shipped files (models, configs) are found, in a checkout or an install."""
from __future__ import annotations

import os
from pathlib import Path

#: The default model, ``models/<DEFAULT_MODEL><suffix>``: for onnxruntime int8 on the CPU (its
#: default device) and fp32 where an accelerator is named; the other backends' own files.
DEFAULT_MODEL = "mos-mbv2-faces"
CPU_MODEL_SUFFIX = ".int8.onnx"
ACCELERATOR_MODEL_SUFFIX = ".onnx"
BACKEND_MODEL_SUFFIX = {"torch": ".pt", "ncnn": ".ncnn"}
_CPU_DEVICE_NAMES = {"cpu", "cpuexecutionprovider"}
PACKAGE_NAME = "mos_ros"


def share_dirs() -> list[Path]:
    """Folders that may hold ``models/`` and ``config/``: the source checkout, then the
    ament share directory of an installed ROS package."""
    dirs = [Path(__file__).resolve().parents[1]]
    try:
        from ament_index_python.packages import get_package_share_directory
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
    the form ``backend`` reads (empty: onnxruntime).

    For onnxruntime on the CPU that is the int8 file (about 2.5x faster, same held-out
    figures, see ``models/README.md``); for an accelerator (``cuda``, ``tensorrt``, ...) the
    fp32 file, from which TensorRT builds its own reduced-precision engine.
    """
    override = os.environ.get("MOS_MODEL")
    if override:
        return Path(override)
    if backend in BACKEND_MODEL_SUFFIX:
        suffix = BACKEND_MODEL_SUFFIX[backend]
    else:
        suffix = CPU_MODEL_SUFFIX if is_cpu_device(device) else ACCELERATOR_MODEL_SUFFIX
    return find_shared_file(f"models/{DEFAULT_MODEL}{suffix}")
