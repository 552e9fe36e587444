"""The ROS latency benchmark runs end to end: a short in-process run on this test run's
network (one process, discovery on localhost); both modes, node process included, in a private
network namespace (opt-in, skipped where none can be made)."""
import os

import pytest

from mos_ros.bench import ros_latency
from mos_ros.bench.timing import Stat
from mos_ros.ros import private_network

SLOW = os.environ.get("MOS_SLOW_TESTS") == "1"
IN_PROCESS = (["in-process"], [private_network.HOST_NETWORK_OPTION])
BOTH_MODES = (list(ros_latency.MODES), [])


def test_table_reports_medians_and_the_ratio_to_the_bare_detector():
    table = ros_latency.format_stats({"bare detect": Stat(10.0, 12.0),
                                      "in-process": Stat(15.0, 20.0)})
    assert "in-process" in table and "1.50" in table and "1.00" in table


@pytest.mark.parametrize("modes, network", [IN_PROCESS] + ([BOTH_MODES] if SLOW else []))
def test_benchmark_measures_every_path_on_the_same_frames(model, modes, network, capsys):
    if not network and private_network.unavailable():
        pytest.skip(f"no private network namespace here: {private_network.unavailable()}")
    assert ros_latency.main(["--model", str(model), "--frames", "3", "--width", "160",
                             "--height", "120", "--input-size", "128", "--threads", "1",
                             "--modes", *modes, *network]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"bare", *modes}
    for mode in modes:
        assert float(rows[mode][1]) > 0 and float(rows[mode][3]) > 0
