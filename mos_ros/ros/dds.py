"""The Fast DDS profile for camera frames, applied by the mos_ros processes themselves.

A camera at Fast DDS defaults sends a large sample to a process on the same host through
shared memory, in 64 KB fragments that pass through the camera's own 512 KB segment; a
best-effort frame of 0.9-2.7 MB is lost whenever the receiver is a moment late (measured:
40-100 % of frames). ``config/fastdds_camera_frames.xml`` makes the node's participant offer
UDP alone, with socket buffers of several megabytes, so the camera reaches it over the
loopback, where whole frames wait in the node's socket buffer; the camera needs no setting.

The profile only takes effect when set before the process's first DDS participant, i.e.
before ``rclpy.init``; the nodes leave Fast DDS alone when the user chose a profile of their
own. Linux caps socket buffers at ``net.core.rmem_max``: :func:`socket_buffer_warning` says
when the host's cap undoes the profile.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, MutableMapping

from mos_ros.resources import find_shared_file

PROFILE_FILE = "config/fastdds_camera_frames.xml"
#: Variables naming a Fast DDS XML profile file (current and pre-2.x names).
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
#: Set to 0 to keep Fast DDS's own defaults in the mos_ros processes.
OPT_OUT_VARIABLE = "MOS_FASTDDS_PROFILE"
#: The socket buffer sizes the profile asks for (held to the XML by a test): several whole
#: 1280x720 bgr8 frames.
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
#: Where Linux keeps the largest receive buffer a process may ask for.
RMEM_MAX_FILE = Path("/proc/sys/net/core/rmem_max")


def profile_path() -> Path:
    """The shipped camera-frames profile."""
    return find_shared_file(PROFILE_FILE)


def uses_fastdds(environ: Mapping[str, str]) -> bool:
    """Whether the ROS middleware is Fast DDS (the default where RMW_IMPLEMENTATION is unset)."""
    return environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp").startswith("rmw_fastrtps")


def apply_camera_frames_profile(
        environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """Point Fast DDS at the camera-frames profile; returns it, or None when left alone
    (another middleware, a profile already chosen, or ``MOS_FASTDDS_PROFILE=0``)."""
    if (not uses_fastdds(environ) or environ.get(OPT_OUT_VARIABLE) == "0"
            or any(environ.get(name) for name in PROFILE_VARIABLES)):
        return None
    path = profile_path()
    environ[PROFILE_VARIABLES[0]] = str(path)
    return path


def launch_environment(requested: str, environ: Mapping[str, str] = os.environ
                       ) -> dict[str, str]:
    """The environment the launch file adds to the mos_ros nodes: the requested profile (the
    ``dds_profile`` argument), or nothing under another middleware or ``MOS_FASTDDS_PROFILE=0``
    (the nodes then keep Fast DDS's own defaults, as they do when started alone)."""
    if not uses_fastdds(environ) or environ.get(OPT_OUT_VARIABLE) == "0" or not requested:
        return {}
    return {PROFILE_VARIABLES[0]: requested}


def socket_buffer_warning(environ: MutableMapping[str, str] = os.environ,
                          rmem_max_file: Path = RMEM_MAX_FILE) -> str | None:
    """Why large best-effort frames may still be lost in this process, or None.

    When this process runs the shipped profile and the host caps receive buffers below what
    it asks for, frames that arrive in a burst overflow the socket.
    """
    chosen = environ.get(PROFILE_VARIABLES[0])
    if not chosen or Path(chosen).resolve() != profile_path().resolve():
        return None
    try:
        cap = int(rmem_max_file.read_text())
    except (OSError, ValueError):
        return None  # not Linux, or no /proc: nothing known
    if cap >= SOCKET_BUFFER_BYTES:
        return None
    return (f"net.core.rmem_max is {cap // 1024} KB, below the {SOCKET_BUFFER_BYTES // 1024} KB "
            "the camera-frames profile asks for: large frames may be lost; run "
            f"'sudo sysctl -w net.core.rmem_max={SOCKET_BUFFER_BYTES} "
            f"net.core.wmem_max={SOCKET_BUFFER_BYTES}'")


def discovery_range_warning(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Why the profile cannot take effect in this process, or None.

    Under ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` rmw_fastrtps gives every participant
    shared memory whatever its profile says; a camera at Fast DDS defaults then reaches the
    node through its own 512 KB segment, and best-effort frames larger than that are lost.
    """
    if not uses_fastdds(environ) or environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "LOCALHOST":
        return None
    return ("ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST puts Fast DDS on shared memory: "
            "best-effort camera frames over 512 KB from other processes are lost; use the "
            "SUBNET range or a reliable camera")
