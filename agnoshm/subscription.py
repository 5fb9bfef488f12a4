"""Subscriptions: callback-driven (spun by an executor) and polling (``take()``)."""

from __future__ import annotations

from collections import deque

from agnoshm.endpoint import Endpoint
from agnoshm.errors import InvalidHandleError


TAKE_BATCH = 16  # messages a subscription takes at once (never more than its depth)


class PollingSubscription(Endpoint):
    """A subscription read by calling :meth:`take`; no executor needed.

    A take holds up to :data:`TAKE_BATCH` new messages at once (at most the
    depth) and hands them out one by one, oldest first: one pass over the
    publishers' channels serves a backlog.

    .. warning:: Users should not create one with this constructor, instead they
       should call :meth:`agnoshm.Node.create_polling_subscription`.
    """

    _kind = "subscription"

    def __init__(self, node, port, msg_type, topic_name: str, qos_profile):
        super().__init__(node, port, msg_type, topic_name, qos_profile)
        # Messages taken in one batch and not yet handed out (oldest first): their views.
        self._inbox: deque = deque()
        self._batch = min(port.depth, TAKE_BATCH)  # messages one take may hold
        port.view_as(self.msg_type)

    def take(self):
        """Return the oldest new message as a read-only view, or None if there is none.

        :raises InvalidHandleError: if the subscription was destroyed.
        """
        self._live_port()
        return self._next_view()

    def _next_view(self, looked: bool = False):
        """The next message as a view (from the inbox, refilled when empty), or None.

        :param looked: the caller just saw ``has_data()`` true (an executor): take at once.
        """
        inbox = self._inbox
        if not inbox:
            port = self._port
            if port is None:
                return None
            if not looked and not port.has_data():
                return None
            try:
                views = port.take_views(self._batch)
            except InvalidHandleError:  # destroyed meanwhile (by another thread)
                return None
            if len(views) == 1:  # the common case: no backlog, nothing to queue
                return views[0]
            return self._first_of(views)
        try:
            return inbox.popleft()
        except IndexError:  # another thread took the last one
            return None

    def _first_of(self, views):
        """The oldest message of a take of other than one (``views``), the rest queued; or
        the oldest queued one (another thread may have queued first), or None."""
        inbox = self._inbox
        inbox.extend(views)
        try:
            return inbox.popleft()
        except IndexError:  # nothing taken, or another thread took the last one
            return None

    def take_pending(self):
        """Return the next message this subscription already took from its publishers
        (a batch ``take()`` holds the rest back) without taking new ones, or None."""
        try:
            return self._inbox.popleft()
        except IndexError:
            return None

    def get_publisher_count(self) -> int:
        """Return how many publishers publish on this topic: in every process of the
        domain, plus the ROS 2 or Zenoh publishers a bridge relays from."""
        return self._matched_count()

    def wait_for_publisher(self, timeout_sec: float | None = None) -> bool:
        """Wait until the topic has a publisher (:meth:`get_publisher_count` > 0); see
        :meth:`agnoshm.publisher.Publisher.wait_for_subscription`.

        :returns: True if there is one, False after ``timeout_sec`` or at shutdown.
        """
        return self._wait_for_match(timeout_sec)

    def has_data(self) -> bool:
        port = self._port
        return port is not None and (bool(self._inbox) or port.has_data())

    def destroy(self) -> None:
        self._inbox.clear()  # release what was taken but never handed out
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
