"""agnoshm: true zero-copy publish/subscribe for Python ROS 2 nodes.

The story, as in rclpy: start (``agnoshm.init()``, or just create a node),
create a node, create publishers and subscriptions, spin, shut down::

    import agnoshm
    node = agnoshm.Node("talker")
    pub = node.create_publisher(agnoshm.Bytes, "/chatter", 10)
    msg = pub.borrow_loaned_message()
    msg.alloc("data", 1 << 20)[:] = 7       # written in shared memory, never copied
    pub.publish(msg)
    agnoshm.spin(node)
    node.destroy_node(); agnoshm.shutdown()
"""

from agnoshm.context import init, ok, shutdown
from agnoshm.errors import (
    AddressRangeInUseError,
    AgnoshmError,
    InvalidHandleError,
    InvalidQoSError,
    InvalidTopicNameError,
    LimitReachedError,
    LoanError,
    MessageInvalidatedError,
    NotInitializedError,
    PoolAccessError,
    PoolExhaustedError,
    RegistryCorruptedError,
    RegistryError,
    RegistryVersionError,
    TypeMismatchError,
)
from agnoshm.executor import Executor, SingleThreadedExecutor, spin, spin_once
from agnoshm.msg import get_message, register_msg, register_package
from agnoshm.node import Node
from agnoshm.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

__version__ = "0.1.0"

__all__ = [
    "AddressRangeInUseError", "AgnoshmError", "Bytes", "DurabilityPolicy", "Executor",
    "HistoryPolicy", "InvalidHandleError", "InvalidQoSError", "InvalidTopicNameError",
    "LimitReachedError", "LoanError", "MessageInvalidatedError", "Node", "NotInitializedError",
    "PoolAccessError", "PoolExhaustedError", "QoSProfile", "RegistryCorruptedError",
    "RegistryError", "RegistryVersionError", "ReliabilityPolicy", "SingleThreadedExecutor",
    "TypeMismatchError", "create_publisher", "get_message", "register_msg", "register_package", "create_subscription", "init", "ok", "shutdown",
    "spin", "spin_once",
]


def __getattr__(name):
    if name == "Bytes":  # registered on first use: resolving it loads the type sources
        from agnoshm.msg.bytes import bytes_type

        return bytes_type()
    raise AttributeError(f"module 'agnoshm' has no attribute {name!r}")


def create_publisher(node, msg_type, topic, qos_profile):
    """Create a zero-copy publisher on an ``agnoshm.Node`` (rclpy nodes: see agnoshm.ros)."""
    if isinstance(node, Node):
        return node.create_publisher(msg_type, topic, qos_profile)
    raise TypeError(f"expected an agnoshm.Node, got {type(node).__name__}")


def create_subscription(node, msg_type, topic, callback, qos_profile, **kwargs):
    """Create a zero-copy subscription on an ``agnoshm.Node`` (rclpy nodes: see agnoshm.ros)."""
    if isinstance(node, Node):
        return node.create_subscription(msg_type, topic, callback, qos_profile, **kwargs)
    raise TypeError(f"expected an agnoshm.Node, got {type(node).__name__}")
