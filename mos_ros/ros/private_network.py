"""A private network for ROS processes: a Linux network namespace holding only the loopback.

Benchmarks and tests that run ROS nodes in several processes run them in one, so DDS behaves
as on a robot (the default SUBNET discovery range, announced by multicast) while no packet
leaves the host: a robot's running ROS graph, and every ROS system on its network, never hears
them. The loopback is brought up with multicast routed on it, which Fast DDS's discovery needs.

A namespace belongs to a thread: :func:`private_network` moves the calling thread into a new
one, and everything it starts there (threads, DDS participants, child processes) stays there;
the thread itself returns to its own namespace on exit. Enter it before the process's first
DDS participant: a participant made in it by a process that has used DDS on the host's network
before was not found by the processes inside. Making one needs root (CAP_SYS_ADMIN) and ``ip``
(iproute2); :func:`unavailable` says why it cannot be made here.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import functools
import os
import subprocess
from typing import ContextManager, Iterator

CLONE_NEWNET = 0x40000000
HOST_NETWORK_OPTION = "--host-network"
#: The calling thread's own network namespace.
THREAD_NAMESPACE = "/proc/thread-self/ns/net"
#: The loopback up with multicast on, and the multicast range routed to it.
LOOPBACK_SETUP = (("ip", "link", "set", "lo", "up", "multicast", "on"),
                  ("ip", "route", "add", "224.0.0.0/4", "dev", "lo"))


class PrivateNetworkError(RuntimeError):
    """No private network namespace can be made here; the message says why."""


def _namespace_call(name: str, *args: int) -> None:
    """Call libc's ``unshare`` or ``setns`` for the network namespace; raise on failure."""
    function = getattr(ctypes.CDLL(None, use_errno=True), name)
    if function(*args, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        needs = " (needs root: CAP_SYS_ADMIN)" if code == errno.EPERM else ""
        raise PrivateNetworkError(f"{name}(CLONE_NEWNET) failed: {os.strerror(code)}{needs}")


def _set_up_loopback() -> None:
    """Bring up this namespace's loopback with multicast routed on it."""
    for command in LOOPBACK_SETUP:
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except FileNotFoundError:
            raise PrivateNetworkError("'ip' (iproute2) is not installed") from None
        except subprocess.CalledProcessError as exc:
            raise PrivateNetworkError(f"'{' '.join(command)}' failed: "
                                      f"{exc.stderr.strip()}") from None


@contextlib.contextmanager
def private_network() -> Iterator[None]:
    """Run the calling thread, and what it starts, in a new network namespace with only the
    loopback; raises :class:`PrivateNetworkError` where none can be made.

    Open DDS participants and child processes keep their sockets in it after the block, so
    shut them down inside it.
    """
    try:
        home = open(THREAD_NAMESPACE)
    except OSError as exc:
        raise PrivateNetworkError(f"no network namespaces here ({exc.strerror}: "
                                  f"{THREAD_NAMESPACE})") from None
    with home:
        _namespace_call("unshare")
        try:
            _set_up_loopback()
            yield
        finally:
            _namespace_call("setns", home.fileno())


@functools.lru_cache(maxsize=None)
def unavailable() -> str | None:
    """Why no private network can be made here, or None where it can (tried once)."""
    try:
        with private_network():
            pass
    except PrivateNetworkError as exc:
        return str(exc)
    return None


def benchmark_network(host_network: bool) -> ContextManager[None]:
    """Where a benchmark runs its ROS processes: a private network, or the host's when asked."""
    return contextlib.nullcontext() if host_network else private_network()


def describe_network(host_network: bool) -> str:
    """The network a benchmark ran on, for its printed header."""
    return "host network" if host_network else "private network (loopback only)"


def add_host_network_option(parser: argparse.ArgumentParser) -> None:
    """A benchmark's ``--host-network`` option (its ``args.host_network``)."""
    parser.add_argument(HOST_NETWORK_OPTION, action="store_true",
                        help="run the ROS processes on the host's network, not in a private "
                             "one (needs no root; every ROS system there hears them)")


def network_error(exc: PrivateNetworkError) -> str:
    """The command-line message for a benchmark that could not make its private network."""
    return f"{exc}; run as root, or pass {HOST_NETWORK_OPTION} to use the host's network"
