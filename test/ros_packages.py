"""Skips for tests that need ROS 2, naming every package that is missing (issue 14).

``@needs("std_msgs.msg", "sensor_msgs.msg")`` on a test (``require(...)`` in a fixture)
skips it unless rclpy and each of those modules import; the reason lists every one that
does not, and how to get it. Every such reason starts with :data:`MISSING`: CI's ROS run (``.ci/ros_suite.sh``)
fails on any, since there every package the tests need is installed.
"""

from __future__ import annotations

import importlib

import pytest

MISSING = "ROS 2 packages not importable:"


def missing(*modules: str) -> list[str]:
    """The packages of rclpy and ``modules`` that do not import, in that order."""
    absent = []
    for name in ("rclpy", *modules):
        try:
            importlib.import_module(name)
        except ImportError:
            package = name.partition(".")[0]
            if package not in absent:
                absent.append(package)
    return absent


def needs(*modules: str) -> pytest.MarkDecorator:
    """A test's mark: skip it unless rclpy and every one of ``modules`` import."""
    absent = missing(*modules)
    return pytest.mark.skipif(bool(absent), reason=_reason(absent))


def require(*modules: str) -> None:
    """In a fixture: skip unless rclpy and every one of ``modules`` import."""
    absent = missing(*modules)
    if absent:
        pytest.skip(_reason(absent))


def _reason(absent: list[str]) -> str:
    wheels = " ".join("ros-" + package.replace("_", "-") for package in absent)
    return (f"{MISSING} {', '.join(absent)} (source ROS 2, or pip install {wheels} beside "
            "the ROS 2 wheels)")
