"""Publisher: loan messages from this process's pool and publish them with zero copies."""

from __future__ import annotations

from agnoshm.errors import InvalidHandleError


class Publisher:
    """A zero-copy publisher on one topic.

    .. warning:: Users should not create a publisher with this constructor,
       instead they should call :meth:`agnoshm.Node.create_publisher`.
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

    def borrow_loaned_message(self):
        """Return a writable message in this process's pool; publish it with :meth:`publish`.

        :raises PoolExhaustedError: if the pool has no room.
        :raises InvalidHandleError: if the publisher was destroyed.
        """
        port = self._port
        if port is None:
            raise InvalidHandleError(f"publisher on {self.topic_name} was destroyed")
        return self.msg_type.loaned(port.loan(self.msg_type.struct_size))

    def publish(self, msg) -> None:
        """Send a message to the topic's subscribers.

        A loaned message is handed over in place and is invalid afterwards. Any
        other value (``bytes``, an array) is copied into a new loan first.

        :raises MessageInvalidatedError: if ``msg`` was published already.
        :raises InvalidHandleError: if the publisher or its node was destroyed.
        """
        port = self._port
        if port is None:
            raise InvalidHandleError(
                f"publisher on {self.topic_name} was destroyed (destroy_node or destroy_publisher)")
        loan = getattr(msg, "_loan", None)
        if loan is None:
            loaned = self.borrow_loaned_message()
            try:
                loaned.data = msg
            except BaseException:
                loaned._loan.discard()
                raise
            loan = loaned._loan
        port.publish(loan)

    def get_subscription_count(self) -> int:
        """Return how many subscriptions (in any process) listen on this topic."""
        if self._port is None:
            raise InvalidHandleError(f"publisher on {self.topic_name} was destroyed")
        return self._port.subscription_count()

    def destroy(self) -> None:
        if self._port is not None:
            port, self._port = self._port, None
            port.destroy()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._node.destroy_publisher(self)

    def __repr__(self) -> str:
        return f"<agnoshm.Publisher {self.topic_name} [{self.msg_type.type_name}]>"
