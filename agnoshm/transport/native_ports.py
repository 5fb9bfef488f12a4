"""The message path's ports when the C extension runs it (``agnoshm/_native``).

Each subclass keeps everything of its pure-Python port (loans, leases, reclaim,
refreshing the lists from the registry, destroy) and hands only the per-message
steps of :mod:`~agnoshm.transport.ring`'s protocol to C: a publisher's steps
(a)-(f), a subscription's steps (1)-(5), its release and ``has_data``.  Both work
on the same shared words, so native and pure processes share one domain.
"""

from __future__ import annotations

from agnoshm.transport.publish import Loan, PublisherPort
from agnoshm.transport.receive import SubscriberPort

_HELD, _MOVED = 1, 2  # what the native publish returns besides 0 (see agnoshm/_native/ring.c)


class NativePublisherPort(PublisherPort):
    """A publisher port whose steps (a)-(f) run in C (``agnoshm/_native``)."""

    def __init__(self, runtime, index: int, topic: int, depth: int):
        super().__init__(runtime, index, topic, depth)
        self._writer = runtime.native.Writer(
            region=runtime.native_region, capacity=self._capacity, entries=self._entries,
            log=self._log_word * 8, head=self._head_word * 8,
            published=self._published_word * 8, generation=self._generation_word * 8)

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

    @property
    def _generation(self) -> int:
        """The topic generation the subscription lists were read at (-1: none yet)."""
        return self._known_generation

    @_generation.setter
    def _generation(self, value: int) -> None:
        # Setting it (as a refresh does, or -1 to force one) also makes the C writer
        # forget its lists until the refresh hands them over: both sides agree.
        self._known_generation = value
        writer = self.__dict__.get("_writer")
        if writer is not None:
            writer.forget()


class NativeSubscriberPort(SubscriberPort):
    """A subscription whose steps (1)-(5) and release run in C (``agnoshm/_native``).

    The C reader keeps the cursors, the held and received counts; ``_Channel``
    objects get their cursors back before each refresh.
    """

    _reader = None

    @property
    def held(self) -> int:
        """Messages this subscription holds now (the C reader counts them)."""
        return self._reader.held

    @property
    def _generation(self) -> int:
        """The topic generation the channels were read at (-1: none yet)."""
        return self._known_generation

    @_generation.setter
    def _generation(self, value: int) -> None:
        # Setting it (as a refresh does, or -1 to force one) also makes the C reader
        # forget its channels until the refresh hands them over: both sides agree.
        self._known_generation = value
        if self._reader is not None:
            self._reader.forget()

    def _refresh_channels(self, starts: dict | None = None) -> None:
        reader = self._reader
        if reader is None:  # the first refresh, at construction
            reader = self._reader = self.runtime.native.Reader(
                region=self.runtime.native_region, capacity=self._capacity,
                depth=self.depth, generation=self._generation_word * 8,
                received=self._received_word * 8, held=self._held_word * 4,
                incarnation_at=self._incarnation_word * 8, incarnation=self.incarnation)
            self.has_data = reader.has_data
            self._drop = reader.release
        else:
            reader.sync_cursors()
        super()._refresh_channels(starts)
        reader.set_channels(self._generation, self._channels)

    def _take_locked(self, max_count: int) -> list[tuple]:
        taken = self._reader.take(max_count)
        if taken is None:  # the topic's generation moved
            self._refresh_channels()
            taken = self._reader.take(max_count, False)
        return taken
