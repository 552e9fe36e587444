"""The Fast DDS profile for camera frames, applied by the mos_ros processes themselves.

Fast DDS cuts a large sample into 64 KB fragments that pass through the sending process's
512 KB shared-memory segment; a best-effort frame of 0.9-2.7 MB is lost whenever the receiver
is a moment late (measured: 12-60 % of 640x480 frames). ``config/fastdds_camera_frames.xml``
gives the sender a segment of several whole frames. Our nodes send large images too
(``faces/image``), so they load it unless the user chose a profile of their own; it only takes
effect when set before the process's first DDS participant, i.e. before ``rclpy.init``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping

from mos_ros.resources import find_shared_file

PROFILE_FILE = "config/fastdds_camera_frames.xml"
#: Variables naming a Fast DDS XML profile file (current and pre-2.x names).
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
#: Set to 0 to keep Fast DDS's own defaults in the mos_ros processes.
OPT_OUT_VARIABLE = "MOS_FASTDDS_PROFILE"


def profile_path() -> Path:
    """The shipped camera-frames profile."""
    return find_shared_file(PROFILE_FILE)


def uses_fastdds(environ: MutableMapping[str, str]) -> bool:
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
