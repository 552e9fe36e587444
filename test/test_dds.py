"""The camera-frames Fast DDS profile: what it asks of Fast DDS, when the nodes apply it, and
the warning when the host's socket-buffer cap undoes it. (Delivery itself is measured between
processes in test_ros_delivery.py.)"""
import xml.etree.ElementTree as ET

import pytest

from mos_ros.ros import dds

NS = {"d": "http://www.eprosima.com"}


def test_profile_offers_udp_alone_with_the_buffers_the_warning_checks():
    root = ET.parse(dds.profile_path()).getroot()
    transports = root.findall(".//d:transport_descriptor", NS)
    assert [t.find("d:type", NS).text for t in transports] == ["UDPv4"]
    for tag in ("sendBufferSize", "receiveBufferSize"):
        assert int(transports[0].find(f"d:{tag}", NS).text) == dds.SOCKET_BUFFER_BYTES
    participant = root.find(".//d:participant", NS)
    assert participant.get("is_default_profile") == "true"
    assert participant.find(".//d:useBuiltinTransports", NS).text == "false"


@pytest.mark.parametrize("environ, applied", [
    ({}, True),
    ({"RMW_IMPLEMENTATION": "rmw_fastrtps_dynamic_cpp"}, True),
    ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, False),
    ({"FASTDDS_DEFAULT_PROFILES_FILE": "/robot/own.xml"}, False),
    ({"FASTRTPS_DEFAULT_PROFILES_FILE": "/robot/own.xml"}, False),
    ({"MOS_FASTDDS_PROFILE": "0"}, False),
])
def test_the_profile_is_applied_only_where_the_user_chose_nothing(environ, applied):
    before = dict(environ)
    result = dds.apply_camera_frames_profile(environ)
    if applied:
        assert result == dds.profile_path()
        assert environ["FASTDDS_DEFAULT_PROFILES_FILE"] == str(dds.profile_path())
    else:
        assert result is None and environ == before


def cap_file(tmp_path, size):
    path = tmp_path / "rmem_max"
    path.write_text(f"{size}\n")
    return path


def test_a_host_cap_below_the_profile_warns_with_the_fix(tmp_path):
    environ = {}
    dds.apply_camera_frames_profile(environ)
    warning = dds.socket_buffer_warning(environ, cap_file(tmp_path, 212992))
    assert "208 KB" in warning and "sysctl -w net.core.rmem_max=4194304" in warning


@pytest.mark.parametrize("environ, cap", [
    ("shipped", dds.SOCKET_BUFFER_BYTES),      # the host allows the buffers
    ({"FASTDDS_DEFAULT_PROFILES_FILE": "/robot/own.xml"}, 212992),  # the user's own profile
    ({}, 212992),                               # Fast DDS defaults: no UDP-only promise
])
def test_no_warning_where_the_profile_holds_or_is_not_ours(tmp_path, environ, cap):
    if environ == "shipped":
        environ = {}
        dds.apply_camera_frames_profile(environ)
    assert dds.socket_buffer_warning(environ, cap_file(tmp_path, cap)) is None


def test_no_warning_where_the_cap_cannot_be_read(tmp_path):
    environ = {}
    dds.apply_camera_frames_profile(environ)
    assert dds.socket_buffer_warning(environ, tmp_path / "missing") is None


@pytest.mark.parametrize("environ, warns", [
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, True),
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}, False),
    ({}, False),
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"},
     False),
])
def test_localhost_discovery_range_is_named_as_what_undoes_the_profile(environ, warns):
    warning = dds.discovery_range_warning(environ)
    assert (warning is not None and "LOCALHOST" in warning) == warns


@pytest.mark.parametrize("environ, expected", [
    ({}, {"FASTDDS_DEFAULT_PROFILES_FILE": "/share/frames.xml"}),
    ({"MOS_FASTDDS_PROFILE": "0"}, {}),
    ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, {}),
])
def test_the_launch_file_gives_the_nodes_the_requested_profile_unless_opted_out(environ,
                                                                             expected):
    assert dds.launch_environment("/share/frames.xml", environ) == expected


def test_no_launch_environment_for_an_empty_profile_argument():
    assert dds.launch_environment("", {}) == {}
