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
