"""The publish path: loan blocks in the owner's pool, record an entry, ring doorbells.

Steps follow the data flow of one message in docs/design.md: (1) ``loan`` hands out pool blocks;
(2) ``publish`` records the entry under the topic's lock and reclaims what
fell out of depth and is unreferenced; (3) it rings each subscribing
process once.  Only the owner frees its memory (``reclaim``), on publish,
on a failed loan, and on the listener's idle pass.
"""

from __future__ import annotations

import ctypes
import struct
import time
import weakref
from collections import deque

from agnoshm import faults
from agnoshm.errors import (
    InvalidHandleError,
    LimitReachedError,
    MessageInvalidatedError,
    PoolExhaustedError,
)
from agnoshm.registry import layout as L
from agnoshm.transport.doorbell import publisher_ringer


_ENTRY_BODY_OFFSET = L.Entry.address.offset


def _entry_body(entry_type: type[L.Entry]) -> struct.Struct:
    """An entry after its seq: address, size, timestamp_ns, prev, holders, refs words."""
    body = struct.Struct(f"=QQQII{entry_type.refs.size // 8}Q")
    assert _ENTRY_BODY_OFFSET + body.size == ctypes.sizeof(entry_type)
    return body


class Loan:
    """The pool blocks of one message being written; invalid after publish."""

    __slots__ = ("port", "address", "size", "blocks", "valid", "arrays", "pinned", "__weakref__")

    def __init__(self, port: "PublisherPort", address: int, size: int):
        self.port = port
        self.address = address
        self.size = size
        self.blocks = [address]
        self.valid = True
        self.arrays: list[weakref.ref] = []  # writable numpy arrays handed out over the blocks
        self.pinned = False  # published while such arrays lived: the blocks wait for this loan

    def track(self, array) -> None:
        """Remember a writable array over this message; publishing makes it read-only."""
        self.arrays.append(weakref.ref(array))

    def _freeze_arrays(self) -> bool:
        """Make the arrays handed out read-only; return True if any is still alive."""
        # Published bytes belong to the subscribers now: a write through an array the
        # publisher kept would change what they read (invariant 3).
        alive = False
        for ref in self.arrays:
            array = ref()
            if array is not None:
                array.flags.writeable = False
                alive = True
        self.arrays = []
        return alive

    def allocate(self, nbytes: int) -> int:
        """Allocate a further block of this message (a string's or sequence's storage)."""
        if not self.valid:
            raise MessageInvalidatedError("this loaned message was published; borrow a new one")
        address = self.port.allocate(nbytes)
        self.blocks.append(address)
        return address

    def free(self, address: int) -> None:
        """Give back one block of this message (re-assigned storage)."""
        self.blocks.remove(address)
        self.port.allocator.free(address)

    def __del__(self):
        try:
            if self.pinned:  # the last array kept from this message is gone
                self.port.unpinned.append(self.address)
            self.discard()  # borrowed, never published, dropped: give the memory back
        except Exception:
            pass

    def discard(self) -> None:
        """Return an unpublished loan's blocks to the pool."""
        if self.valid:
            self.valid = False
            for address in self.blocks:
                self.port.allocator.free(address)
            self.blocks = []


class PublisherPort:
    """The data-plane side of one publisher.

    .. warning:: Users do not create ports; ``Node.create_publisher`` does.
    """

    def __init__(self, runtime, index: int, topic: int, depth: int):
        registry = runtime.registry
        self.runtime = runtime
        self.index = index
        self.depth = depth
        self.allocator = runtime.allocator
        self.record = registry.publishers[index]
        self.topic = registry.topics[topic]
        self.topic_index = topic
        self.lock = registry.topic_lock(topic)
        self.entries = registry.entries_of(index)
        self._entry_bytes = memoryview(self.entries).cast("B")
        self._entry_size = ctypes.sizeof(registry.offsets.entry)
        self._entry_body = _entry_body(registry.offsets.entry)
        self._no_refs = (0,) * registry.offsets.ref_words
        self._free_entries = list(range(len(self.entries) - 1, -1, -1))
        self._live: deque[int] = deque()  # entry indices in publish order
        self._held: list[int] = []  # out of depth, still referenced
        self._blocks: dict[int, list[int]] = {}
        self._withdrawn: list[list[int]] = []  # blocks of withdrawn entries, not yet freed
        self._generation = -1
        self._rings: list = []  # ring() per subscribing process's doorbell
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
    def loan(self, size: int) -> Loan:
        """Loan ``size`` bytes for a message's root struct.

        ``publish()`` withdraws the message that falls out of depth and the loan
        frees its blocks, so neither ``publish()`` nor a loan touches the registry
        for it again; a loan locks only when messages that subscribers held are
        waiting to be reclaimed.
        """
        if self.destroyed:
            raise InvalidHandleError("publisher was destroyed; create a new one")
        if self.unpinned:
            self._free_unpinned()
        if self._withdrawn:
            self._free_withdrawn()
        if len(self._live) >= self.depth + 1 or self._held:  # publish() normally did it
            with self.lock:
                self._reclaim_locked(self.depth - 1)
        if size == self._root_size and self._spare_roots:
            loan = Loan(self, self._spare_roots.pop(), size)
        else:
            self._root_size = size
            loan = Loan(self, self.allocate(size), size)
        if faults.ARMED:
            faults.hit("borrow")
        return loan

    def _recycle_root(self, address: int) -> None:
        if len(self._spare_roots) < 8:
            self._spare_roots.append(address)
        else:
            self.allocator.free(address)

    def allocate(self, nbytes: int) -> int:
        try:
            return self.allocator.allocate(nbytes)
        except PoolExhaustedError:
            self.runtime.flush_releases()  # this process's own subscriptions first
            self.runtime.reclaim_all()
            return self.allocator.allocate(nbytes)

    # (2) + (3) publish -----------------------------------------------------------
    def publish(self, loan: Loan) -> int:
        """Hand a loaned message to the subscribers; return its topic sequence number.

        :raises MessageInvalidatedError: if the loan was published already or is not ours.
        :raises LimitReachedError: if subscribers hold all of this publisher's entries.
        """
        if loan.port is not self or not loan.valid:
            raise MessageInvalidatedError(
                "this message was already published (or borrowed from another publisher): "
                "borrow a new one with borrow_loaned_message()")
        if self.destroyed:
            raise InvalidHandleError("publisher was destroyed; create a new one")
        entries = self.entries
        if faults.ARMED:
            faults.hit("publish.before")
        if not self._free_entries:
            self.runtime.flush_releases()  # before the lock: they may be on this topic
        with self.lock:
            if not self._free_entries:
                self._reclaim_locked(self.depth - 1)
                if not self._free_entries:
                    raise LimitReachedError(
                        f"subscribers hold all {len(entries)} messages of this publisher: release "
                        "received messages (drop views and arrays) or raise max_entries")
            loan.valid = False
            index = self._free_entries.pop()
            record = self.record
            topic = self.topic
            # Everything but seq in one write: address, size, timestamp, prev, no
            # holders, no refs.
            self._entry_body.pack_into(
                self._entry_bytes, index * self._entry_size + _ENTRY_BODY_OFFSET,
                loan.address, loan.size, time.monotonic_ns(), record.newest, 0, *self._no_refs)
            seq = topic.seq + 1
            entries[index].seq = seq  # commit: a reader only sees entries whose seq is set
            if faults.ARMED:
                faults.hit("publish.inside")
            record.newest = index + 1
            topic.seq = seq
            record.published += 1
            self._live.append(index)
            self._blocks[index] = loan.blocks
            if topic.generation != self._generation:
                self._refresh_doorbells_locked()
            rings = self._rings
            if len(self._live) > self.depth:  # the oldest fell out of depth: withdraw it
                # Its blocks are freed by the next loan (or reclaim): off the latency path.
                self._withdrawn += self._withdraw_locked(self.depth)
        if loan._freeze_arrays():
            loan.pinned = True
            self._pinned.add(loan.address)
        if faults.ARMED:
            faults.hit("publish.after")
        for ring in rings:
            ring()
        return seq

    def _refresh_doorbells_locked(self) -> None:
        registry = self.runtime.registry
        self._rings = [publisher_ringer(registry.doorbell_address(s), registry.sleeping_address(s))
                       for s in registry.subscriber_slots(self.topic_index)]
        self._generation = self.topic.generation

    def subscription_count(self) -> int:
        return self.topic.n_subscriptions

    # reclaim -----------------------------------------------------------------------
    def reclaim(self) -> None:
        """Free every message that is out of depth and unreferenced."""
        if self.unpinned:
            self._free_unpinned()
        if self._withdrawn:
            self._free_withdrawn()
        if self._held or len(self._live) > self.depth:
            with self.lock:
                self._reclaim_locked(self.depth)

    def _free_withdrawn(self) -> None:
        """Free the blocks of entries ``publish()`` withdrew (only this process uses them)."""
        withdrawn, self._withdrawn = self._withdrawn, []
        for blocks in withdrawn:
            self._free_blocks(blocks)

    def _reclaim_locked(self, keep: int) -> None:
        """Free what is unreferenced beyond the newest ``keep`` messages (topic lock held)."""
        for blocks in self._withdraw_locked(keep):
            self._free_blocks(blocks)

    def _withdraw_locked(self, keep: int) -> list[list[int]]:
        """Withdraw the entries that are unreferenced beyond the newest ``keep`` messages and
        return their blocks, to be freed by the caller (topic lock held)."""
        entries = self.entries
        freed = []
        while len(self._live) > keep:
            index = self._live.popleft()
            if entries[index].holders:
                self._held.append(index)
            else:
                freed.append(self._withdraw_entry(index))
        if self._held:
            still = []
            for index in self._held:
                if entries[index].holders:
                    still.append(index)
                else:
                    freed.append(self._withdraw_entry(index))
            self._held = still
        return freed

    def _withdraw_entry(self, index: int) -> list[int]:
        self.entries[index].seq = 0
        if faults.ARMED:
            faults.hit("reclaim.inside")
        self._free_entries.append(index)
        return self._blocks.pop(index)

    def _free_blocks(self, blocks: list[int]) -> None:
        root, *rest = blocks
        if root in self._pinned:  # arrays the publisher kept still read these bytes
            self._pinned_blocks[root] = blocks
            return
        self._recycle_root(root)
        for address in rest:
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
        """Subscriptions that have not yet taken this publisher's newest message."""
        registry = self.runtime.registry
        with self.lock:
            newest = self.record.newest
            if not newest:
                return 0
            seq = self.entries[newest - 1].seq
            return sum(1 for i in registry.subscription_indices(self.topic_index)
                       if registry.subscriptions[i].state == L.USED
                       and registry.subscriptions[i].last_seq < seq)

    def _linger(self, timeout: float) -> None:
        """Give live subscribers up to ``timeout`` seconds to take what was published."""
        deadline = time.monotonic() + timeout
        while self.unread_subscriptions() and time.monotonic() < deadline:
            time.sleep(0.001)

    def destroy(self) -> None:
        """Remove the publisher from the registry and free its messages' memory.

        Messages that subscribers still hold, or that arrays this process kept from
        its loans still read, stay readable: their blocks are never reused while
        this process lives (the registry forgets the entries, so nothing would tell
        when the last subscriber let go).
        """
        if self.destroyed:
            return
        self._linger(self.runtime.config.linger_sec)
        self.runtime.flush_releases()  # what this process dropped is not held any more
        self._free_unpinned()
        self.destroyed = True
        entries = self.entries
        with self.lock:
            held = {i: self._blocks[i] for i in list(self._live) + self._held
                    if entries[i].holders}
            # Withdraw every entry before freeing blocks: between this lock and
            # remove_publisher's, a subscriber could otherwise still take an entry
            # whose memory the next loan of this process reuses.
            for e in entries:
                e.seq = 0
            self.record.newest = 0
            for i, blocks in self._blocks.items():
                if i not in held and blocks[0] not in self._pinned:
                    for address in blocks:
                        self.allocator.free(address)
            self._free_withdrawn()  # (their roots join the spares freed next)
            for address in self._spare_roots:
                self.allocator.free(address)
            self._spare_roots = []
        self.runtime.registry.remove_publisher(self.index)
        # Blocks of held messages are leaked into the pool deliberately only until
        # the process exits; a subscriber's view must never see reused bytes.
        self._blocks = held
