"""Subscriptions: callback-driven (spun by an executor) and polling (``take()``)."""

from __future__ import annotations

from collections import deque

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

    def destroy(self) -> None:
        port = self._port
        super().destroy()
        if port is not None and not port.runtime.closed:
            port.runtime.doorbell.ring()  # wake whoever waits for this subscription (agnoshm.aio)


class Subscription(PollingSubscription):
    """A subscription whose callback an executor runs for each message.

    .. warning:: Users should not create a subscription with this constructor,
       instead they should call :meth:`agnoshm.Node.create_subscription`.
    """

    _executor_event = False  # an executor has dispatched it and not yet taken (as in rclpy)

    def __init__(self, node, port, msg_type, topic_name: str, callback, qos_profile,
                 callback_group=None):
        super().__init__(node, port, msg_type, topic_name, qos_profile)
        self.callback = callback
        self.callback_group = callback_group
        # Messages an executor took in one batch and has not yet delivered (oldest first).
        self._inbox: deque = deque()

    def take(self):
        """Return the oldest new message as a read-only view, or None if there is none.

        :raises InvalidHandleError: if the subscription was destroyed.
        """
        if self._inbox:
            self._live_port()
            try:
                return self.msg_type.received(self._inbox.popleft())
            except IndexError:  # another thread emptied it
                pass
        return super().take()

    def has_data(self) -> bool:
        port = self._port
        return port is not None and (bool(self._inbox) or port.has_data())

    def destroy(self) -> None:
        self._inbox.clear()  # release what was taken but never delivered
        super().destroy()
