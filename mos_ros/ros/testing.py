"""Helpers for tests and benchmarks of the ROS layer (no mocks: real models, real DDS).

The ROS tests run the shipped default model (as a robot does); benchmarks that need no trained
weights use :func:`mos_ros.testing.random_model`.

* :func:`spin_until`: spin an executor until a condition holds, e.g. a publisher matched its
  subscriptions (discovery takes seconds between processes; never sleep a fixed time for it).
* :class:`ProbeRig`: an own rclpy context spun by a background executor, with a probe node that
  plays cameras and listens; tests add the nodes under test to it.
"""
from __future__ import annotations

import signal
import subprocess
import threading
import time
from typing import Callable

import rclpy
from rclpy.context import Context
from rclpy.exceptions import InvalidHandle
from rclpy.executors import (
    ExternalShutdownException, MultiThreadedExecutor, ShutdownException)
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data

SPIN_STEP_S = 0.02
#: How long a rig waits for discovery, a message or a service answer.
RIG_TIMEOUT_S = 20.0


def spin_until(executor, condition: Callable[[], bool], timeout_s: float) -> bool:
    """Spin ``executor`` (or, with None, just poll) until ``condition()``; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        if executor is None:
            time.sleep(SPIN_STEP_S)
        else:
            executor.spin_once(timeout_sec=SPIN_STEP_S)
    return True


def stop_process(child: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Stop a node process as Ctrl-C would (SIGINT); kill it if it has not ended in time."""
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def wait(condition: Callable[[], bool], timeout_s: float = RIG_TIMEOUT_S) -> bool:
    """Poll ``condition()`` (something else spins) until it holds; False on timeout."""
    return spin_until(None, condition, timeout_s)


class ProbeRig:
    """An own context and a background executor with a probe node; nodes are added per test.

    Each rig has its own :class:`~rclpy.context.Context`, so tests in one process do not share
    DDS participants or global state. :meth:`close` shuts everything down.
    """

    def __init__(self, probe_name: str = "probe"):
        self.context = Context()
        rclpy.init(args=[], context=self.context)
        self.executor = MultiThreadedExecutor(context=self.context)
        self.probe = rclpy.create_node(probe_name, context=self.context)
        self.executor.add_node(self.probe)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self.count = 0

    def _spin(self) -> None:
        """Spin until :meth:`close`. A node that re-creates a subscription (a camera topic
        changing reliability) may destroy it while another executor thread builds its wait
        set; rclpy then raises InvalidHandle for that one wait (ros2/rclpy#1206), and the next
        one goes on. The nodes' own processes spin one thread and never meet it."""
        while self._running and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=SPIN_STEP_S)
            except InvalidHandle:
                continue
            except (ExternalShutdownException, ShutdownException):
                return

    def add(self, node_class, namespace: str | None = None, **params):
        """Start ``node_class`` with ``params`` under ``namespace`` (default: a fresh
        ``/n<count>``), spun by the rig's executor."""
        self.count += 1
        node = node_class(context=self.context, namespace=namespace or f"/n{self.count}",
                          parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        self.executor.add_node(node)
        return node

    def listen(self, kind, topic: str, qos=10) -> list:
        """A list that collects every message the probe receives on ``topic``."""
        received = []
        self.probe.create_subscription(kind, topic, received.append, qos)
        return received

    def publisher(self, kind, topic: str, qos=qos_profile_sensor_data):
        """A probe publisher on ``topic``, returned once something subscribes to it."""
        pub = self.probe.create_publisher(kind, topic, qos)
        assert wait(lambda: pub.get_subscription_count() > 0), f"nobody subscribed to {topic}"
        return pub

    def close(self) -> None:
        self._running = False
        self.executor.shutdown()
        for node in self.executor.get_nodes():
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(RIG_TIMEOUT_S)
