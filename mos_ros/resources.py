"""Where the package's shipped files (models, configs) are found, in a checkout or an install."""
from __future__ import annotations

import os
from pathlib import Path

#: The default model, relative to the ``models`` folder.
DEFAULT_MODEL_NAME = "mos-mbv2-faces.onnx"
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


def default_model_path() -> Path:
    """The model used when none is named: ``$MOS_MODEL`` if set, else the shipped default."""
    override = os.environ.get("MOS_MODEL")
    if override:
        return Path(override)
    return find_shared_file(f"models/{DEFAULT_MODEL_NAME}")
