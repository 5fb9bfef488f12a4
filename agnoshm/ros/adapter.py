"""Zero-copy agnoshm endpoints on rclpy nodes: the ``create_*`` functions.

Use the same calls as on an ``agnoshm.Node``, passing an rclpy node; callbacks
run in whatever rclpy executor spins the node (docs/ros.md, ROS2_NOTES.md §1.5).
The pieces, one module each:

- :mod:`agnoshm.ros.endpoints`: the endpoint classes; a callback subscription
  owns an rclpy guard condition whose callback takes one message at a time;
- :mod:`agnoshm.ros.dispatch`: the one background thread per process that
  turns agnoshm doorbell rings into guard triggers;
- :mod:`agnoshm.ros.binding`: each rclpy node's endpoints and their teardown on
  ``destroy_node()``, ``rclpy.shutdown()``, a signal, ``agnoshm.shutdown()``, fork;
- :mod:`agnoshm.ros.qos`: rclpy QoS settings agnoshm refuses.

Every check runs before anything is created (as rclpy validates in
``Node.create_*``).  rclpy is imported only inside these functions.
"""

from __future__ import annotations

from agnoshm.errors import InvalidHandleError
from agnoshm.events import matched_callback
from agnoshm.matched import get_watcher
from agnoshm.msg import get_message
from agnoshm.node import Node
from agnoshm.qos import resolve_qos
from agnoshm.ros.binding import binding_for, destroy_endpoints, import_rclpy
from agnoshm.ros.dispatch import get_dispatcher
from agnoshm.ros.endpoints import (
    RosPollingSubscription,
    RosPublisher,
    RosSubscription,
    wants_message_info,
)
from agnoshm.ros.qos import check_ros_qos
from agnoshm.topic_name import expand_topic_name, validate_full_topic_name

# destroy_endpoints (agnoshm.ros.binding) is public here too, as it was before the split
__all__ = ["create_publisher", "create_subscription", "create_polling_subscription",
           "resolve_topic_name", "destroy_endpoints"]


def create_publisher(node, msg_type, topic: str, qos_profile, *,
                     event_callbacks=None) -> RosPublisher:
    """Create a zero-copy publisher on an rclpy node (or an ``agnoshm.Node``).

    :param node: an ``rclpy.node.Node``; its name, namespace and remappings apply.
    :param msg_type: an rclpy message class, ``"pkg/msg/Name"`` or an agnoshm type.
    :param topic: topic name, resolved with ``node.resolve_topic_name`` (remaps apply).
    :param qos_profile: an int depth or a ``QoSProfile`` (rclpy's or agnoshm's).
    :param event_callbacks: ``PublisherEventCallbacks(matched=cb)`` (rclpy's or agnoshm's):
        ``cb`` runs in the node's rclpy executor (docs/events.md).
    :raises ImportError: if rclpy is not importable (source ROS 2).
    :raises TypeError: if ``node`` is not an rclpy or agnoshm node.
    :raises InvalidQoSError: for a QoS setting agnoshm cannot honour.
    """
    if isinstance(node, Node):
        return node.create_publisher(msg_type, topic, qos_profile, event_callbacks=event_callbacks)
    binding, msg_type, topic_name, depth, durability = _prepare(node, msg_type, topic, qos_profile)
    matched = matched_callback(event_callbacks, topic_name)
    port = binding.runtime.create_publisher_port(topic_name, msg_type.type_name, msg_type.type_hash,
                                                 depth, durability, binding.name)
    publisher = RosPublisher(binding, port, msg_type, topic_name, qos_profile)
    binding.add(publisher)
    if matched is not None:
        get_watcher(binding.runtime).watch(publisher, matched)
    return publisher


def create_subscription(node, msg_type, topic: str, callback, qos_profile, *,
                        callback_group=None, event_callbacks=None,
                        ignore_local_publications: bool = False) -> RosSubscription:
    """Create a zero-copy subscription whose callback runs in the node's rclpy executor.

    ``callback(msg)`` receives a read-only view of the message in the
    publisher's pool (``msg.to_ros()`` copies it into an rclpy message); a
    callback taking two arguments gets ``(msg, info)`` as in rclpy (Jazzy), with
    ``info`` a dict of ``source_timestamp``, ``received_timestamp`` (ns,
    system clock), ``publication_sequence_number`` (the publisher's own count,
    from 1, as in DDS) and ``reception_sequence_number``.  ``async def`` callbacks are
    awaited by the executor.

    :param callback_group: an rclpy callback group; default the node's default group.
    :param event_callbacks: ``SubscriptionEventCallbacks(matched=cb)`` (rclpy's or agnoshm's).
    :param ignore_local_publications: skip messages published by this process.
    :raises ImportError: if rclpy is not importable (source ROS 2).
    :raises TypeError: if ``node`` is not a node or ``callback`` is not callable
        with one or two arguments.
    :raises InvalidQoSError: for a QoS setting agnoshm cannot honour.
    """
    if isinstance(node, Node):
        return node.create_subscription(msg_type, topic, callback, qos_profile,
                                        callback_group=callback_group,
                                        event_callbacks=event_callbacks,
                                        ignore_local_publications=ignore_local_publications)
    if not callable(callback):
        raise TypeError(f"callback must be callable, not {type(callback).__name__}")
    with_info = wants_message_info(callback)
    binding, msg_type, topic_name, depth, durability = _prepare(node, msg_type, topic, qos_profile)
    matched = matched_callback(event_callbacks, topic_name)
    executor = node.executor
    # rclpy's EventsExecutor (C++, not an rclpy.executors.Executor) refuses guard conditions
    use_tasks = executor is not None and hasattr(executor, "create_task") \
        and not isinstance(executor, binding.rclpy.executors.Executor)
    port = binding.runtime.create_subscriber_port(topic_name, msg_type.type_name,
                                                  msg_type.type_hash, depth, durability, binding.name,
                                                  **_port_options(ignore_local_publications))
    try:
        sub = RosSubscription(binding, port, msg_type, topic_name, callback, qos_profile,
                              callback_group, with_info)
        if not use_tasks:
            sub.attach_guard(node, callback_group)
    except BaseException:
        port.destroy()
        raise
    binding.add(sub)
    get_dispatcher(binding.runtime).add(sub)
    if matched is not None:
        get_watcher(binding.runtime).watch(sub, matched)
    return sub


def create_polling_subscription(node, msg_type, topic: str, qos_profile, *,
                                ignore_local_publications: bool = False
                                ) -> RosPollingSubscription:
    """Create a subscription read with ``take()`` (a view, or None); it never runs callbacks.

    :param ignore_local_publications: skip messages published by this process.
    :raises ImportError: if rclpy is not importable (source ROS 2).
    :raises TypeError: if ``node`` is not an rclpy or agnoshm node.
    """
    if isinstance(node, Node):
        return node.create_polling_subscription(
            msg_type, topic, qos_profile, ignore_local_publications=ignore_local_publications)
    binding, msg_type, topic_name, depth, durability = _prepare(node, msg_type, topic, qos_profile)
    port = binding.runtime.create_subscriber_port(topic_name, msg_type.type_name,
                                                  msg_type.type_hash, depth, durability, binding.name,
                                                  **_port_options(ignore_local_publications))
    sub = RosPollingSubscription(binding, port, msg_type, topic_name, qos_profile)
    binding.add(sub)
    return sub


def _port_options(ignore_local_publications: bool) -> dict:
    # only when asked: the data plane takes ignore_local from the lean rewrite (issue 16) on
    return {"ignore_local": True} if ignore_local_publications else {}


def resolve_topic_name(node, topic: str) -> str:
    """Expand and remap ``topic`` as rclpy does for ``node`` (``-r from:=to`` applies).

    :raises InvalidTopicNameError: for a name breaking ROS 2 rules (with a caret under it).
    """
    expand_topic_name(topic, node.get_name(), node.get_namespace())  # agnoshm's clear errors
    return validate_full_topic_name(node.resolve_topic_name(topic))


def _prepare(node, msg_type, topic, qos_profile):
    """Check everything and bind the node; return (binding, type, topic, depth, durability)."""
    rclpy = check_node(node)
    check_ros_qos(qos_profile)
    depth, durability = resolve_qos(qos_profile)
    msg_type = get_message(msg_type)
    topic_name = resolve_topic_name(node, topic)
    return binding_for(node, rclpy), msg_type, topic_name, depth, durability


def check_node(node):
    """Check that ``node`` is a live rclpy node; return rclpy.

    :raises ImportError: if rclpy is not importable (source ROS 2).
    :raises TypeError: if ``node`` is not an rclpy node.
    :raises InvalidHandleError: if the node was destroyed or its context shut down.
    """
    rclpy = import_rclpy()
    if not isinstance(node, rclpy.node.Node):
        raise TypeError(f"expected an rclpy.node.Node or an agnoshm.Node, got "
                        f"{type(node).__module__}.{type(node).__qualname__}")
    if not node.context.ok():
        # no node.get_*name() here: since Kilted, rclpy.shutdown() destroys the context's nodes
        raise InvalidHandleError("the rclpy context of this node was shut down (rclpy.shutdown() "
                                 "or Ctrl-C): call rclpy.init() and create a new node")
    try:
        with node.handle:
            pass
    except RuntimeError:  # rclpy's InvalidHandle
        raise InvalidHandleError("this rclpy node was destroyed (destroy_node()): create a new "
                                 "node") from None
    return rclpy
