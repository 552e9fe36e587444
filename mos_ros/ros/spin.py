"""Running one node as a process: the ``main()`` shared by every mos_ros executable."""
from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

#: How long one spin waits for work before checking whether the node is done.
SPIN_PERIOD_S = 0.1


def run_node(make_node: Callable[[], Node], args: list[str] | None = None) -> int:
    """Initialise rclpy, spin the node until Ctrl-C, shutdown or its ``finished`` flag, and
    shut down cleanly (Humble and newer)."""
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        while rclpy.ok() and not getattr(node, "finished", False):
            rclpy.spin_once(node, timeout_sec=SPIN_PERIOD_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()  # stops worker threads before the context goes
        rclpy.try_shutdown()
    return 0
