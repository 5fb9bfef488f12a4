"""Camera -> processing -> sink: three processes passing 1920x1080 images with zero copies.

    ros2 launch agnoshm image_pipeline.launch.py count:=100 rate:=30
    ros2 launch agnoshm image_pipeline.launch.py params_file:=my_pipeline.yaml use_ros:=false

``image_publisher`` (node ``camera``) publishes rgb8 ``sensor_msgs/msg/Image``
frames, ``image_processor`` (``processor``) turns them into mono8 images and
``image_subscriber`` (``sink``) checks order, sizes and pixels. Parameters come
from ``config/image_pipeline.yaml`` (``params_file``), overridden by the launch
arguments below; ``agnoshm_config`` names the agnoshm configuration. Everything is
checked before any process starts (see ``agnoshm.demo.launching``). Runs with
``launch`` alone (plain processes) and with ROS 2 (rclpy nodes via launch_ros).
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction

from agnoshm.demo import launching

CONFIG = Path(__file__).resolve().parent.parent / "config"  # source tree and share/agnoshm alike


def generate_launch_description():
    return LaunchDescription([
        *launching.declare_common_arguments("image_pipeline", CONFIG),
        DeclareLaunchArgument("count", default_value="",
                              description="frames each process handles (empty: params_file)"),
        DeclareLaunchArgument("rate", default_value="",
                              description="camera frames per second (empty: params_file)"),
        OpaqueFunction(function=launching.launch_setup, kwargs={
            "pipeline": "image_pipeline",
            "overrides": {"count": [("camera", "count"), ("processor", "count"), ("sink", "count")],
                          "rate": [("camera", "rate")]},
        }),
    ])
