"""The ROS latency benchmark runs end to end: a short in-process run on this test run's
network (one process, discovery on localhost); both modes, node process included, in a private
network namespace (opt-in, skipped where none can be made)."""
import os
import subprocess
import sys

import pytest

from mos_ros.bench import ros_latency
from mos_ros.bench.timing import Stat
from mos_ros.ros import private_network

SLOW = os.environ.get("MOS_SLOW_TESTS") == "1"
SHORT_RUN = ["--frames", "3", "--width", "160", "--height", "120", "--input-size", "128",
             "--threads", "1"]


def assert_every_mode_measured(output: str, modes) -> None:
    """The printed table has the bare detector and each mode, with positive figures."""
    rows = {line.split()[0]: line.split() for line in output.splitlines()[2:]}
    assert set(rows) == {"bare", *modes}, output
    for mode in modes:
        assert float(rows[mode][1]) > 0 and float(rows[mode][3]) > 0, output


def test_table_reports_medians_and_the_ratio_to_the_bare_detector():
    table = ros_latency.format_stats({"bare detect": Stat(10.0, 12.0),
                                      "in-process": Stat(15.0, 20.0)})
    assert "in-process" in table and "1.50" in table and "1.00" in table


def test_in_process_path_on_this_runs_network(model, capsys):
    assert ros_latency.main(["--model", str(model), *SHORT_RUN, "--modes", "in-process",
                             private_network.HOST_NETWORK_OPTION]) == 0
    assert_every_mode_measured(capsys.readouterr().out, ["in-process"])


@pytest.mark.skipif(not SLOW, reason="slow: MOS_SLOW_TESTS=1")
def test_both_paths_in_a_private_network(model):
    """In a process of its own: a participant that this test process made in a private
    network after using DDS on the host's network did not find the node process."""
    if private_network.unavailable():
        pytest.skip(f"no private network namespace here: {private_network.unavailable()}")
    out = subprocess.run([sys.executable, "-m", "mos_ros.bench.ros_latency", "--model",
                          str(model), *SHORT_RUN, "--modes", *ros_latency.MODES],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert_every_mode_measured(out.stdout, ros_latency.MODES)
