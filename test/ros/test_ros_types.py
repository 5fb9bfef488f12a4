"""Message types from ROS 2's Python packages, as pip-installed (wheels) and apt-installed
ROS 2 provide them: no rosidl_runtime_py (PyPI has none), and no recursion where an
rclpy-style resolver (``rosidl_runtime_py.utilities.get_message``: import ``pkg.msg``, take
the attribute) meets ``agnoshm.msg.Bytes``; and the skips of the ROS tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import agnoshm
import ros_packages
from agnoshm.msg.types import TypeRegistry
from sources import child_env

# rosidl_runtime_py.utilities.get_message, as apt's ROS 2 has it: import pkg.msg, take Name
_RESOLVER = '''
import importlib


def get_message(identifier):
    package, interface, name = identifier.split("/")
    return getattr(importlib.import_module(f"{package}.{interface}"), name)
'''

_USE_BYTES = """
import agnoshm
from agnoshm.msg import types

bytes_type = agnoshm.Bytes
registry = types.default_registry()
print(bytes_type.type_name, "|", registry.get("agnoshm/msg/Bytes").source, "|",
      registry._rclpy_source() is not None)
"""


def test_bytes_resolves_where_an_rclpy_style_resolver_is_importable(tmp_path):
    """Defect 1 of issue 14: with rclpy and rosidl_runtime_py importable (stand-ins here,
    each as apt's ROS 2 has it), ``agnoshm.Bytes`` recursed until RecursionError."""
    (tmp_path / "rclpy").mkdir()
    (tmp_path / "rclpy" / "__init__.py").write_text('"""stand-in: importable, as in ROS 2"""\n')
    (tmp_path / "rosidl_runtime_py").mkdir()
    (tmp_path / "rosidl_runtime_py" / "__init__.py").write_text("")
    (tmp_path / "rosidl_runtime_py" / "utilities.py").write_text(_RESOLVER)
    # the stand-ins come first: the cwd is sys.path[0] for ``python -c``
    env = child_env(base={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(_USE_BYTES)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split(" | ") == ["agnoshm/msg/Bytes", "agnoshm (built in)", "True\n"]


def test_the_ros_type_source_imports_the_message_module_itself(monkeypatch, tmp_path):
    """What rosidl_runtime_py did, agnoshm does: ``Name`` from ``pkg.msg``; a missing
    package or name is no ROS type (the next source answers), never an error."""
    monkeypatch.setitem(sys.modules, "rosidl_runtime_py", None)  # not needed any more
    package = tmp_path / "stand_in_msgs" / "msg"
    package.mkdir(parents=True)
    (tmp_path / "stand_in_msgs" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("class NotAMessage:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AttributeError, match="no ROS 2 message class NotAMessage"):
        agnoshm.msg.rclpy_source.ros_message_class("stand_in_msgs/msg/NotAMessage")
    with pytest.raises(ImportError):
        agnoshm.msg.rclpy_source.ros_message_class("no_such_msgs/msg/Thing")


@pytest.mark.ros
@ros_packages.needs("std_msgs.msg", "sensor_msgs.msg")
def test_types_and_to_ros_come_from_rclpy_without_rosidl_runtime_py(isolated_domain, monkeypatch):
    """Defect 2 of issue 14: pip's ROS 2 has no rosidl_runtime_py; the rclpy classes are
    still the first type source, and views copy out to them (octets included)."""
    for name in ("rosidl_runtime_py", "rosidl_runtime_py.utilities"):
        monkeypatch.setitem(sys.modules, name, None)  # as with pip's ROS 2 wheels
    from sensor_msgs.msg import Image
    from std_msgs.msg import ByteMultiArray, String

    registry = TypeRegistry()
    assert registry.get("sensor_msgs/msg/Image").source == "rclpy"
    assert registry.get("agnoshm/msg/Bytes").source == "agnoshm (built in)"
    node = agnoshm.Node("types")
    octets = ByteMultiArray(data=[b"\x00", b"\x80", b"\xff"])
    image = Image(height=1, width=3, encoding="mono8", step=3, data=bytes([1, 2, 3]))
    for ros_msg in (String(data="hi"), octets, image):
        topic = "/" + type(ros_msg).__name__.lower()
        pub = node.create_publisher(type(ros_msg), topic, 1)
        sub = node.create_polling_subscription(type(ros_msg), topic, 1)
        pub.publish(ros_msg)
        assert sub.take().to_ros() == ros_msg


def test_to_ros_of_a_type_without_an_rclpy_class_names_the_package(isolated_domain):
    pub = agnoshm.Node("types").create_publisher(agnoshm.Bytes, "/raw", 1)
    sub = agnoshm.Node("reader").create_polling_subscription(agnoshm.Bytes, "/raw", 1)
    pub.publish({"data": b"abc"})
    with pytest.raises(ImportError, match="agnoshm/msg/Bytes has no rclpy class"):
        sub.take().to_ros()


# -- skips -----------------------------------------------------------------------------------------

def test_a_ros_skip_names_every_missing_package_and_how_to_get_it(monkeypatch):
    """Defect 6 of issue 14: a test that needs more than rclpy and std_msgs says so."""
    for name in ("rclpy", "sensor_msgs", "sensor_msgs.msg", "nav_msgs", "nav_msgs.msg"):
        monkeypatch.setitem(sys.modules, name, None)  # `import name` raises ImportError
    assert ros_packages.missing("sensor_msgs.msg", "nav_msgs.msg") == \
        ["rclpy", "sensor_msgs", "nav_msgs"]
    with pytest.raises(pytest.skip.Exception) as info:
        ros_packages.require("sensor_msgs.msg", "nav_msgs.msg")
    reason = str(info.value)
    mark = ros_packages.needs("sensor_msgs.msg", "nav_msgs.msg").mark
    assert mark.args == (True,) and mark.kwargs["reason"] == reason
    assert reason.startswith(ros_packages.MISSING)
    assert "rclpy, sensor_msgs, nav_msgs" in reason
    assert "pip install ros-rclpy ros-sensor-msgs ros-nav-msgs" in reason
