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

The functions above :class:`Bridge` are pure logic, testable without ROS 2.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import logging
import sys
import threading
import time
from typing import Iterable, Mapping

from agnoshm.errors import InvalidTopicNameError
from agnoshm.qos import DurabilityPolicy, ReliabilityPolicy
from agnoshm.registry import layout as L
from agnoshm.topic_name import expand_topic_name

_logger = logging.getLogger("agnoshm.bridge")

TO_ROS = "to_ros"
TO_AGNOSHM = "to_agnoshm"
BOTH = "both"
DIRECTIONS = (TO_ROS, TO_AGNOSHM, BOTH)

#: Default name of the bridge's rclpy node; endpoints of nodes whose name starts
#: with it are bridges, left out of demand counts and never echoed.
BRIDGE_NODE_NAME = "agnoshm_bridge"
DEFAULT_DEPTH = 10
DEFAULT_PERIOD_SEC = 1.0

NEEDS_ROS = ("agnoshm_bridge needs ROS 2 (rclpy), which is not importable here: source your "
             "ROS 2 setup (e.g. `source /opt/ros/jazzy/setup.bash`) and run it again")


class BridgeConfigError(ValueError):
    """Raised for a bad ``--topic`` value or bridge YAML file."""


# -- what the two sides hold (plain data) ---------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AgnoshmTopic:
    """One agnoshm topic, counting only endpoints that are not bridges'."""

    name: str
    type_name: str
    type_hash: str
    publishers: int = 0
    subscriptions: int = 0
    depth: int = 0  # the largest depth among those endpoints
    publishers_transient_local: bool = False  # every such publisher is TRANSIENT_LOCAL


@dataclasses.dataclass(frozen=True)
class RosTopic:
    """One ROS 2 graph topic, counting only endpoints that are not the bridge's own."""

    name: str
    type_names: tuple = ()
    publishers: int = 0
    subscribers: int = 0
    type_hash: str | None = None  # RIHS01 of a foreign endpoint (Jazzy and later)
    publishers_best_effort: bool = False  # some publisher is BEST_EFFORT
    publishers_transient_local: bool = False  # every publisher is TRANSIENT_LOCAL


@dataclasses.dataclass(frozen=True)
class TopicConfig:
    """A configured topic: bridged whether or not it has peers."""

    name: str
    direction: str = BOTH
    type_name: str | None = None
    depth: int | None = None


@dataclasses.dataclass(frozen=True)
class Route:
    """What the bridge runs for one topic."""

    topic: str
    type_name: str
    direction: str
    depth: int = DEFAULT_DEPTH
    transient_local_to_ros: bool = False  # agnoshm source is latched: replay it to ROS
    transient_local_to_agnoshm: bool = False
    best_effort_from_ros: bool = False  # the ROS source publishes BEST_EFFORT

    @property
    def key(self) -> tuple[str, str]:
        """Routes with the same key are the same bridge (QoS details follow the first)."""
        return self.type_name, self.direction

    @property
    def to_ros(self) -> bool:
        return self.direction in (TO_ROS, BOTH)

    @property
    def to_agnoshm(self) -> bool:
        return self.direction in (TO_AGNOSHM, BOTH)


def is_bridge_node(node_name: str, own_name: str = "") -> bool:
    """Whether ``node_name`` (fully qualified) is this or another agnoshm bridge."""
    return node_name == own_name or node_name.rpartition("/")[2].startswith(BRIDGE_NODE_NAME)


def agnoshm_topics(registry, own_name: str = "") -> dict[str, AgnoshmTopic]:
    """A snapshot of the registry's topics, leaving out bridges' endpoints.

    :param registry: ``agnoshm.context.get_runtime().registry``.
    :param own_name: the bridge node's fully qualified name.
    """
    found = {}
    with registry.lock:
        for index, t in enumerate(registry.topics):
            if t.state != L.USED:
                continue
            pubs = [registry.publishers[i] for i in registry.publisher_indices(index)]
            subs = [registry.subscriptions[i] for i in registry.subscription_indices(index)]
            pubs = [r for r in pubs if r.state == L.USED
                    and not is_bridge_node(r.node_name.decode(errors="replace"), own_name)]
            subs = [r for r in subs if r.state == L.USED
                    and not is_bridge_node(r.node_name.decode(errors="replace"), own_name)]
            name = t.name.decode()
            found[name] = AgnoshmTopic(
                name, t.type_name.decode(), t.type_hash.decode(), len(pubs), len(subs),
                max((r.depth for r in pubs + subs), default=0),
                bool(pubs) and all(r.durability == L.TRANSIENT_LOCAL for r in pubs))
    return found


def ros_topic(name: str, type_names: Iterable[str], publishers: Iterable, subscriptions: Iterable,
              own_node: tuple[str, str]) -> RosTopic:
    """A :class:`RosTopic` from rclpy's ``TopicEndpointInfo`` lists, without the bridge's own.

    :param publishers: ``node.get_publishers_info_by_topic(name)`` (or objects with
        ``node_name``, ``node_namespace``, ``qos_profile``, optional ``topic_type_hash``).
    :param own_node: the bridge node's ``(name, namespace)``.
    """
    def foreign(infos):
        return [i for i in infos if (i.node_name, _absolute(i.node_namespace)) !=
                (own_node[0], _absolute(own_node[1]))]

    pubs, subs = foreign(publishers), foreign(subscriptions)
    hashes = [_type_hash(i) for i in pubs + subs]
    return RosTopic(
        name, tuple(type_names), len(pubs), len(subs),
        next((h for h in hashes if h), None),
        any(int(i.qos_profile.reliability) == ReliabilityPolicy.BEST_EFFORT for i in pubs),
        bool(pubs) and all(int(i.qos_profile.durability) == DurabilityPolicy.TRANSIENT_LOCAL
                           for i in pubs))


def _absolute(namespace: str) -> str:
    return "/" + namespace.strip("/")


def _type_hash(info) -> str | None:
    # Jazzy's rclpy.type_hash.TypeHash prints "INVALID" when unset; Humble has no such field
    text = str(getattr(info, "topic_type_hash", "") or "")
    return text if text.startswith("RIHS") else None


def plan(agnoshm: Mapping[str, AgnoshmTopic], ros: Mapping[str, RosTopic], *,
         configured: Iterable[TopicConfig] = (), on_demand: bool = True,
         ) -> tuple[dict[str, Route], dict[str, str]]:
    """Decide which topics to bridge, in which direction.

    On demand, ``to_ros`` needs an agnoshm publisher and a ROS subscriber,
    ``to_agnoshm`` a ROS publisher and an agnoshm subscription (bridges never
    count).  Configured topics are bridged in their configured direction, plus
    any direction demand adds.

    :returns: ``(routes, skipped)``: topic → :class:`Route`, and topic → why a
        wanted topic is not bridged (type unknown or different on the two sides).
    """
    routes: dict[str, Route] = {}
    skipped: dict[str, str] = {}
    wanted: dict[str, tuple[str, TopicConfig | None]] = {}
    if on_demand:
        for name, a in agnoshm.items():
            r = ros.get(name)
            if r is None:
                continue
            to_ros = a.publishers > 0 and r.subscribers > 0
            to_agnoshm = r.publishers > 0 and a.subscriptions > 0
            if to_ros or to_agnoshm:
                wanted[name] = (BOTH if to_ros and to_agnoshm else TO_ROS if to_ros else TO_AGNOSHM,
                                None)
    for config in configured:
        demand = wanted.get(config.name, (config.direction, None))[0]
        wanted[config.name] = (_union(config.direction, demand), config)
    for name, (direction, config) in sorted(wanted.items()):
        a, r = agnoshm.get(name), ros.get(name)
        type_name = (config and config.type_name) or (a and a.type_name) or \
            (r and len(r.type_names) == 1 and r.type_names[0]) or None
        reason = _type_problem(type_name, a, r)
        if reason:
            skipped[name] = reason
            continue
        depth = (config and config.depth) or (a and a.depth) or DEFAULT_DEPTH
        routes[name] = Route(
            name, type_name, direction, depth,
            transient_local_to_ros=bool(a and a.publishers_transient_local),
            transient_local_to_agnoshm=bool(r and r.publishers_transient_local),
            best_effort_from_ros=bool(r and r.publishers_best_effort))
    return routes, skipped


def _union(a: str, b: str) -> str:
    return a if a == b else BOTH


def _type_problem(type_name, a: AgnoshmTopic | None, r: RosTopic | None) -> str | None:
    if not type_name:
        return "message type unknown: give it (TYPE in --topic, `type:` in YAML) or wait for an endpoint"
    if a is not None and a.type_name != type_name:
        return f"agnoshm carries {a.type_name}, not {type_name}"
    if r is not None and r.type_names and type_name not in r.type_names:
        return f"ROS 2 carries {', '.join(r.type_names)}, agnoshm {type_name}"
    if a is not None and r is not None and r.type_hash and a.type_hash and r.type_hash != a.type_hash:
        return (f"{type_name} differs: agnoshm {a.type_hash}, ROS 2 {r.type_hash} (use the same "
                "message definitions on both sides)")
    return None


# -- echo prevention ---------------------------------------------------------------------------

def is_bridged_message(view, registry, own_name: str = "") -> bool:
    """Whether a received agnoshm message was published by a bridge (so it came from ROS 2
    and must not go back there)."""
    record = registry.publishers[view._owner.publisher]
    return is_bridge_node(record.node_name.decode(errors="replace"), own_name)


class EchoFilter:
    """Recognises the bridge's own ROS 2 publications when its ROS subscription gets them.

    The bridge publishes serialized bytes and :meth:`note`\\ s each; :meth:`is_echo`
    consumes one matching note.  A foreign message with identical bytes that
    arrives first consumes the note instead and the bridge's own copy passes:
    either way agnoshm gets that content exactly once.  Notes whose copy never
    came back (lost, or no matching subscription yet) expire after ``max_age_sec``.
    """

    def __init__(self, max_age_sec: float = 10.0, max_entries: int = 4096, clock=time.monotonic):
        self.max_age_sec = max_age_sec
        self.max_entries = max_entries
        self._clock = clock
        self._order: collections.deque = collections.deque()  # (time, digest), oldest first
        self._times: dict[bytes, collections.deque] = {}
        self._lock = threading.Lock()  # note() and is_echo() may run on different threads

    def __len__(self) -> int:
        return sum(len(q) for q in self._times.values())

    @staticmethod
    def _digest(data: bytes) -> bytes:
        return hashlib.blake2b(data, digest_size=16).digest()

    def note(self, data: bytes) -> None:
        """Remember that the bridge published ``data`` to ROS 2."""
        digest = self._digest(data)
        with self._lock:
            now = self._clock()
            self._order.append((now, digest))
            self._times.setdefault(digest, collections.deque()).append(now)
            self._expire(now)

    def is_echo(self, data: bytes) -> bool:
        """Whether ``data`` (received from ROS 2) is one of the bridge's own publications."""
        digest = self._digest(data)
        with self._lock:
            self._expire(self._clock())
            times = self._times.get(digest)
            if not times:
                return False
            times.popleft()
            if not times:
                del self._times[digest]
            return True

    def _expire(self, now: float) -> None:
        order = self._order
        while order and (order[0][0] < now - self.max_age_sec or len(order) > self.max_entries):
            stamp, digest = order.popleft()
            times = self._times.get(digest)
            if times and times[0] <= stamp:  # not consumed yet: forget it
                times.popleft()
                if not times:
                    del self._times[digest]


# -- configuration --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class BridgeOptions:
    topics: tuple = ()
    on_demand: bool = True
    period_sec: float = DEFAULT_PERIOD_SEC


def parse_topic(spec: str) -> TopicConfig:
    """``NAME[:DIRECTION[:TYPE]]``, e.g. ``/camera/image:to_ros:sensor_msgs/msg/Image``.

    :raises BridgeConfigError: for an empty name or an unknown direction.
    """
    name, _, rest = spec.partition(":")
    direction, _, type_name = rest.partition(":")
    return topic_config({"name": name, "direction": direction or BOTH, "type": type_name or None})


def topic_config(item) -> TopicConfig:
    """A :class:`TopicConfig` from a YAML entry: a name, or a mapping with ``name`` and
    optional ``direction``, ``type`` and ``depth``."""
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict):
        raise BridgeConfigError(f"a topic entry must be a name or a mapping, not {item!r}")
    unknown = set(item) - {"name", "direction", "type", "depth"}
    if unknown:
        raise BridgeConfigError(f"unknown topic key(s) {sorted(unknown)} in {item!r} "
                                "(known: name, direction, type, depth)")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise BridgeConfigError(f"a topic needs a name, got {item!r}")
    try:
        expand_topic_name(name, BRIDGE_NODE_NAME, "/")  # relative names resolve on the node later
    except InvalidTopicNameError as err:
        raise BridgeConfigError(str(err)) from err
    direction = item.get("direction") or BOTH
    if direction not in DIRECTIONS:
        raise BridgeConfigError(f"direction of {name} must be one of {', '.join(DIRECTIONS)}, "
                                f"not {direction!r}")
    type_name = item.get("type")
    if type_name is not None and (not isinstance(type_name, str) or type_name.count("/") not in (1, 2)):
        raise BridgeConfigError(f"type of {name} must look like pkg/msg/Name, not {type_name!r}")
    depth = item.get("depth")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise BridgeConfigError(f"depth of {name} must be an int of at least 1, not {depth!r}")
    return TopicConfig(name, direction, type_name, depth)


def load_options(path: str | None = None, topics: Iterable[str] = (), on_demand: bool | None = None,
                 period_sec: float | None = None) -> BridgeOptions:
    """Merge the YAML file (keys ``on_demand``, ``period``, ``topics``) and the arguments
    (which win; ``--topic`` entries replace a YAML entry of the same name)."""
    data = {}
    if path is not None:
        import yaml

        try:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as err:
            raise BridgeConfigError(f"cannot read bridge configuration {path}: {err}") from err
        if not isinstance(data, dict):
            raise BridgeConfigError(f"{path} must hold a mapping (on_demand, period, topics)")
        unknown = set(data) - {"on_demand", "period", "topics"}
        if unknown:
            raise BridgeConfigError(f"unknown key(s) {sorted(unknown)} in {path} "
                                    "(known: on_demand, period, topics)")
    entries = data.get("topics") or []
    if not isinstance(entries, list):
        raise BridgeConfigError("`topics` must be a list")
    configured = {c.name: c for c in map(topic_config, entries)}
    configured.update((c.name, c) for c in map(parse_topic, topics))
    demand = data.get("on_demand", True) if on_demand is None else on_demand
    if not isinstance(demand, bool):
        raise BridgeConfigError(f"on_demand must be true or false, not {demand!r}")
    period = data.get("period", DEFAULT_PERIOD_SEC) if period_sec is None else period_sec
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not 0 < period < 3600:
        raise BridgeConfigError(f"period must be a number of seconds in (0, 3600), not {period!r}")
    if not demand and not configured:
        raise BridgeConfigError("nothing to bridge: on-demand bridging is off and no topic is "
                                "configured (add --topic NAME, or drop --no-on-demand)")
    return BridgeOptions(tuple(configured.values()), demand, float(period))


def split_ros_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` into a program's own arguments and ROS ones (``--ros-args ... [--]``)."""
    own, ros, inside = [], [], False
    for arg in argv:
        if arg == "--ros-args":
            inside = True
            ros.append(arg)
        elif inside and arg == "--":
            inside = False
        else:
            (ros if inside else own).append(arg)
    return own, ros


# -- the bridge itself (needs rclpy) -----------------------------------------------------------------

def _durability(transient_local: bool) -> int:
    # rclpy accepts the plain int values of rmw's enums (agnoshm's enums are IntEnums)
    return DurabilityPolicy.TRANSIENT_LOCAL if transient_local else DurabilityPolicy.VOLATILE


class _TopicBridge:
    """The endpoints bridging one topic (one or both directions)."""

    def __init__(self, bridge: "Bridge", route: Route):
        from rclpy.qos import QoSProfile
        from rosidl_runtime_py.utilities import get_message

        from agnoshm.ros import adapter

        self.route = route
        self._bridge = bridge
        self._ros_pub = self._ros_sub = self._agnoshm_pub = self._agnoshm_sub = None
        self._echo = EchoFilter() if route.direction == BOTH else None
        self._ros_type = get_message(route.type_name)
        self.forwarded = {TO_ROS: 0, TO_AGNOSHM: 0}
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

    def _from_agnoshm(self, view) -> None:
        """agnoshm → ROS 2: skip what a bridge published, publish a copy of the rest."""
        if is_bridged_message(view, self._bridge.registry, self._bridge.own_name):
            return
        msg = view.to_ros()
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

        self._agnoshm_pub.publish(deserialize_message(data, self._ros_type))
        self.forwarded[TO_AGNOSHM] += 1

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
        for name, types in self.node.get_topic_names_and_types():
            if name in names:
                ros[name] = ros_topic(name, types, self.node.get_publishers_info_by_topic(name),
                                      self.node.get_subscriptions_info_by_topic(name), self._own_node)
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
                self.routes[name] = _TopicBridge(self, route)
            except Exception as err:  # e.g. the type is not installed for rclpy
                skipped[name] = f"{type(err).__name__}: {err}"
                continue
            _logger.info("bridging %s [%s] %s", name, route.type_name, route.direction)
        for name, reason in skipped.items():
            if self._reported.get(name) != reason:
                _logger.warning("not bridging %s: %s", name, reason)
        self._reported = skipped

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agnoshm_bridge",
        description="Bridge agnoshm topics to ROS 2 and back: on demand (topics with a peer on "
                    "the other side) and/or for configured topics. ROS arguments go after "
                    "--ros-args (e.g. --ros-args -r __ns:=/robot).")
    parser.add_argument("--config", metavar="FILE",
                        help="YAML file with keys on_demand (bool), period (seconds) and topics "
                             "(names, or mappings with name, direction, type, depth)")
    parser.add_argument("--topic", metavar="NAME[:DIRECTION[:TYPE]]", action="append", default=[],
                        help="always bridge this topic; DIRECTION is to_ros, to_agnoshm or both "
                             "(default both); TYPE like std_msgs/msg/String (repeatable)")
    parser.add_argument("--no-on-demand", dest="on_demand", action="store_false", default=None,
                        help="bridge only the configured topics")
    parser.add_argument("--period", type=float, metavar="SEC",
                        help=f"seconds between graph checks (default {DEFAULT_PERIOD_SEC})")
    parser.add_argument("--node-name", default=BRIDGE_NODE_NAME,
                        help=f"name of the bridge's node; keep the {BRIDGE_NODE_NAME} prefix "
                             "(default %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the bridge until Ctrl-C or shutdown; return the exit status.

    Exit status 2: bad arguments or configuration, or ROS 2 is not available.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    own, ros_args = split_ros_args(argv)
    try:
        args = build_parser().parse_args(own)
    except SystemExit as exit_:  # --help or a usage error, already printed
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    try:
        options = load_options(args.config, args.topic, args.on_demand, args.period)
    except BridgeConfigError as err:
        print(f"agnoshm_bridge: error: {err}", file=sys.stderr)
        return 2
    if not args.node_name.startswith(BRIDGE_NODE_NAME):
        print(f"agnoshm_bridge: error: --node-name must start with {BRIDGE_NODE_NAME} so that "
              "bridges recognise each other", file=sys.stderr)
        return 2
    try:
        import rclpy
        import rclpy.executors
    except ImportError:
        print(NEEDS_ROS, file=sys.stderr)
        return 2
    return _run(rclpy, options, args.node_name, ros_args)


def _run(rclpy, options: BridgeOptions, node_name: str, ros_args: list[str]) -> int:
    import agnoshm

    logging.basicConfig(level=logging.INFO, format="[agnoshm_bridge] %(message)s")
    rclpy.init(args=[sys.argv[0] or "agnoshm_bridge", *ros_args])
    bridge = node = None
    try:
        node = rclpy.create_node(node_name)
        try:
            bridge = Bridge(node, topics=options.topics, on_demand=options.on_demand)
        except Exception as err:  # e.g. a topic name rclpy refuses after remapping
            print(f"agnoshm_bridge: error: {err}", file=sys.stderr)
            return 2
        bridge.update()
        node.create_timer(options.period_sec, bridge.safe_update)
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        if bridge is not None:
            bridge.close()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        agnoshm.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
