"""What the two sides of the bridge hold: snapshots of agnoshm's registry and of the ROS 2 graph.

Both snapshots leave out the endpoints of bridges, so that a bridge's own
endpoints never count as demand.  On the agnoshm side a bridge is any node
whose name starts with :data:`BRIDGE_NODE_NAME` (or is this bridge's node); on
the ROS side the bridge leaves out its own node by name and namespace.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from agnoshm.qos import DurabilityPolicy, ReliabilityPolicy
from agnoshm.registry.snapshot import transient_local

#: Default name of the bridge's rclpy node; endpoints of nodes whose name starts
#: with it are bridges, left out of demand counts and never echoed.
BRIDGE_NODE_NAME = "agnoshm_bridge"


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


def is_bridge_node(node_name: str, own_name: str = "") -> bool:
    """Whether ``node_name`` (fully qualified) is this or another agnoshm bridge."""
    return node_name == own_name or node_name.rpartition("/")[2].startswith(BRIDGE_NODE_NAME)


def agnoshm_topics(registry, own_name: str = "") -> dict[str, AgnoshmTopic]:
    """A snapshot of the registry's topics, leaving out bridges' endpoints.

    :param registry: ``agnoshm.context.get_runtime().registry``.
    :param own_name: the bridge node's fully qualified name.
    """
    found = {}
    for t in registry.read_topics():
        pubs = [r for r in t.publishers if not is_bridge_node(r.node_name, own_name)]
        subs = [r for r in t.subscriptions
                if not r.draining and not is_bridge_node(r.node_name, own_name)]
        found[t.name] = AgnoshmTopic(
            t.name, t.type_name, t.type_hash, len(pubs), len(subs),
            max((r.depth for r in pubs + subs), default=0), transient_local(pubs))
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
