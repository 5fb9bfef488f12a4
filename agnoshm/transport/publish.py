"""The publish path: loan blocks in the owner's pool, write the entry, ring sleepers.

Steps follow the data flow of one message in docs/design.md: (1) ``loan``
hands out pool blocks; (2) ``publish`` writes the message's entry, log word
and head into this publisher's channel, with no lock and no registry walk
(the protocol and its memory-ordering argument are in :mod:`ring`), and
withdraws the message that left the depth; (3) it rings each subscribing
process that sleeps.  Only the owner frees its memory, once no subscription
holds it: on publish, on a loan, and on the listener's idle pass.
"""

from __future__ import annotations

import ctypes
import struct
import threading
import time
from collections import deque

from agnoshm import _libc, faults
from agnoshm.errors import (
    InvalidHandleError,
    LimitReachedError,
    MessageInvalidatedError,
    PoolExhaustedError,
)
from agnoshm.registry import layout as L
from agnoshm.transport.loan import Loan
from agnoshm.transport.ring import TOTAL_STORE_ORDER, full_fence, store_fence

#: An entry after its seq: address, size, timestamp_ns (one write; seq is written last).
_ENTRY_BODY = struct.Struct("=QQQ")
_ENTRY_SIZE = ctypes.sizeof(L.Entry)
assert _ENTRY_BODY.size + 8 == _ENTRY_SIZE and L.Entry.address.offset == 8


_new_loan = object.__new__  # PublisherPort.loan stores the slots (no __init__ call)


class PublisherPort:
    """The data-plane side of one publisher: its channel in the registry.

    .. warning:: Users do not create ports; ``Node.create_publisher`` does.
    """

    def __init__(self, runtime, index: int, topic: int, depth: int):
        registry = runtime.registry
        self.runtime = runtime
        self.index = index
        self.depth = depth
        self.allocator = runtime.allocator
        self._pool = runtime.pool
        self.record = registry.publishers[index]
        self.position = self.record.position
        self.topic = registry.topics[topic]
        self.topic_index = topic
        self._registry = registry
        self._lock = threading.Lock()  # publish and reclaim from several threads
        self._words = registry.words
        self._memory = registry.memory
        self._capacity = capacity = registry.header.max_entries
        channel = registry.channel_offset(index)
        channel_type = registry.offsets.channel
        self._head_word = (channel + L.ChannelHead.head.offset) >> 3
        self._log_word = (channel + channel_type.log.offset) >> 3
        self._entries = channel + channel_type.entries.offset
        self._published_word = (ctypes.addressof(self.record) + L.PublisherRecord.published.offset
                                - registry.address) >> 3
        self._generation_word = (ctypes.addressof(self.topic) + L.TopicRecord.generation.offset
                                 - registry.address) >> 3
        # Subscriptions keep their holds on our entries at this offset of their receipts.
        self._holds_in_receipts = (registry.offsets.receipt.holds.offset
                                   + self.position * capacity)
        self._cursor_in_receipts = (registry.offsets.receipt.cursors.offset + 8 * self.position)
        self._seq = 0
        self._free_entries = list(range(capacity - 1, -1, -1))
        self._live: deque[int] = deque()  # entry indices in publish order
        self._held: list[int] = []  # withdrawn, still held by a subscription
        self._blocks: dict[int, list[int]] = {}
        self._withdrawn: list[list[int]] = []  # blocks of withdrawn entries, not yet freed
        self._generation = -1
        self._hold_offsets: list[int] = []  # where each listed subscription counts its holds
        self._cursor_words: list[int] = []  # where each live subscription says how far it read
        self._sleepers: list = []  # (word of doorbell and sleeping flag, ring) per process
        # Root structs all have one size: reclaimed ones are kept here for the next
        # loan, which then costs a list pop instead of a trip through the allocator.
        self._spare_roots: list[int] = []
        self._root_size = 0
        # Messages published while the publisher kept arrays over them (root addresses):
        # their blocks are not reused until those arrays are gone, so a kept array never
        # shows a later message's bytes.  Loan.__del__ reports the end in ``unpinned``.
        self._pinned: set[int] = set()
        self._pinned_blocks: dict[int, list[int]] = {}  # withdrawn, waiting for their arrays
        self.unpinned: list[int] = []
        self.destroyed = False

    # (1) loan -----------------------------------------------------------------
    def loan_as(self, msg_type) -> None:
        """The publisher's type (a :class:`~agnoshm.msg.message.MessageType`), for a port
        that makes its loaned views itself (see :meth:`front`); this one does not."""

    def front(self, publish):
        """``(borrow_loaned_message, publish)`` for the publisher to use as its own, with no
        Python frame in between (``publish``: its Python method, for what they hand back),
        or None: this port has none."""
        return None

    def loan(self, size: int) -> Loan:
        """Loan ``size`` bytes for a message's root struct (one size: one type a publisher).

        ``publish()`` frees the message that left the depth unless a subscription holds
        it; a loan reads the holds only when such held messages wait to be freed.
        """
        spare = self._spare_roots
        if (self.destroyed or self._withdrawn or self._held or self.unpinned or not spare
                or size != self._root_size):
            address = self._root_address(size)
        else:  # a root of an earlier message: a list pop, no allocator
            address = spare.pop()
        loan = _new_loan(Loan)
        loan.port = self
        loan.pool = self._pool
        loan.address = address
        loan.size = size
        loan.blocks = [address]
        loan.valid = True
        loan.arrays = None
        loan.pinned = False
        if faults.ARMED:
            faults.hit("borrow")
        return loan

    def _root_address(self, size: int) -> int:
        """The root block of a next loan, after freeing what waits to be freed (loan()'s
        path when a kept root is not at hand; the native loan's too).

        :raises InvalidHandleError: if the publisher was destroyed.
        """
        if self.destroyed:
            raise InvalidHandleError("publisher was destroyed; create a new one")
        if self._withdrawn or self._held or self.unpinned:
            self._free_pending()
        try:  # a root of an earlier message: a list pop, no allocator
            return self._spare_roots.pop() if size == self._root_size else self._new_root(size)
        except IndexError:
            return self._new_root(size)

    def _free_pending(self) -> None:  # messages withdrawn, released, or unpinned
        lock = self._lock
        lock.acquire()
        try:
            if self.unpinned:
                self._free_unpinned()
            if self._held:
                self._free_released()
            if self._withdrawn:
                self._free_withdrawn()
        finally:
            lock.release()

    def _new_root(self, size: int) -> int:
        if size != self._root_size:  # spare roots of another size must not serve it
            with self._lock:
                for address in self._spare_roots:
                    self.allocator.free(address)
                self._spare_roots = []
                self._root_size = size
        return self.allocate(size)

    def allocate(self, nbytes: int) -> int:
        try:
            return self.allocator.allocate(nbytes)
        except PoolExhaustedError:
            return self.allocate_after_reclaim(nbytes)

    def allocate_after_reclaim(self, nbytes: int) -> int:  # the pool was full
        self.runtime.reclaim_all()
        return self.allocator.allocate(nbytes)

    # (2) + (3) publish -----------------------------------------------------------
    def publish(self, loan: Loan) -> int:
        """Hand a loaned message to the subscribers; return its sequence number (this
        publisher's count, from 1).

        :raises MessageInvalidatedError: if the loan was published already or is not ours.
        :raises LimitReachedError: if subscribers hold all of this publisher's entries.
        """
        if loan.port is not self or not loan.valid:
            raise MessageInvalidatedError(
                "this message was already published (or borrowed from another publisher): "
                "borrow a new one with borrow_loaned_message()")
        if self.destroyed:
            raise InvalidHandleError("publisher was destroyed; create a new one")
        if faults.ARMED:
            faults.hit("publish.before")
        lock = self._lock  # acquire/release: a ``with`` costs twice as much
        lock.acquire()
        try:
            free_entries = self._free_entries
            if not free_entries:
                self._reclaim_locked(self.depth - 1)
                if not free_entries:
                    raise LimitReachedError(
                        f"subscribers hold all {self._capacity} messages of this publisher: "
                        "release received messages (drop views and arrays) or raise max_entries")
            loan.valid = False
            entry = free_entries.pop()
            seq = self._seq = self._seq + 1
            live = self._live
            live.append(entry)
            self._blocks[entry] = loan.blocks
            withdrawn = live.popleft() if len(live) > self.depth else -1  # (c) left the depth
            if self._commit(entry, seq, loan, withdrawn):
                self._held.append(withdrawn)  # freed once no subscription holds it
            elif withdrawn >= 0:  # (g) no one can reach it any more: free its blocks now
                free_entries.append(withdrawn)
                self._free_blocks(self._blocks.pop(withdrawn))
        finally:
            lock.release()
        if loan.arrays is not None and loan._freeze_arrays():
            loan.pinned = True  # its blocks wait for the kept arrays (Loan.__del__)
            self._pinned.add(loan.address)
        return seq

    def _commit(self, entry: int, seq: int, loan: Loan, withdrawn: int) -> bool:
        """Steps (a)-(f) of ring.py: write the entry, log and head, withdraw entry
        ``withdrawn`` (-1: none), fence, ring sleepers; return whether the withdrawn
        entry is still held (lock held).  :class:`~agnoshm.transport.native_ports.NativePublisherPort` does it in C."""
        words = self._words
        offset = self._entries + entry * _ENTRY_SIZE
        _ENTRY_BODY.pack_into(self._memory, offset + 8, loan.address, loan.size,
                              time.monotonic_ns())
        TOTAL_STORE_ORDER or store_fence()  # x86-64 keeps stores in order: no call
        words[offset >> 3] = seq  # (a) the entry is complete
        if faults.ARMED:
            faults.hit("publish.inside")
        words[self._log_word + seq % self._capacity] = seq << L.LOG_SHIFT | entry
        if faults.ARMED:
            faults.hit("publish.logged")
        words[self._head_word] = words[self._published_word] = seq  # (b) subscribers may take it
        if withdrawn >= 0:  # (c)
            words[(self._entries + withdrawn * _ENTRY_SIZE) >> 3] = 0
            if faults.ARMED:
                faults.hit("reclaim.inside")
        full_fence()  # (d)
        if words[self._generation_word] != self._generation:
            self._refresh_subscriptions()
        if faults.ARMED:
            faults.hit("publish.after")
        for word, ring in self._sleepers:  # (e)
            if words[word] >> 32:  # the process's sleeping flag
                ring()
        if withdrawn >= 0:  # (f)
            memory = self._memory
            for offset in self._hold_offsets:
                if memory[offset + withdrawn]:
                    return True
        return False

    def _refresh_subscriptions(self) -> None:
        """Re-read the topic's subscriptions (its ``generation`` moved)."""
        registry = self._registry
        generation = self._words[self._generation_word]  # before the lists (ring.py)
        hold_offsets, cursor_words = [], []
        for s in registry.subscription_indices(self.topic_index):
            state = registry.subscriptions[s].state
            if state != L.FREE:
                receipts = registry.receipts_offset(s)
                hold_offsets.append(receipts + self._holds_in_receipts)
                if state == L.USED:
                    cursor_words.append((receipts + self._cursor_in_receipts) >> 3)
        sleepers = []
        for slot in registry.subscriber_slots(self.topic_index):
            doorbell = registry.doorbell_address(slot)
            sleepers.append(((doorbell - registry.address) >> 3, _libc.futex_ringer(doorbell)))
        self._hold_offsets, self._cursor_words, self._sleepers = hold_offsets, cursor_words, sleepers
        self._generation = generation

    def _is_held(self, entry: int) -> bool:
        memory = self._memory
        for offset in self._hold_offsets:
            if memory[offset + entry]:
                return True
        return False

    def _withdraw(self, entry: int) -> None:
        """Forget a withdrawn, unheld entry; its blocks are freed by the next loan."""
        self._withdrawn.append(self._blocks.pop(entry))
        self._free_entries.append(entry)

    def subscription_count(self) -> int:
        return self.topic.n_subscriptions

    # reclaim -----------------------------------------------------------------------
    def reclaim(self) -> None:
        """Free every message that is out of depth and unheld."""
        with self._lock:
            self._free_unpinned()
            self._free_withdrawn()
            if self._held or len(self._live) > self.depth:
                self._reclaim_locked(self.depth)

    def _reclaim_locked(self, keep: int) -> None:
        """Withdraw what lies beyond the newest ``keep`` messages, then free what no
        subscription holds (own lock held)."""
        words = self._words
        live = self._live
        while len(live) > keep:
            entry = live.popleft()
            words[(self._entries + entry * _ENTRY_SIZE) >> 3] = 0
            if faults.ARMED:
                faults.hit("reclaim.inside")
            self._held.append(entry)
        full_fence()  # the withdrawals before reading the holds (ring.py)
        if words[self._generation_word] != self._generation:
            self._refresh_subscriptions()
        self._free_released()
        self._free_withdrawn()

    def _free_released(self) -> None:
        """Withdraw the held entries whose holds are all gone (own lock held)."""
        still = []
        for entry in self._held:
            if self._is_held(entry):
                still.append(entry)
            else:
                self._withdraw(entry)
        self._held = still

    def _free_withdrawn(self) -> None:
        """Free the blocks of withdrawn entries (only this process uses them)."""
        withdrawn, self._withdrawn = self._withdrawn, []
        for blocks in withdrawn:
            self._free_blocks(blocks)

    def _free_blocks(self, blocks: list[int]) -> None:
        root = blocks[0]
        if root in self._pinned:  # arrays the publisher kept still read these bytes
            self._pinned_blocks[root] = blocks
            return
        if len(self._spare_roots) < 8:  # the root serves a next loan
            self._spare_roots.append(root)
        else:
            self.allocator.free(root)
        for address in blocks[1:]:
            self.allocator.free(address)

    def _free_unpinned(self) -> None:
        """Free the withdrawn messages whose kept arrays are gone."""
        while self.unpinned:
            root = self.unpinned.pop()
            self._pinned.discard(root)
            blocks = self._pinned_blocks.pop(root, None)
            if blocks is not None:
                self._free_blocks(blocks)

    def held_count(self) -> int:
        return len(self._held)

    def unread_subscriptions(self) -> int:
        """Live subscriptions that have not yet taken this publisher's newest message."""
        with self._lock:
            if self._words[self._generation_word] != self._generation:
                self._refresh_subscriptions()
            seq = self._seq
            words = self._words
            return sum(1 for word in self._cursor_words if words[word] < seq)

    def _linger(self, timeout: float) -> None:
        """Give live subscribers up to ``timeout`` seconds to take what was published."""
        deadline = time.monotonic() + timeout
        while self._seq and self.unread_subscriptions() and time.monotonic() < deadline:
            time.sleep(0.001)

    def destroy(self) -> None:
        """Remove the publisher from the registry and free its messages' memory.

        Messages that subscribers still hold, or that arrays this process kept from
        its loans still read, stay readable: their blocks are never reused while
        this process lives (the publisher is gone, so nothing would tell when the
        last subscriber let go).
        """
        if self.destroyed:
            return
        self._linger(self.runtime.config.linger_sec)
        with self._lock:
            self._free_unpinned()
            self.destroyed = True
            # Withdraw every entry before reading the holds (ring.py): after this no
            # subscriber can take one, and those held keep their blocks.
            self._reclaim_locked(0)
            held = {entry: self._blocks[entry] for entry in self._held}
            for entry, blocks in self._blocks.items():
                if entry not in held and blocks[0] not in self._pinned:
                    for address in blocks:
                        self.allocator.free(address)
            for address in self._spare_roots:
                self.allocator.free(address)
            self._spare_roots = []
        self.runtime.registry.remove_publisher(self.index)
        # Blocks of held messages are leaked into the pool deliberately only until
        # the process exits; a subscriber's view must never see reused bytes.
        self._blocks = held

