"""Test-session settings shared by all tests.

ROS 2 tests use real rclpy over DDS. Set before anything imports rclpy, these keep every test
run on the loopback interface and on a DDS domain of its own, so parallel runs (other
checkouts, CI jobs on one host) and live robots on the network never hear each other.
"""
import os

# One domain per test run (pytest process), 1..100; the value of a developer's shell is
# replaced on purpose so tests never join a live system's domain.
os.environ['ROS_DOMAIN_ID'] = str(1 + os.getpid() % 100)
# Discovery on localhost only: ROS_AUTOMATIC_DISCOVERY_RANGE (Jazzy and newer) and
# ROS_LOCALHOST_ONLY (Humble).
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ['ROS_LOCALHOST_ONLY'] = '1'
