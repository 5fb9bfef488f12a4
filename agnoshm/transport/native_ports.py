"""The message path's ports when the C extension runs it (``agnoshm/_native``).

Each subclass keeps everything of its pure-Python port (loans, reclaim,
refreshing the lists from the registry, destroy) and hands only the per-message
steps of :mod:`~agnoshm.transport.ring`'s protocol to C: a publisher's steps
(a)-(f); a subscription's steps (1)-(5), the leases it hands out (C ``Lease``
objects, released in C when they die) and ``has_data``.  Both work on the same
shared words, so native and pure processes share one domain.
"""

from __future__ import annotations

import functools

from agnoshm import faults
from agnoshm.errors import InvalidHandleError, PoolAccessError
from agnoshm.transport.loan import Loan
from agnoshm.transport.publish import PublisherPort
from agnoshm.transport.receive import SubscriberPort

_HELD, _MOVED = 1, 2  # what the native publish returns besides 0 (see agnoshm/_native/ring.c)


class _KnownGeneration:
    """A port's ``_generation``: the topic generation its lists were read at (-1: none yet).

    Setting it (as a refresh does, or -1 to force one) also makes the port's C object
    (attribute ``c_object``) forget its lists until the refresh hands them over: both
    sides agree.
    """

    def __init__(self, c_object: str):
        self.c_object = c_object

    def __get__(self, port, owner=None):
        return self if port is None else port._known_generation

    def __set__(self, port, value: int) -> None:
        port._known_generation = value
        c_object = port.__dict__.get(self.c_object)
        if c_object is not None:
            c_object.forget()


class NativePublisherPort(PublisherPort):
    """A publisher port whose ``publish()`` runs in C (``agnoshm/_native``).

    ``loan`` is the C ``Writer.loan``: :meth:`PublisherPort.loan` with a C ``Loan``, which
    asks :meth:`_root_address` when no kept root is at hand.  ``publish`` is the C
    ``Writer.send``: it does :meth:`PublisherPort.publish` on this port's own lists (free
    entries, live entries, blocks) when nothing needs Python (no armed faults, a free
    entry, the lock free), and calls the Python method, :meth:`_publish_checked`,
    otherwise; that one hands steps (a)-(f) to C too.
    """

    def __init__(self, runtime, index: int, topic: int, depth: int):
        super().__init__(runtime, index, topic, depth)
        writer = self._writer = runtime.native.Writer(
            region=runtime.native_region, capacity=self._capacity, entries=self._entries,
            log=self._log_word * 8, head=self._head_word * 8,
            published=self._published_word * 8, generation=self._generation_word * 8)
        writer.bind(self)
        # No Python frame between the Publisher and C: loans are the C Loan (the twin of
        # transport/loan.py's), publish() takes them in place.
        self.loan = writer.loan
        self.publish = writer.send

    _publish_checked = PublisherPort.publish

    def loan_as(self, msg_type) -> None:
        """The C ``Writer.borrow`` makes the publisher's loaned views (``MessageType.loaned``'s
        steps: zeroed, then the definition's defaults)."""
        self._writer.set_loaned(msg_type.loaned_class(), msg_type.struct_size,
                                msg_type.defaults_writer())

    def front(self, publish):
        """The C ``borrow`` and ``Writer.publish_message``, which sends this port's own loans
        of the publisher's type and hands anything else to ``publish`` (the Python method;
        ``None`` forgets it)."""
        self._writer.set_front(publish)
        return None if publish is None else (self._writer.borrow, self._writer.publish_message)

    @property
    def _seq(self) -> int:
        """The publisher's count, which the C writer keeps."""
        return self._writer.seq

    @_seq.setter
    def _seq(self, value: int) -> None:
        writer = self.__dict__.get("_writer")
        if writer is not None:  # PublisherPort.__init__ sets 0 before the writer exists
            writer.seq = value

    def _commit(self, entry: int, seq: int, loan: Loan, withdrawn: int) -> bool:
        state = self._writer.publish(entry, seq, loan.address, loan.size, withdrawn)
        if state == _MOVED:  # the topic's subscriptions changed: refresh, then ring
            self._refresh_subscriptions()
            state = self._writer.finish(withdrawn)
        return state == _HELD

    def _refresh_subscriptions(self) -> None:
        super()._refresh_subscriptions()
        self._writer.set_subscriptions(self._generation, self._hold_offsets,
                                       [word << 3 for word, _ring in self._sleepers])

    _generation = _KnownGeneration("_writer")


class NativeSubscriberPort(SubscriberPort):
    """A subscription whose steps (1)-(5), leases and releases run in C (``agnoshm/_native``).

    The C reader keeps the cursors, the held, received and corrupted counts;
    ``_Channel`` objects get their cursors back before each refresh.
    """

    _reader = None

    @property
    def held(self) -> int:
        """Messages this subscription holds now (the C reader counts them)."""
        return self._reader.held

    @property
    def corrupted(self) -> int:
        """Messages dropped because they pointed outside their pool (the C reader counts)."""
        return self._reader.corrupted

    def take(self, max_count: int = 1, views: bool = False) -> list:
        """Take up to ``max_count`` new messages (oldest first) and hold them: C leases, or
        with ``views`` the views C builds over them (as ``view_as`` set).

        The common take runs no Python inside the C call, so it needs no lock (ring.c's
        ``Reader.take`` says why); one that needs Python (a new publisher's pool, a
        refresh, armed faults) returns None and is done again under the lock.
        """
        if self.destroyed:
            raise InvalidHandleError("subscription was destroyed; create a new one")
        taken = self._reader.take(self, max_count, True, False, views)
        if taken is not None:
            return taken
        with self._lock:
            taken = self._reader.take(self, max_count, True, True, views)
            if taken is None:  # the topic's generation moved
                self._refresh_channels()
                taken = self._reader.take(self, max_count, False, True, views)
        if taken and faults.ARMED:
            faults.hit("take.after")
        return taken

    def view_as(self, msg_type) -> None:
        super().view_as(msg_type)
        self._reader.set_view(msg_type.received_class(), msg_type.struct_size,
                              msg_type.received)
        # the take that needs no lock, with no Python frame; take() where it needs one
        self.take_views = functools.partial(self._reader.take_views, self)

    def _mapping_of(self, channel):
        """The C reader asks: ``channel``'s publisher's pool mapping (``_native.Mapping``),
        or None if that process is gone or its pool may not be read (as ``_leases``)."""
        try:
            return self.runtime.peers.mapping(channel.slot, channel.incarnation)
        except (OSError, PoolAccessError):
            return None

    def destroy(self) -> None:
        if not self.destroyed:
            self._reader.mark_destroyed()  # its last release unlists it (``_drained``)
        super().destroy()

    _generation = _KnownGeneration("_reader")

    def _refresh_channels(self, starts: dict | None = None) -> None:
        reader = self._reader
        if reader is None:  # the first refresh, at construction
            reader = self._reader = self.runtime.native.Reader(
                region=self.runtime.native_region, capacity=self._capacity,
                depth=self.depth, generation=self._generation_word * 8,
                received=self._received_word * 8, held=self._held_word * 4,
                incarnation_at=self._incarnation_word * 8, incarnation=self.incarnation)
            self.has_data = reader.has_data
        else:
            reader.sync_cursors()
        super()._refresh_channels(starts)
        reader.set_channels(self._generation, self._channels)
