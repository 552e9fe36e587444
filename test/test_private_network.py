"""The private network that multi-process ROS tests and benchmarks run in: a namespace of its
own holding only the loopback, up, where multicast (DDS discovery) goes round; the calling
thread comes back to its own network afterwards, and where no namespace can be made the reason
is named."""
import os
import shutil
import socket
import struct
import subprocess
import sys

import pytest

from mos_ros.ros.private_network import THREAD_NAMESPACE, private_network, unavailable

#: Fast DDS's discovery multicast group.
GROUP = "239.255.0.1"

needs_namespace = pytest.mark.skipif(unavailable() is not None,
                                     reason=f"no private network namespace here: {unavailable()}")


def namespace_id() -> int:
    """The inode of the calling thread's network namespace."""
    return os.stat(THREAD_NAMESPACE).st_ino


@needs_namespace
def test_the_namespace_holds_only_the_loopback_and_the_thread_returns_home():
    home = namespace_id()
    with private_network():
        inside = namespace_id()
        names = [name for _, name in socket.if_nameindex()]
    assert inside != home and namespace_id() == home
    assert names == ["lo"]


@needs_namespace
def test_multicast_goes_round_the_loopback():
    with private_network():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            receiver.bind(("", 0))
            receiver.settimeout(5.0)
            membership = struct.pack("4s4s", socket.inet_aton(GROUP),
                                     socket.inet_aton("0.0.0.0"))
            receiver.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            sender.sendto(b"announce", (GROUP, receiver.getsockname()[1]))
            assert receiver.recv(64) == b"announce"


@needs_namespace
def test_processes_started_inside_share_the_namespace():
    with private_network():
        inside = namespace_id()
        child = subprocess.run(["readlink", "/proc/self/ns/net"], capture_output=True,
                               text=True, check=True)
    assert child.stdout.strip() == f"net:[{inside}]"


without_cap_sys_admin = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="needs root and setpriv (util-linux) to take CAP_SYS_ADMIN away")


def run_without_cap_sys_admin(*args: str) -> subprocess.CompletedProcess:
    """``python args`` as root without CAP_SYS_ADMIN: what a user who is not root has."""
    return subprocess.run(["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin",
                           sys.executable, *args], capture_output=True, text=True, timeout=120)


@without_cap_sys_admin
def test_without_cap_sys_admin_the_reason_is_named():
    out = run_without_cap_sys_admin(
        "-c", "from mos_ros.ros.private_network import unavailable; print(unavailable())")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ("unshare(CLONE_NEWNET) failed: Operation not permitted "
                          "(needs root: CAP_SYS_ADMIN)\n")


@without_cap_sys_admin
def test_a_benchmark_without_its_private_network_says_how_to_run(model):
    out = run_without_cap_sys_admin(
        "-m", "mos_ros.bench.ros_latency", "--model", str(model), "--frames", "1",
        "--width", "64", "--height", "48", "--input-size", "64", "--modes", "in-process")
    assert out.returncode == 2
    assert out.stderr.endswith(
        "error: unshare(CLONE_NEWNET) failed: Operation not permitted (needs root: "
        "CAP_SYS_ADMIN); run as root, or pass --host-network to use the host's network\n")
