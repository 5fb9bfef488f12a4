"""agnoshm inside ROS 2: zero-copy endpoints on rclpy nodes, and the ROS 2 bridge.

Use the same calls as on an ``agnoshm.Node``, passing an rclpy node; callbacks
(of subscriptions, and of services: ``create_service``, ``create_client``) run in
whatever rclpy executor spins the node::

    import rclpy, agnoshm.ros
    from std_msgs.msg import String

    rclpy.init()
    node = rclpy.create_node("listener")
    sub = agnoshm.ros.create_subscription(node, String, "chatter", print, 10)
    rclpy.spin(node)          # callbacks get read-only views in the publisher's memory

The bridge (``agnoshm_bridge``, :mod:`agnoshm.ros.bridge`) makes agnoshm
topics visible to ``ros2 topic echo`` and rosbag2, and feeds ROS 2 publishers
into agnoshm subscriptions.

Modules: :mod:`~agnoshm.ros.adapter` (the ``create_*`` functions of topics),
:mod:`~agnoshm.ros.services` (``create_service``, ``create_client``; loaded on first use),
:mod:`~agnoshm.ros.isolated` (``CallbackIsolatedExecutor``, a thread per callback group of
rclpy nodes, and ``name_callback_group``; loaded on first use),
:mod:`~agnoshm.ros.endpoints`, :mod:`~agnoshm.ros.dispatch` (the background
thread), :mod:`~agnoshm.ros.binding` (teardown hooks), :mod:`~agnoshm.ros.qos`
and :mod:`~agnoshm.ros.bridge`.

Importing this package never imports rclpy (it is loaded by the functions
that need it), so it works, and fails clearly, where ROS 2 is not sourced.
"""

from agnoshm.ros.adapter import (
    create_polling_subscription,
    create_publisher,
    create_subscription,
    resolve_topic_name,
)
from agnoshm.ros.binding import destroy_endpoints
from agnoshm.ros.endpoints import RosPollingSubscription, RosPublisher, RosSubscription
from agnoshm.ros.qos import check_ros_qos

__all__ = [
    "CallbackIsolatedExecutor", "name_callback_group",
    "RosPollingSubscription", "RosPublisher", "RosSubscription", "check_ros_qos",
    "create_client", "create_polling_subscription", "create_publisher", "create_service",
    "create_subscription", "destroy_endpoints", "resolve_topic_name",
]


def __getattr__(name):
    if name in ("create_service", "create_client"):  # services import asyncio: on first use
        from agnoshm.ros import services

        return getattr(services, name)
    if name in ("CallbackIsolatedExecutor", "name_callback_group"):  # subclasses rclpy's Executor
        from agnoshm.ros import isolated

        return getattr(isolated, name)
    raise AttributeError(f"module 'agnoshm.ros' has no attribute {name!r}")
