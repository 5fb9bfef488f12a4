"""Start agnoshm's talker and listener (zero copy between the two processes).

    ros2 launch agnoshm talker_listener.launch.py count:=20

Parameters come from ``config/talker_listener.yaml`` (``params_file``),
overridden by the launch arguments below; ``agnoshm_config`` names the agnoshm
configuration. Everything is checked before any process starts (see
``agnoshm.demo.launching``); rclpy nodes via launch_ros where ROS 2 is sourced,
plain processes otherwise.
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction

from agnoshm.demo import launching

CONFIG = Path(__file__).resolve().parent.parent / "config"  # source tree and share/agnoshm alike


def generate_launch_description():
    return LaunchDescription([
        *launching.declare_common_arguments("talker_listener", CONFIG),
        DeclareLaunchArgument("count", default_value="",
                              description="messages (0: forever; empty: params_file)"),
        DeclareLaunchArgument("rate", default_value="",
                              description="talker messages per second (empty: params_file)"),
        OpaqueFunction(function=launching.launch_setup, kwargs={
            "pipeline": "talker_listener",
            "overrides": {"count": [("talker", "count"), ("listener", "count")],
                          "rate": [("talker", "rate")]},
        }),
    ])
