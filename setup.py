"""agnoshm: plain `pip install .` and ament_python (colcon) both use this file."""

import os
import sys
from glob import glob

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

package_name = "agnoshm"
HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_COMMANDS = {"build", "build_py", "install", "develop", "bdist_wheel", "editable_wheel"}


def check_config() -> None:
    """Refuse to build or install with a broken config/*.yaml (``colcon build``, ``setup.py
    install``): one line naming the file, the key and the fix, and nothing installed."""
    if not BUILD_COMMANDS & set(sys.argv[1:]):
        return
    sys.path.insert(0, HERE)
    try:
        from agnoshm.config import ConfigError
        from agnoshm.demo.check_config import check_paths
    except ImportError as err:  # pip's isolated build environment: no numpy / PyYAML
        print(f"note: config/*.yaml not checked at build time ({err}); "
              "python3 -m agnoshm.demo.check_config checks them", file=sys.stderr)
        return
    finally:
        sys.path.remove(HERE)
    try:
        check_paths([os.path.join(HERE, "config")])
    except ConfigError as err:
        sys.exit(f"error: {type(err).__name__}: {err}")


check_config()


class OptionalBuildExt(build_ext):
    """Build the C message path (agnoshm/_native) where a compiler is found; elsewhere say so
    in one line and install the pure-Python path, which works the same (only slower)."""

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as err:  # CompileError, no compiler, no Python.h: all mean the same
            reason = " ".join(str(err).split()) or type(err).__name__
            print(f"agnoshm: the native message path ({ext.name}) was not built ({reason}); "
                  "agnoshm runs in pure Python. Install gcc and python3-dev and reinstall "
                  "to build it (agnoshm doctor shows which path runs)", file=sys.stderr)


# The stable ABI (3.10): one wheel for every Python agnoshm supports.
NATIVE = Extension("agnoshm._native._ring",
                   ["agnoshm/_native/ring.c", "agnoshm/_native/blocks.c",
                    "agnoshm/_native/loan.c"], depends=["agnoshm/_native/loan.h"], optional=True,
                   py_limited_api=True, define_macros=[("Py_LIMITED_API", "0x030A0000")],
                   extra_compile_args=["-std=gnu11", "-O2"])

setup(
    name=package_name,
    version="0.1.0",
    description="True zero-copy publish/subscribe IPC for Python ROS 2 nodes",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["agnoshm", "agnoshm.*", "heaphook", "heaphook.*"]),
    # the .srv (and service_msgs) definitions agnoshm knows without ROS (agnoshm/msg/srv.py)
    package_data={"agnoshm": ["py.typed", "msg/interfaces/*/srv/*.srv",
                              "msg/interfaces/*/msg/*.msg", "_native/_ring.pyi"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
    ],
    install_requires=["numpy>=1.22", "PyYAML>=5.4", "rosbags>=0.10"],
    extras_require={
        # below 9: pytest 9 refuses launch_testing's plugin (its hook
        # `pytest_pycollect_makemodule(path, parent)`: Humble 1.0, Jazzy 3.4, Rolling 3.7;
        # ros2/launch#979), which a ROS 2 install loads: pytest stops before any test.
        "test": ["pytest>=7,<9", "hypothesis>=6"],
        "plot": ["matplotlib>=3.5"],
        # other middlewares for `agnoshm bench` (agnoshm/bench/peer_*.py), at the tested versions
        "peers": ["iceoryx2>=0.10,<0.11", "eclipse-zenoh>=1.10,<2", "cyclonedds>=11.0,<12"],
        # the Zenoh bridge (agnoshm/zenoh/): zenoh.ext's advanced pub/sub, XXH3-128 for GIDs
        "zenoh": ["eclipse-zenoh>=1.10,<2", "xxhash>=3.0"],
    },
    ext_modules=[NATIVE],
    cmdclass={"build_ext": OptionalBuildExt},
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "agnoshm = agnoshm.cli.main:main",
            "talker = agnoshm.demo.talker:main",
            "agnoshm_bridge = agnoshm.ros.bridge:main",
            "agnoshm_zenoh_bridge = agnoshm.zenoh:main",
            "listener = agnoshm.demo.listener:main",
            "image_publisher = agnoshm.demo.image_publisher:main",
            "image_processor = agnoshm.demo.image_processor:main",
            "image_subscriber = agnoshm.demo.image_subscriber:main",
            "latency_ping = agnoshm.demo.latency_ping:main",
            "latency_pong = agnoshm.demo.latency_pong:main",
        ],
        "ros2cli.command": ["agnoshm = agnoshm.cli.ros2cli:AgnoshmCommand"],
    },
)
