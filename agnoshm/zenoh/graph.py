"""The remote ROS graph as rmw_zenoh's liveliness tokens show it, and what it tells the bridge.

:class:`RemoteGraph` subscribes to every token of the domain (with history: the
tokens already declared come first) and keeps the entities of other sessions.  The
bridge asks it which types remote endpoints use on a topic (to pick a configured
topic's type) and which of them use another type or hash than its own: their
data keys never meet the bridge's, so nothing would flow, silently — the bridge
says so instead (:func:`mismatches`).
"""

from __future__ import annotations

import logging
import threading

from agnoshm.zenoh import liveliness

_logger = logging.getLogger("agnoshm.zenoh")


class RemoteGraph:
    """The publishers and subscriptions of other Zenoh sessions in one domain."""

    def __init__(self, session, domain: int, own_zid: str):
        self.own_zid = own_zid
        self.malformed = 0  # tokens under @ros2_lv/<domain> that are not rmw_zenoh's
        self._entities: dict[str, liveliness.Entity] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._subscriber = session.liveliness().declare_subscriber(
            liveliness.subscription_key(domain), self._on_token, history=True)

    def _on_token(self, sample) -> None:
        key = str(sample.key_expr)
        entity = liveliness.parse(key)
        with self._lock:
            if entity is None:
                self.malformed += 1
                return
            if entity.zid == self.own_zid:
                return
            if str(sample.kind).endswith("DELETE"):
                self._entities.pop(key, None)
            else:
                self._entities[key] = entity
            self._changed.notify_all()

    def endpoints(self, topic: str) -> list[liveliness.Entity]:
        """Remote publishers and subscriptions on ``topic``."""
        with self._lock:
            return [e for e in self._entities.values() if e.topic == topic]

    def entities(self) -> list[liveliness.Entity]:
        with self._lock:
            return list(self._entities.values())

    def wait_for(self, predicate, timeout: float | None) -> bool:
        """Wait until ``predicate(entities)`` holds; return whether it did."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(list(self._entities.values())),
                                          timeout)

    def close(self) -> None:
        try:
            self._subscriber.undeclare()
        except Exception as err:  # the session is already closed
            _logger.debug("undeclare of the graph subscriber: %s", err)


def mismatches(endpoints, dds_type: str, type_hash: str) -> list[liveliness.Entity]:
    """The endpoints whose type or type hash differs from ``dds_type``/``type_hash``."""
    return [e for e in endpoints if e.kind in (liveliness.PUBLISHER, liveliness.SUBSCRIPTION)
            and (e.type_name, e.type_hash) != (dds_type, type_hash)]


def describe(entity: liveliness.Entity) -> str:
    """``publisher /talker (zid 1a2b…)`` for messages."""
    kind = {liveliness.PUBLISHER: "publisher", liveliness.SUBSCRIPTION: "subscription"}.get(
        entity.kind, entity.kind)
    node = entity.namespace.rstrip("/") + "/" + entity.node_name
    return f"{kind} of node {node} (Zenoh session {entity.zid})"
