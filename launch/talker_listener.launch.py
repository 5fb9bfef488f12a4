"""Start agnoshm's talker and listener (zero copy between the two processes).

    ros2 launch agnoshm talker_listener.launch.py count:=20
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    count = LaunchConfiguration("count")
    return LaunchDescription([
        DeclareLaunchArgument("count", default_value="0", description="messages (0: forever)"),
        Node(package="agnoshm", executable="listener", name="listener", output="screen",
             arguments=["--count", count]),
        Node(package="agnoshm", executable="talker", name="talker", output="screen",
             arguments=["--count", count, "--wait-subscribers", "1"]),
    ])
