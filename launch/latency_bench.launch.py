"""Latency benchmark: ``latency_ping`` -> ``latency_pong``, results written as JSON.

    ros2 launch agnoshm latency_bench.launch.py size:=1048576 rate:=100 duration:=5 \\
        output:=/tmp/agnoshm_latency.json

``latency_ping`` (node ``ping``) publishes stamped ``agnoshm.Bytes`` messages of
``size`` bytes at ``rate`` per second for ``duration`` seconds;
``latency_pong`` (``pong``) writes count, lost, p50/p90/p99 latency to
``output``. Parameters come from ``config/latency_bench.yaml`` (``params_file``),
overridden by the launch arguments below; ``agnoshm_config`` names the agnoshm
configuration. Everything is checked before any process starts.
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction

from agnoshm.demo import launching

CONFIG = Path(__file__).resolve().parent.parent / "config"  # source tree and share/agnoshm alike


def generate_launch_description():
    return LaunchDescription([
        *launching.declare_common_arguments("latency_bench", CONFIG),
        DeclareLaunchArgument("size", default_value="",
                              description="message size in bytes (empty: params_file)"),
        DeclareLaunchArgument("rate", default_value="",
                              description="messages per second (empty: params_file)"),
        DeclareLaunchArgument("duration", default_value="",
                              description="seconds to publish for (empty: params_file)"),
        DeclareLaunchArgument("output", default_value="",
                              description="results JSON file (empty: params_file)"),
        OpaqueFunction(function=launching.launch_setup, kwargs={
            "pipeline": "latency_bench",
            "overrides": {"size": [("ping", "size"), ("pong", "size")],
                          "rate": [("ping", "rate")],
                          "duration": [("ping", "duration")],
                          "output": [("pong", "output")]},
        }),
    ])
