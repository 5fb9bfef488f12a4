"""``agnoshm_bridge``: agnoshm topics ⇄ ROS 2 topics, so plain ROS 2 tools see them.

Two directions, as Agnocast's bridge has:

* **agnoshm → ROS 2** (``to_ros``): an agnoshm subscription republishes each
  message (``view.to_ros()``) on an rclpy publisher, so ``ros2 topic echo``,
  rosbag2 and rclcpp/rclpy nodes receive it;
* **ROS 2 → agnoshm** (``to_agnoshm``): an rclpy subscription copies each
  message into an agnoshm loan and publishes it to agnoshm subscriptions.

A topic is bridged **on demand** (a direction exists only while its source
has a publisher and its destination a subscriber, not counting bridges) and/or
because it is **configured** (``--topic`` or the YAML file), in one direction
or both.

No echo: the bridge never hands a message back to the side it came from.
On the agnoshm side every endpoint of a bridge node (the registry records the
node name of each endpoint) is left out of the demand counts, and a message
published by a bridge's agnoshm publisher is never sent to ROS 2.  On the ROS
side the bridge's own endpoints are left out of the graph counts by node name,
and when a topic is bridged both ways, the bridge recognises its own
publications coming back on its ROS subscription (:class:`EchoFilter`: the
bridge publishes serialized bytes and remembers their digests), since rclpy
reports no publisher GID per message.

The pieces, one module each; all but :mod:`~agnoshm.ros.bridge.relay` and the
end of :mod:`~agnoshm.ros.bridge.cli` are pure logic, testable without ROS 2:

- :mod:`agnoshm.ros.bridge.graph`: snapshots of both sides, without bridges' endpoints;
- :mod:`agnoshm.ros.bridge.routes`: :func:`plan`, which topics to relay in which direction;
- :mod:`agnoshm.ros.bridge.echo`: :class:`EchoFilter` and :func:`is_bridged_message`;
- :mod:`agnoshm.ros.bridge.config`: ``--topic`` specs and the YAML file;
- :mod:`agnoshm.ros.bridge.relay`: :class:`Bridge`, the relays on an rclpy node;
- :mod:`agnoshm.ros.bridge.cli`: :func:`main`, the ``agnoshm_bridge`` program
  (``python -m agnoshm.ros.bridge`` runs it too).

Importing this package never imports rclpy.
"""

from agnoshm.ros.bridge.cli import NEEDS_ROS, build_parser, main
from agnoshm.ros.bridge.config import (
    DEFAULT_PERIOD_SEC,
    BridgeConfigError,
    BridgeOptions,
    load_options,
    parse_topic,
    split_ros_args,
    topic_config,
)
from agnoshm.ros.bridge.echo import EchoFilter, is_bridged_message
from agnoshm.ros.bridge.graph import (
    BRIDGE_NODE_NAME,
    AgnoshmTopic,
    RosTopic,
    agnoshm_topics,
    is_bridge_node,
    ros_topic,
)
from agnoshm.ros.bridge.relay import Bridge
from agnoshm.ros.bridge.routes import (
    BOTH,
    DEFAULT_DEPTH,
    DIRECTIONS,
    TO_AGNOSHM,
    TO_ROS,
    Route,
    TopicConfig,
    plan,
)

__all__ = [
    "BOTH", "BRIDGE_NODE_NAME", "DEFAULT_DEPTH", "DEFAULT_PERIOD_SEC", "DIRECTIONS", "NEEDS_ROS",
    "TO_AGNOSHM", "TO_ROS", "AgnoshmTopic", "Bridge", "BridgeConfigError", "BridgeOptions",
    "EchoFilter", "RosTopic", "Route", "TopicConfig", "agnoshm_topics", "build_parser",
    "is_bridge_node", "is_bridged_message", "load_options", "main", "parse_topic", "plan",
    "ros_topic", "split_ros_args", "topic_config",
]
