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
from agnoshm.signals import ExternalShutdownException, SignalHandlerOptions
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
    ServiceCallbackError,
    ServiceError,
    ServiceExistsError,
    ServiceTimeoutError,
    ServiceUnavailableError,
    TypeMismatchError,
    UnknownFieldError,
)
from agnoshm.callback_groups import (
    CallbackGroup,
    MutuallyExclusiveCallbackGroup,
    ReentrantCallbackGroup,
)
from agnoshm.executor import (
    CallbackIsolatedExecutor,
    Executor,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
    get_global_executor,
    spin,
    spin_once,
    spin_until_future_complete,
)
from agnoshm.executors.thread_config import ThreadConfigError, ThreadSettingError
from agnoshm.config import ConfigError
from agnoshm._native import NativeUnavailableError
from agnoshm.task import Future
from agnoshm.events import (
    MatchedInfo,
    PublisherEventCallbacks,
    SubscriptionEventCallbacks,
    UnsupportedEventTypeError,
)
from agnoshm.msg import MessageDefinitionError, get_message, register_msg, register_package
from agnoshm.msg.srv import get_service, register_srv
from agnoshm.node import Node
from agnoshm.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

__version__ = "0.1.0"

__all__ = [
    "CallbackGroup", "CallbackIsolatedExecutor", "ThreadConfigError", "ThreadSettingError",
    "ConfigError", "NativeUnavailableError",
    "Future", "MultiThreadedExecutor", "MutuallyExclusiveCallbackGroup",
    "ReentrantCallbackGroup", "create_polling_subscription", "get_global_executor",
    "spin_until_future_complete",
    "AddressRangeInUseError", "AgnoshmError", "Bytes", "DurabilityPolicy", "Executor",
    "ExternalShutdownException", "SignalHandlerOptions",
    "HistoryPolicy", "InvalidHandleError", "InvalidQoSError", "InvalidTopicNameError",
    "LimitReachedError", "LoanError", "MessageDefinitionError", "MessageInvalidatedError", "Node",
    "NotInitializedError",
    "PoolAccessError", "PoolExhaustedError", "QoSProfile", "RegistryCorruptedError",
    "RegistryError", "RegistryVersionError", "ReliabilityPolicy", "SingleThreadedExecutor",
    "ServiceCallbackError", "ServiceError", "ServiceExistsError", "ServiceTimeoutError",
    "ServiceUnavailableError", "get_service", "register_srv",
    "TypeMismatchError", "UnknownFieldError", "create_publisher", "get_message", "register_msg", "register_package", "create_subscription", "init", "ok", "shutdown",
    "spin", "spin_once", "create_service", "create_client",
    "MatchedInfo", "PublisherEventCallbacks", "SubscriptionEventCallbacks",
    "UnsupportedEventTypeError",
]


def __getattr__(name):
    if name == "Bytes":  # resolved on first use: resolving it loads the type sources
        from agnoshm.msg.message import bytes_type

        return bytes_type()
    if name == "aio":  # asyncio support, imported on first use
        import importlib

        return importlib.import_module("agnoshm.aio")
    raise AttributeError(f"module 'agnoshm' has no attribute {name!r}")


def _is_rclpy_node(node) -> bool:
    return any(cls.__module__.startswith("rclpy.") for cls in type(node).__mro__)


def create_publisher(node, msg_type, topic, qos_profile, **options):
    """Create a zero-copy publisher on an ``agnoshm.Node`` or an ``rclpy.node.Node``.

    ``options``: ``event_callbacks`` (docs/events.md).

    :raises TypeError: if ``node`` is neither.
    """
    if isinstance(node, Node):
        return node.create_publisher(msg_type, topic, qos_profile, **options)
    if _is_rclpy_node(node):
        from agnoshm import ros

        return ros.create_publisher(node, msg_type, topic, qos_profile, **options)
    raise TypeError(f"expected an agnoshm.Node or an rclpy.node.Node, got {type(node).__name__}")


def create_subscription(node, msg_type, topic, callback, qos_profile, *, callback_group=None,
                        **options):
    """Create a zero-copy subscription on an ``agnoshm.Node`` or an ``rclpy.node.Node``;
    on an rclpy node the callback runs in whatever executor spins that node.

    ``options``: ``event_callbacks``, ``ignore_local_publications`` (docs/events.md).

    :raises TypeError: if ``node`` is neither.
    """
    if isinstance(node, Node):
        return node.create_subscription(msg_type, topic, callback, qos_profile,
                                        callback_group=callback_group, **options)
    if _is_rclpy_node(node):
        from agnoshm import ros

        return ros.create_subscription(node, msg_type, topic, callback, qos_profile,
                                       callback_group=callback_group, **options)
    raise TypeError(f"expected an agnoshm.Node or an rclpy.node.Node, got {type(node).__name__}")


def create_polling_subscription(node, msg_type, topic, qos_profile, **options):
    """Create a polling subscription (``take()``) on an ``agnoshm.Node`` or an rclpy node;
    ``options``: ``ignore_local_publications``."""
    if isinstance(node, Node):
        return node.create_polling_subscription(msg_type, topic, qos_profile, **options)
    if _is_rclpy_node(node):
        from agnoshm import ros

        return ros.create_polling_subscription(node, msg_type, topic, qos_profile, **options)
    raise TypeError(f"expected an agnoshm.Node or an rclpy.node.Node, got {type(node).__name__}")


def create_service(node, srv_type, srv_name, callback, **options):
    """Create a service server on an ``agnoshm.Node`` or an ``rclpy.node.Node``; on an rclpy
    node the callback runs in whatever executor spins that node (docs/services.md).

    ``options``: ``qos_profile``, ``callback_group``.

    :raises TypeError: if ``node`` is neither.
    """
    if isinstance(node, Node):
        return node.create_service(srv_type, srv_name, callback, **options)
    if _is_rclpy_node(node):
        from agnoshm import ros

        return ros.create_service(node, srv_type, srv_name, callback, **options)
    raise TypeError(f"expected an agnoshm.Node or an rclpy.node.Node, got {type(node).__name__}")


def create_client(node, srv_type, srv_name, **options):
    """Create a service client on an ``agnoshm.Node`` or an ``rclpy.node.Node``
    (docs/services.md); ``options``: ``qos_profile``, ``callback_group``.

    :raises TypeError: if ``node`` is neither.
    """
    if isinstance(node, Node):
        return node.create_client(srv_type, srv_name, **options)
    if _is_rclpy_node(node):
        from agnoshm import ros

        return ros.create_client(node, srv_type, srv_name, **options)
    raise TypeError(f"expected an agnoshm.Node or an rclpy.node.Node, got {type(node).__name__}")
