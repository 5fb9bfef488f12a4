"""What publishers and subscriptions share: their node, port, type, topic, lifetime."""

from __future__ import annotations

from agnoshm.errors import InvalidHandleError


class Endpoint:
    """Base of :class:`~agnoshm.publisher.Publisher` and the subscriptions."""

    _kind = "endpoint"

    def __init__(self, node, port, msg_type, topic_name: str, qos_profile):
        self._node = node
        self._port = port
        self.msg_type = msg_type
        self.topic_name = topic_name
        self.qos_profile = qos_profile

    @property
    def topic(self) -> str:
        return self.topic_name

    def _live_port(self):
        port = self._port
        if port is None:
            raise InvalidHandleError(
                f"{self._kind} on {self.topic_name} was destroyed (destroy_node or "
                f"destroy_{self._kind}); create a new one")
        return port

    # matched counts (the registry's, see agnoshm.matched) ------------------------------
    _matched_side = 0  # index in Registry.endpoint_counts of the other side of the topic
    _counted = None  # (registry generation, count) of the last count

    def _matched_count(self) -> int:
        """Endpoints on the other side of the topic, bridged ones included; recounted only
        when the registry's generation moved (so a call in a publish loop costs one read)."""
        registry = self._live_port().runtime.registry
        generation = registry.generation()  # before counting: a later change recounts
        counted = self._counted
        if counted is not None and counted[0] == generation:
            return counted[1]
        count = registry.endpoint_counts(self.topic_name)[self._matched_side]
        self._counted = (generation, count)
        return count

    def _wait_for_match(self, timeout_sec: float | None) -> bool:
        if self._matched_count() > 0:
            return True
        from agnoshm import matched

        return matched.get_watcher(self._live_port().runtime).wait(
            lambda: self._port is not None and self._matched_count() > 0, timeout_sec)

    def _set_relayed(self, count: int | None) -> bool:
        """For bridges: count this endpoint as ``count`` endpoints beyond the bridge (None:
        as itself); see ``Registry.set_relayed``.  Return whether the count changed."""
        port = self._live_port()
        kind = "publishers" if self._matched_side else "subscriptions"
        return port.runtime.registry.set_relayed(kind, port.index, count)

    def destroy(self) -> None:
        if self._port is not None:
            port, self._port = self._port, None
            port.destroy()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._node._destroy_endpoint(self)

    def __repr__(self) -> str:
        return f"<agnoshm.{type(self).__name__} {self.topic_name} [{self.msg_type.type_name}]>"
