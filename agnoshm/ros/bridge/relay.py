"""The running bridge (needs rclpy): :class:`Bridge` keeps one relay per planned route.

Each period :meth:`Bridge.update` takes both snapshots
(:mod:`agnoshm.ros.bridge.graph`), plans (:func:`~agnoshm.ros.bridge.routes.plan`),
stops the relays no longer wanted and starts the new ones.  A relay holds the
rclpy and agnoshm endpoints of one topic and copies each message across,
skipping echoes (:mod:`agnoshm.ros.bridge.echo`).

Names: rclpy (rcl) applies the node's remap rules to every name an endpoint
is created on, absolute ones included, and so does
:func:`agnoshm.ros.adapter.resolve_topic_name`.  Configured names are resolved
once, when the bridge starts; a route whose name a rule would rename again is
skipped with the reason, since its endpoints would land on another topic.

rclpy is imported only inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterable

from agnoshm.errors import LoanError
from agnoshm.qos import DurabilityPolicy, ReliabilityPolicy
from agnoshm.ros.bridge.echo import EchoFilter, is_bridged_message
from agnoshm.ros.bridge.graph import AgnoshmTopic, RosTopic, agnoshm_topics, ros_topic
from agnoshm.ros.bridge.routes import BOTH, TO_AGNOSHM, TO_ROS, Route, TopicConfig, plan

_logger = logging.getLogger("agnoshm.bridge")

#: a message that cannot be copied across (a value the other side refuses, a full pool) is
#: dropped with a warning: it must not end the bridge's spin and every other topic with it.
#: rclpy's generated setters refuse values with ``assert``.
_UNCOPYABLE = (TypeError, ValueError, AssertionError, LoanError)


def _durability(transient_local: bool) -> int:
    # rclpy accepts the plain int values of rmw's enums (agnoshm's enums are IntEnums)
    return DurabilityPolicy.TRANSIENT_LOCAL if transient_local else DurabilityPolicy.VOLATILE


class _TopicBridge:
    """The endpoints bridging one topic (one or both directions)."""

    def __init__(self, bridge: "Bridge", route: Route):
        from rclpy.qos import QoSProfile

        from agnoshm.msg.convert import ros_message_class
        from agnoshm.ros import adapter

        self.route = route
        self._bridge = bridge
        self._ros_pub = self._ros_sub = self._agnoshm_pub = self._agnoshm_sub = None
        self._echo = EchoFilter() if route.direction == BOTH else None
        self._ros_type = ros_message_class(route.type_name)  # ImportError names the package
        self.forwarded = {TO_ROS: 0, TO_AGNOSHM: 0}
        self.dropped = {TO_ROS: 0, TO_AGNOSHM: 0}
        node = bridge.node
        try:
            if route.to_agnoshm:
                qos = QoSProfile(depth=route.depth, durability=_durability(
                    route.transient_local_to_agnoshm))
                self._agnoshm_pub = adapter.create_publisher(node, route.type_name, route.topic, qos)
                qos = QoSProfile(depth=route.depth, durability=qos.durability, reliability=(
                    ReliabilityPolicy.BEST_EFFORT if route.best_effort_from_ros
                    else ReliabilityPolicy.RELIABLE))
                self._ros_sub = node.create_subscription(self._ros_type, route.topic,
                                                         self._from_ros, qos, raw=True)
            if route.to_ros:
                qos = QoSProfile(depth=route.depth, durability=_durability(
                    route.transient_local_to_ros))
                self._ros_pub = node.create_publisher(self._ros_type, route.topic, qos)
                self._agnoshm_sub = adapter.create_subscription(
                    node, route.type_name, route.topic, self._from_agnoshm, qos)
        except BaseException:
            self.close()
            raise

    def count_relayed(self, ros: RosTopic | None) -> None:
        """Make this route's agnoshm endpoints count, in ``get_subscription_count()`` and
        ``get_publisher_count()``, as the ROS 2 endpoints they stand for (not themselves):
        its publisher as the ROS publishers, its subscription as the ROS subscribers."""
        if self._agnoshm_pub is not None:
            self._agnoshm_pub._set_relayed(ros.publishers if ros is not None else 0)
        if self._agnoshm_sub is not None:
            self._agnoshm_sub._set_relayed(ros.subscribers if ros is not None else 0)

    def _from_agnoshm(self, view) -> None:
        """agnoshm → ROS 2: skip what a bridge published, publish a copy of the rest."""
        if is_bridged_message(view, self._bridge.registry, self._bridge.own_name):
            return
        try:
            msg = view.to_ros()
        except _UNCOPYABLE as err:
            self._drop(TO_ROS, err)
            return
        if self._echo is not None:
            from rclpy.serialization import serialize_message

            data = serialize_message(msg)
            self._echo.note(data)
            self._ros_pub.publish(data)
        else:
            self._ros_pub.publish(msg)
        self.forwarded[TO_ROS] += 1

    def _from_ros(self, data: bytes) -> None:
        """ROS 2 → agnoshm: skip the bridge's own publications, copy the rest into a loan."""
        if self._echo is not None and self._echo.is_echo(data):
            return
        from rclpy.serialization import deserialize_message

        try:
            self._agnoshm_pub.publish(deserialize_message(data, self._ros_type))
        except _UNCOPYABLE as err:
            self._drop(TO_AGNOSHM, err)
            return
        self.forwarded[TO_AGNOSHM] += 1

    def _drop(self, direction: str, err: Exception) -> None:
        """One message could not be copied across: count it, say why (the first time and
        at every power of ten), and keep bridging the rest."""
        self.dropped[direction] += 1
        count = self.dropped[direction]
        if str(count).rstrip("0") == "1":
            _logger.warning("dropped a %s message on %s going %s (%d so far): %s: %s",
                            self.route.type_name, self.route.topic, direction, count,
                            type(err).__name__, err)

    def close(self) -> None:
        node = self._bridge.node
        if self._agnoshm_sub is not None:
            self._agnoshm_sub.destroy()
        if self._ros_sub is not None:
            node.destroy_subscription(self._ros_sub)
        if self._ros_pub is not None:
            node.destroy_publisher(self._ros_pub)
        if self._agnoshm_pub is not None:
            self._agnoshm_pub.destroy()
        self._ros_pub = self._ros_sub = self._agnoshm_pub = self._agnoshm_sub = None


class Bridge:
    """Keeps the bridged topics in line with demand and configuration; call :meth:`update`
    periodically (``main`` does it from a timer on the bridge's node).

    :param node: the rclpy node that owns the bridge's endpoints (its name should
        start with ``agnoshm_bridge`` so other bridges recognise it).
    """

    def __init__(self, node, *, topics: Iterable[TopicConfig] = (), on_demand: bool = True):
        from agnoshm import context

        self.node = node
        self.on_demand = on_demand
        self.own_name = node.get_fully_qualified_name()
        self._own_node = (node.get_name(), node.get_namespace())
        self.registry = context.get_runtime().registry
        self.configured = tuple(dataclasses.replace(t, name=node.resolve_topic_name(t.name))
                                for t in topics)
        self.routes: dict[str, _TopicBridge] = {}
        self._reported: dict[str, str] = {}

    def snapshot(self) -> tuple[dict[str, AgnoshmTopic], dict[str, RosTopic]]:
        """Both sides, without bridges' endpoints (ROS details only for candidate topics)."""
        agnoshm = agnoshm_topics(self.registry, self.own_name)
        names = set(agnoshm) | {t.name for t in self.configured}
        ros = {}
        node = self.node
        for name, types in node.get_topic_names_and_types():
            if name not in names:
                continue
            if node.resolve_topic_name(name) != name:
                # rclpy applies the node's remap rules to get_*_info_by_topic (not to count_*),
                # so their answer would be another topic's. Such a name is never relayed
                # (remap_problem) and the bridge has no endpoint on it: counts are enough.
                ros[name] = RosTopic(name, tuple(types), node.count_publishers(name),
                                     node.count_subscribers(name))
            else:
                ros[name] = ros_topic(name, types, node.get_publishers_info_by_topic(name),
                                      node.get_subscriptions_info_by_topic(name), self._own_node)
        return agnoshm, ros

    def update(self) -> None:
        """Start the routes that are wanted, stop those that no longer are."""
        agnoshm, ros = self.snapshot()
        routes, skipped = plan(agnoshm, ros, configured=self.configured, on_demand=self.on_demand)
        for name, running in list(self.routes.items()):
            route = routes.get(name)
            if route is None or route.key != running.route.key:
                _logger.info("stop bridging %s (%s)", name, running.route.direction)
                del self.routes[name]
                running.close()
        for name, route in routes.items():
            if name in self.routes:
                continue
            try:
                reason = self.remap_problem(name)
                if reason is None:
                    self.routes[name] = _TopicBridge(self, route)
            except Exception as err:  # e.g. the type is not installed for rclpy
                reason = f"{type(err).__name__}: {err}"
            if reason:
                skipped[name] = reason
                continue
            _logger.info("bridging %s [%s] %s", name, route.type_name, route.direction)
        for name, running in self.routes.items():
            running.count_relayed(ros.get(name))
        for name, reason in skipped.items():
            if self._reported.get(name) != reason:
                _logger.warning("not bridging %s: %s", name, reason)
        self._reported = skipped

    def remap_problem(self, name: str) -> str | None:
        """Why the bridge cannot relay the resolved topic ``name``, if its node's remap rules
        rename it: rcl remaps every name an endpoint is created on, absolute ones too, so the
        bridge's endpoints would carry another topic.

        :returns: the reason, or None when the rules leave ``name`` as it is.
        """
        landed = self.node.resolve_topic_name(name)
        if landed == name:
            return None
        return (f"the bridge node's remap rules rename {name} to {landed} on every endpoint it "
                f"creates, so it cannot relay {name}; remap configured names to a topic that no "
                "rule renames")

    def safe_update(self) -> None:
        """:meth:`update`, logging instead of raising (a timer callback keeps the bridge up)."""
        try:
            self.update()
        except Exception:
            _logger.exception("bridge update failed; retrying at the next period")

    def close(self) -> None:
        for running in self.routes.values():
            running.close()
        self.routes.clear()
