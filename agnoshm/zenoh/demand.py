"""On-demand bridging: which agnoshm topics have a peer on the other side of Zenoh.

With ``--on-demand`` the bridge reads, each period, the local topics (the
registry's read API) and the remote graph (liveliness tokens), and relays a topic
that has a publisher on one side and a subscription on the other
(:func:`wanted`); when that is no longer so, it stops the relay.

Endpoints of bridges never count, on either side (the ROS 2 bridge's rule,
``agnoshm.ros.bridge.graph.is_bridge_node``): locally those of agnoshm nodes whose
name starts with :data:`BRIDGE_NODE_NAME` (the relays' own), remotely those whose
token names such a node (other bridges' relays).  Otherwise two bridges would keep
each other's relays alive forever.

So that the bridge on the other side sees this side's demand, :class:`Announcer`
declares rmw_zenoh tokens for the local agnoshm nodes and their (non-bridge)
endpoints: a bridge that meets a remote subscription token of ``/listener`` knows
someone there wants the topic.  ``ros2 node list`` on an rmw_zenoh machine shows
those nodes too.
"""

from __future__ import annotations

import dataclasses
import logging

from agnoshm.registry.snapshot import transient_local
from agnoshm.zenoh import liveliness
from agnoshm.zenoh.keyexpr import dds_type_name
from agnoshm.zenoh.relay import BRIDGE_NODE_NAME

_logger = logging.getLogger("agnoshm.zenoh")


def is_bridge_node(node_name: str) -> bool:
    """Whether ``node_name`` (fully qualified or not) is a Zenoh bridge's node."""
    return node_name.rpartition("/")[2].startswith(BRIDGE_NODE_NAME)


@dataclasses.dataclass(frozen=True)
class LocalTopic:
    """One agnoshm topic of this domain, its endpoints' nodes without bridges'."""

    name: str
    type_name: str
    type_hash: str
    publishers: tuple = ()  # (fully qualified node name, all its publishers TRANSIENT_LOCAL)
    subscriptions: tuple = ()  # fully qualified node names

    @property
    def transient_local(self) -> bool:
        return bool(self.publishers) and all(tl for _, tl in self.publishers)


def local_topics(registry) -> dict[str, LocalTopic]:
    """The topics of ``registry`` (``context.get_runtime().registry``) that have an
    endpoint of a node that is not a bridge's."""
    found = {}
    for t in registry.read_topics():
        pubs: dict[str, list] = {}
        for p in t.publishers:
            if not is_bridge_node(p.node_name):
                pubs.setdefault(p.node_name, []).append(p)
        subs = sorted({s.node_name for s in t.subscriptions
                       if not s.draining and not is_bridge_node(s.node_name)})
        if (pubs or subs) and t.type_name:
            found[t.name] = LocalTopic(
                t.name, t.type_name, t.type_hash,
                tuple((node, transient_local(ps)) for node, ps in sorted(pubs.items())),
                tuple(subs))
    return found


def remote_peers(endpoints) -> tuple[list, list]:
    """``(publishers, subscriptions)`` among remote ``endpoints``, leaving out bridges'."""
    foreign = [e for e in endpoints if not is_bridge_node(e.node_name)]
    return ([e for e in foreign if e.kind == liveliness.PUBLISHER],
            [e for e in foreign if e.kind == liveliness.SUBSCRIPTION])


def wanted(local: LocalTopic | None, endpoints) -> bool:
    """Whether a topic has a publisher on one side and a subscription on the other."""
    if local is None:
        return False
    publishers, subscriptions = remote_peers(endpoints)
    return bool(local.publishers and subscriptions) or bool(publishers and local.subscriptions)


def remote_transient_local(endpoints) -> bool:
    """rmw's rule over the remote (non-bridge) publishers: there is one, all TRANSIENT_LOCAL."""
    publishers, _ = remote_peers(endpoints)
    return bool(publishers) and all(e.qos is not None and e.qos.transient_local
                                    for e in publishers)


class Announcer:
    """Keeps one liveliness token per local agnoshm node and per (node, kind, topic)."""

    def __init__(self, context):
        self._context = context
        self._node_ids: dict[str, int] = {}
        self._entity_ids: dict[tuple, int] = {}
        self._tokens: dict[str, object] = {}  # key -> declared token

    def _entities(self, topics: dict[str, LocalTopic]) -> list[liveliness.Entity]:
        context = self._context
        entities = []
        for topic in topics.values():
            if not topic.type_hash.startswith("RIHS01_"):
                continue
            ends = [(liveliness.PUBLISHER, node, tl) for node, tl in topic.publishers]
            ends += [(liveliness.SUBSCRIPTION, node, False) for node in topic.subscriptions]
            for kind, node, tl in ends:
                namespace, _, name = node.rpartition("/")
                if node not in self._node_ids:
                    self._node_ids[node] = context.next_id()
                node_id = self._node_ids[node]
                base = dict(domain=context.domain, zid=context.zid, node_id=node_id,
                            node_name=name, namespace=namespace or "/")
                entities.append(liveliness.Entity(entity_id=node_id, kind=liveliness.NODE,
                                                  **base))
                ident = (node, kind, topic.name)
                if ident not in self._entity_ids:
                    self._entity_ids[ident] = context.next_id()
                entities.append(liveliness.Entity(
                    entity_id=self._entity_ids[ident], kind=kind, topic=topic.name,
                    type_name=dds_type_name(topic.type_name), type_hash=topic.type_hash,
                    qos=liveliness.QoS(transient_local=tl), **base))
        return entities

    def update(self, topics: dict[str, LocalTopic]) -> None:
        """Declare the tokens of ``topics``' endpoints; undeclare those that are gone."""
        keys = {e.key for e in self._entities(topics)}
        for key in set(self._tokens) - keys:
            self._undeclare(key)
        for key in sorted(keys - set(self._tokens)):
            self._tokens[key] = self._context.session.liveliness().declare_token(key)

    def _undeclare(self, key: str) -> None:
        try:
            self._tokens.pop(key).undeclare()
        except Exception as err:  # the session is already closed
            _logger.debug("undeclare of %s: %s", key, err)

    def close(self) -> None:
        for key in list(self._tokens):
            self._undeclare(key)
