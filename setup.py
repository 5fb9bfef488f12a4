"""agnoshm: plain `pip install .` and ament_python (colcon) both use this file."""

from glob import glob

from setuptools import find_packages, setup

package_name = "agnoshm"

setup(
    name=package_name,
    version="0.1.0",
    description="True zero-copy publish/subscribe IPC for Python ROS 2 nodes",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["agnoshm", "agnoshm.*", "heaphook", "heaphook.*"]),
    package_data={"agnoshm": ["py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
    ],
    install_requires=["numpy>=1.22", "PyYAML>=5.4", "rosbags>=0.10"],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6"],
        "plot": ["matplotlib>=3.5"],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "agnoshm = agnoshm.cli.main:main",
            "talker = agnoshm.demo.talker:main",
            "agnoshm_bridge = agnoshm.ros.bridge:main",
            "listener = agnoshm.demo.listener:main",
        ],
        "ros2cli.command": ["agnoshm = agnoshm.cli.ros2cli:AgnoshmCommand"],
    },
)
