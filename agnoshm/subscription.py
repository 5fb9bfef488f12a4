"""Subscriptions: callback-driven (spun by an executor) and polling (``take()``)."""

from __future__ import annotations

from agnoshm.errors import InvalidHandleError


class PollingSubscription:
    """A subscription read by calling :meth:`take`; no executor needed.

    .. warning:: Users should not create one with this constructor, instead they
       should call :meth:`agnoshm.Node.create_polling_subscription`.
    """

    def __init__(self, node, port, msg_type, topic_name: str, qos_profile):
        self._node = node
        self._port = port
        self.msg_type = msg_type
        self.topic_name = topic_name
        self.qos_profile = qos_profile

    @property
    def topic(self) -> str:
        return self.topic_name

    def take(self):
        """Return the oldest new message as a read-only view, or None if there is none.

        :raises InvalidHandleError: if the subscription was destroyed.
        """
        port = self._port
        if port is None:
            raise InvalidHandleError(f"subscription on {self.topic_name} was destroyed")
        if not port.has_data():
            return None
        leases = port.take(1)
        return self.msg_type.received(leases[0]) if leases else None

    def has_data(self) -> bool:
        port = self._port
        return port is not None and port.has_data()

    def destroy(self) -> None:
        if self._port is not None:
            port, self._port = self._port, None
            port.destroy()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._node.destroy_subscription(self)

    def __repr__(self) -> str:
        return f"<agnoshm.{type(self).__name__} {self.topic_name} [{self.msg_type.type_name}]>"


class Subscription(PollingSubscription):
    """A subscription whose callback an executor runs for each message.

    .. warning:: Users should not create a subscription with this constructor,
       instead they should call :meth:`agnoshm.Node.create_subscription`.
    """

    def __init__(self, node, port, msg_type, topic_name: str, callback, qos_profile,
                 callback_group=None):
        super().__init__(node, port, msg_type, topic_name, qos_profile)
        self.callback = callback
        self.callback_group = callback_group
