"""Subscriptions: callback-driven (spun by an executor) and polling (``take()``)."""

from __future__ import annotations

from agnoshm.endpoint import Endpoint


class PollingSubscription(Endpoint):
    """A subscription read by calling :meth:`take`; no executor needed.

    .. warning:: Users should not create one with this constructor, instead they
       should call :meth:`agnoshm.Node.create_polling_subscription`.
    """

    _kind = "subscription"

    def take(self):
        """Return the oldest new message as a read-only view, or None if there is none.

        :raises InvalidHandleError: if the subscription was destroyed.
        """
        port = self._live_port()
        if not port.has_data():
            return None
        leases = port.take(1)
        return self.msg_type.received(leases[0]) if leases else None

    def has_data(self) -> bool:
        port = self._port
        return port is not None and port.has_data()


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
