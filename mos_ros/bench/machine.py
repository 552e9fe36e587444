"""What machine a benchmark ran on: CPU model, cores, thread settings and library versions."""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
#: Distributions whose versions change the figures; absent ones are reported as such.
VERSIONED_PACKAGES: tuple[str, ...] = (
    "torch", "onnxruntime", "ncnn", "numpy", "opencv-python-headless")
NOT_INSTALLED = "not installed"


@dataclass(frozen=True)
class MachineInfo:
    """The facts needed to compare figures between machines."""

    cpu_model: str
    logical_cores: int
    torch_threads: int
    python: str
    versions: tuple[tuple[str, str], ...]


def cpu_model_name(cpuinfo: Path = CPUINFO) -> str:
    """The ``model name`` line of /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def package_version(name: str) -> str:
    """Installed version of a distribution, without importing it."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


def usable_cores() -> int:
    """Logical cores this process may run on (its CPU affinity, where the OS has one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, int(cores or 1))


def describe_machine(torch_threads: int) -> MachineInfo:
    """Collect :class:`MachineInfo` for the running process."""
    return MachineInfo(
        cpu_model=cpu_model_name(),
        logical_cores=usable_cores(),
        torch_threads=torch_threads,
        python=platform.python_version(),
        versions=tuple((name, package_version(name)) for name in VERSIONED_PACKAGES),
    )
