"""Running one node as a process: the ``main()`` shared by every mos_ros executable."""
from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from mos_ros.ros.dds import apply_camera_frames_profile

#: How long one spin waits for work before checking whether the node is done.
SPIN_PERIOD_S = 0.1


def run_node(make_node: Callable[[], Node], args: list[str] | None = None) -> int:
    """Initialise rclpy, spin the node until Ctrl-C, shutdown or its ``finished`` flag, and
    shut down cleanly (Humble and newer). The camera-frames DDS profile is applied first
    (:mod:`mos_ros.ros.dds`)."""
    apply_camera_frames_profile()
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        while rclpy.ok() and not getattr(node, "finished", False):
            rclpy.spin_once(node, timeout_sec=SPIN_PERIOD_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: BLE001 - a wait interrupted by SIGTERM's shutdown is no error
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()  # stops worker threads before the context goes
        rclpy.try_shutdown()
    return 0
