"""The Zenoh bridge: agnoshm topics to and from Zenoh, in rmw_zenoh's wire format (no ROS 2 needed).

    ros2 launch agnoshm zenoh_bridge.launch.py connect:=tcp/192.168.1.10:7447 \\
        topics:="/chatter:std_msgs/msg/String /camera/image_raw"
    ros2 launch agnoshm zenoh_bridge.launch.py config:=my_bridge.yaml mode:=client

Starts ``agnoshm_zenoh_bridge`` (as ``python -m agnoshm.zenoh``, process
``zenoh_bridge``). ``config`` is the bridge's YAML file (default
``config/zenoh_bridge.yaml``; empty: none); ``connect``, ``listen`` and
``topics`` are lists separated by commas or spaces and win over the file, as the
command-line options do; ``on_demand:=true`` also bridges every agnoshm topic
that has a peer on the other side; ``agnoshm_config`` names the agnoshm configuration.
Everything is checked before the process starts (see ``agnoshm.zenoh.launching``);
docs/zenoh.md explains each setting.
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import EnvironmentVariable

from agnoshm.zenoh import launching

CONFIG = Path(__file__).resolve().parent.parent / "config"  # source tree and share/agnoshm alike


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=str(CONFIG / "zenoh_bridge.yaml"),
                              description="the bridge's YAML file (empty: none)"),
        DeclareLaunchArgument("connect", default_value="",
                              description="Zenoh endpoints to connect to, e.g. "
                                          "tcp/192.168.1.10:7447 (empty: config)"),
        DeclareLaunchArgument("listen", default_value="",
                              description="Zenoh endpoints to listen on (empty: config)"),
        DeclareLaunchArgument("mode", default_value="", choices=["", "peer", "client"],
                              description="Zenoh session mode (empty: config, else peer)"),
        DeclareLaunchArgument("topics", default_value="",
                              description="topics NAME[:TYPE] to bridge, added to config's"),
        DeclareLaunchArgument("on_demand", default_value="false", choices=["true", "false"],
                              description="also bridge every agnoshm topic that has a peer on "
                                          "the other side of Zenoh (true: whatever config says)"),
        DeclareLaunchArgument(
            "agnoshm_config",
            default_value=EnvironmentVariable("AGNOSHM_CONFIG",
                                              default_value=str(CONFIG / "agnoshm.yaml")),
            description="agnoshm configuration file (AGNOSHM_CONFIG of the bridge)"),
        OpaqueFunction(function=launching.launch_setup),
    ])
