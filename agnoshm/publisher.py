"""Publisher: loan messages from this process's pool and publish them with zero copies."""

from __future__ import annotations

import numpy as np

from agnoshm.endpoint import Endpoint
from agnoshm.errors import MessageInvalidatedError, TypeMismatchError
from agnoshm.msg.coerce import assign
from agnoshm.msg.message import LoanedView


class Publisher(Endpoint):
    """A zero-copy publisher on one topic.

    .. warning:: Users should not create a publisher with this constructor,
       instead they should call :meth:`agnoshm.Node.create_publisher`.
    """

    _kind = "publisher"

    def __init__(self, node, port, msg_type, topic_name: str, qos_profile):
        super().__init__(node, port, msg_type, topic_name, qos_profile)
        port.loan_as(self.msg_type)
        # On the native path these two are C from the caller on; the methods below stay
        # the reference, and what C hands back for anything but the port's own loans.
        front = port.front(self.publish)
        if front is not None:
            self.borrow_loaned_message, self.publish = front

    def destroy(self) -> None:
        port = self._port
        if port is not None:
            port.front(None)
        self.__dict__.pop("borrow_loaned_message", None)  # the methods again (they raise)
        self.__dict__.pop("publish", None)
        super().destroy()

    def borrow_loaned_message(self):
        """Return a writable message in this process's pool; publish it with :meth:`publish`.

        :raises PoolExhaustedError: if the pool has no room.
        :raises InvalidHandleError: if the publisher was destroyed.
        """
        port = self._port
        if port is None:
            port = self._live_port()  # raises
        msg_type = self.msg_type
        return msg_type.loaned(port.loan(msg_type.struct_size))

    def publish(self, msg) -> None:
        """Send a message to the topic's subscribers.

        A loaned message is handed over in place and is invalid afterwards. Any
        other value is copied into a new loan first (the one-copy path): an
        rclpy or rosbags message, a dict, or for ``agnoshm.Bytes`` bytes or an array.

        :raises MessageInvalidatedError: if ``msg`` was published already, or borrowed from
            another publisher.
        :raises TypeMismatchError: if ``msg`` is a message of another type (a loan, a rosbags
            or an rclpy message; dicts and other objects are copied by field name).
        :raises InvalidHandleError: if the publisher or its node was destroyed.
        """
        port = self._port
        if port is None:
            port = self._live_port()  # raises
        if type(msg) is self.msg_type._loaned_class:  # a root loan of this type (no type
            loan = msg._owner  # nests itself): the checks below hold unless another port's
            if loan.port is port:
                port.publish(loan)
                return
        if isinstance(msg, LoanedView):
            loan = msg._owner
            if msg._type_name != self.msg_type.type_name:  # also any view nested in a loan
                raise TypeMismatchError(
                    f"this publisher of {self.topic_name} publishes {self.msg_type.type_name}, not "
                    f"{msg._type_name}" + ("" if msg._address == loan.address else
                                            " (a message nested in a loan)")
                    + ": borrow from this publisher, or pass a dict of the fields to copy them")
            if loan.port is not port and loan.valid:
                raise MessageInvalidatedError(
                    f"this {msg._type_name} was borrowed from another publisher: publish it with "
                    f"that one, or borrow from this one (borrow_loaned_message())")
            port.publish(loan)
            return
        loaned = self.borrow_loaned_message()
        try:
            if isinstance(msg, (bytes, bytearray, memoryview, np.ndarray)) and \
                    loaned._field_names == {"data"}:
                loaned.data = msg  # agnoshm.Bytes and other one-sequence types
            else:
                assign(loaned, msg)
        except BaseException:
            loaned._owner.discard()
            raise
        port.publish(loaned._owner)

    _matched_side = 1  # subscriptions

    def get_subscription_count(self) -> int:
        """Return how many subscriptions listen on this topic: in every process of the
        domain, plus the ROS 2 or Zenoh subscriptions a bridge relays it to."""
        return self._matched_count()

    def wait_for_subscription(self, timeout_sec: float | None = None) -> bool:
        """Wait until the topic has a subscription (:meth:`get_subscription_count` > 0).

        agnoshm's own (rclpy has no such call; it is shaped like ``Client.wait_for_service``).
        Event-driven within :data:`agnoshm.matched.POLL_SEC`: no sleep loop in the caller.

        :param timeout_sec: give up after this long; None or negative waits forever.
        :returns: True if there is one, False after the timeout or at shutdown.
        :raises InvalidHandleError: if the publisher was destroyed.
        """
        return self._wait_for_match(timeout_sec)
