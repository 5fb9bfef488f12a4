"""The receive path: find new messages, hold them, hand out leases.

A take delivers, per publisher in publish order, the messages newer than the
last one this subscription took, at most ``depth`` of them (the newest; with
several publishers, the newest ``depth`` by publish time).  It reads each
publisher's channel and counts its holds in its own receipts, with no lock
shared with another process (the protocol is in :mod:`ring`).  Before
anything dereferences a message, the publisher's pool is mapped here (by slot
incarnation).  A :class:`Lease` takes its hold back when the last Python
object derived from the message dies; the publisher then reuses the memory.
"""

from __future__ import annotations

import ctypes
import functools
import struct
import threading

from agnoshm import faults
from agnoshm.errors import InvalidHandleError
from agnoshm.registry import layout as L
from agnoshm.transport.ring import TOTAL_STORE_ORDER, full_fence, load_fence

_ENTRY = struct.Struct("=QQQQ")  # seq, address, size, timestamp_ns
_ENTRY_SIZE = ctypes.sizeof(L.Entry)
_ENTRY_MASK = (1 << L.LOG_SHIFT) - 1


class Lease:
    """This subscription's hold on one message; released exactly once.

    The owner of a received view (:class:`agnoshm.msg.owner.MessageOwner`).
    """

    __slots__ = ("port", "publisher", "hold", "seq", "mapping", "address", "size",
                 "timestamp_ns", "_released", "__weakref__")
    exports_pool = False  # the native Lease exports its pool's bytes (the buffer protocol)

    def __init__(self, port, publisher: int, hold: int, seq: int, mapping, address: int,
                 size: int, timestamp_ns: int):
        self.port = port
        self.publisher = publisher  # its publisher record (e.g. to name its node)
        self.hold = hold  # offset of the hold count in the registry
        self.seq = seq
        self.mapping = mapping
        self.address = address
        self.size = size
        self.timestamp_ns = timestamp_ns
        self._released = False

    @property
    def pool(self):
        return self.mapping.pool

    @property
    def valid(self) -> bool:
        """True until the message is released (a received message is never writable)."""
        return not self._released

    @property
    def closed(self) -> bool:
        """Whether agnoshm shut down in this process (the publisher's pool is unmapped)."""
        return self.port.runtime.closed

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.port.release(self)

    def __del__(self):
        if not self._released:
            self._released = True
            try:
                self.port.release(self)
            except Exception:  # interpreter shutdown or runtime gone: nothing left to release
                pass


class _Channel:
    """What a subscription knows of one publisher of its topic."""

    __slots__ = ("publisher", "position", "ident", "ident_word", "head_word", "log_word",
                 "entries", "slot", "incarnation", "cursor", "cursor_word", "holds")

    def __init__(self, registry, publisher: int, record, holds: int, cursor_words: int):
        channel = registry.channel_offset(publisher)
        channel_type = registry.offsets.channel
        self.publisher = publisher
        self.position = record.position
        self.ident_word = (channel + L.ChannelHead.ident.offset) >> 3
        self.ident = registry.words[self.ident_word]
        self.head_word = (channel + L.ChannelHead.head.offset) >> 3
        self.log_word = (channel + channel_type.log.offset) >> 3
        self.entries = channel + channel_type.entries.offset
        self.slot = record.process
        self.incarnation = record.incarnation
        self.cursor = 0  # the newest sequence number taken (or skipped)
        self.cursor_word = cursor_words + self.position
        self.holds = holds + self.position * registry.header.max_entries


class SubscriberPort:
    """The data-plane side of one subscription.

    .. warning:: Users do not create ports; ``Node.create_subscription`` does.

    :param ignore_local: skip messages of publishers in this process.
    """

    held = 0  # messages this subscription holds now
    _received = 0  # this process is the only writer of the record's count
    corrupted = 0  # messages dropped because they pointed outside their pool

    def __init__(self, runtime, index: int, topic: int, depth: int, *,
                 ignore_local: bool = False, starts: dict | None = None):
        registry = runtime.registry
        self.runtime = runtime
        self.index = index
        self.depth = depth
        self.record = registry.subscriptions[index]
        self.incarnation = self.record.incarnation
        self.topic = registry.topics[topic]
        self.topic_index = topic
        self.ignore_local = ignore_local
        self._registry = registry
        self._words = registry.words
        self._memory = registry.memory
        self._capacity = registry.header.max_entries
        receipts = registry.receipts_offset(index)
        receipt_type = registry.offsets.receipt
        self._holds = receipts + receipt_type.holds.offset
        self._cursor_words = (receipts + receipt_type.cursors.offset) >> 3
        base = ctypes.addressof(self.record) - registry.address
        self._received_word = (base + L.SubscriptionRecord.received.offset) >> 3
        self._incarnation_word = (base + L.SubscriptionRecord.incarnation.offset) >> 3
        self._held_word = (base + L.SubscriptionRecord.held.offset) >> 2  # in words32
        self._words32 = registry.words32
        self._generation_word = (ctypes.addressof(self.topic) + L.TopicRecord.generation.offset
                                 - registry.address) >> 3
        # Takes and releases may come from several threads (and a release from a
        # garbage collection inside a take): one re-entrant lock orders them.
        self._lock = threading.RLock()
        self._generation = -1
        self._channels: list[_Channel] = []
        self.destroyed = False
        with self._lock:
            self._refresh_channels(starts or {})

    def has_data(self) -> bool:
        """Cheap, lock-free check: may a take find something (a new message, or a
        publisher that came or went)?"""
        words = self._words
        if words[self._generation_word] != self._generation:
            return True
        for channel in self._channels:
            if words[channel.head_word] > channel.cursor:
                return True
        return False

    def take(self, max_count: int = 1, views: bool = False) -> list:
        """Take up to ``max_count`` new messages (oldest first) and hold them.

        :param views: each as a read-only view of the type :meth:`view_as` set (the view
            holds the lease), instead of its :class:`Lease`.
        """
        return self._take(views, max_count)

    def _take(self, views: bool, max_count: int) -> list:  # views first: partial(_take, True)
        if self.destroyed:
            raise InvalidHandleError("subscription was destroyed; create a new one")
        with self._lock:
            taken = self._take_locked(max_count)
            if not taken:
                return []
            leases = self._leases(taken)
        if faults.ARMED:
            faults.hit("take.after")
        if views:
            received = self._view_of
            if len(leases) == 1:  # the usual take: no comprehension (a frame of its own)
                return [received(leases[0])]
            return [received(lease) for lease in leases]
        return leases

    def view_as(self, msg_type) -> None:
        """Make ``take(n, views=True)``, and ``take_views(n)`` (the same, one call fewer),
        hand out read-only views of ``msg_type`` (a
        :class:`~agnoshm.msg.message.MessageType`): its subscription's type."""
        self._view_of = msg_type.received
        self.take_views = functools.partial(self._take, True)

    def _take_locked(self, max_count: int) -> list[tuple]:
        """Find, hold and check up to ``max_count`` new messages (own lock held): ring.py's
        steps (1)-(5).  :class:`~agnoshm.transport.native_ports.NativeSubscriberPort`
        does them in C."""
        words, memory = self._words, self._memory
        if words[self._generation_word] != self._generation:
            self._refresh_channels()
        capacity, depth = self._capacity, self.depth
        found = []
        for channel in self._channels:
            head = words[channel.head_word]
            if head <= channel.cursor:
                continue
            if not TOTAL_STORE_ORDER:  # x86-64 keeps loads in order: no call
                load_fence()  # (1): the log and entries after head
            first = channel.cursor + 1  # max(that, head - depth + 1, head - capacity + 1)
            if head - depth >= first:
                first = head - depth + 1
            if head - capacity >= first:
                first = head - capacity + 1
            log, entries = channel.log_word, channel.entries
            for seq in range(first, head + 1):
                word = words[log + seq % capacity]
                if word >> L.LOG_SHIFT != seq:
                    continue  # overwritten: it left the depth
                entry = word & _ENTRY_MASK
                if entry >= capacity:
                    continue  # a scribbled log word: no entry of this channel
                e = _ENTRY.unpack_from(memory, entries + entry * _ENTRY_SIZE)  # (2)
                if e[0] == seq:
                    found.append((e[3], seq, channel, entry, e[1], e[2]))
            channel.cursor = head
        if not found:
            return []
        if len(found) > 1 and len(self._channels) > 1:
            found.sort(key=_by_time)  # several publishers: publish order
        window = found[-depth:]
        if len(window) > max_count:  # the rest stays new for the next take
            for item in window[max_count:]:
                channel = item[2]
                if channel.cursor >= item[1]:
                    channel.cursor = item[1] - 1
            window = window[:max_count]
        for item in window:  # (3)
            hold = item[2].holds + item[3]
            count = memory[hold]
            if count < 255:  # (a count another process scribbled on stays where it is)
                memory[hold] = count + 1
        if faults.ARMED:
            faults.hit("take.claimed")
        full_fence()  # (4)
        taken = []
        for item in window:  # (5)
            channel, entry = item[2], item[3]
            if (words[(channel.entries + entry * _ENTRY_SIZE) >> 3] == item[1]
                    and words[channel.ident_word] == channel.ident):
                taken.append(item)
            else:  # withdrawn meanwhile: it left the depth
                _drop_hold(memory, channel.holds + entry)
        if faults.ARMED:
            faults.hit("take.inside")
        for channel in self._channels:  # _publish_cursors, inline: every take does it
            words[channel.cursor_word] = channel.cursor
        if taken:
            self.held += len(taken)
            self._received += len(taken)
            self._words32[self._held_word] = self.held
            words[self._received_word] = self._received
        return taken

    def _publish_cursors(self) -> None:
        """Say how far this subscription read each publisher (publishers linger on it)."""
        words = self._words
        for channel in self._channels:
            words[channel.cursor_word] = channel.cursor

    def _leases(self, taken: list) -> list[Lease]:
        peers = self.runtime.peers
        leases = []
        for _stamp, seq, channel, entry, address, size in taken:
            hold = channel.holds + entry
            mapping = peers.acquire(channel.slot, channel.incarnation)
            lease = Lease(self, channel.publisher, hold, seq, mapping, address, size, _stamp)
            if mapping is None:  # the publisher is gone: its message went with it
                lease.release()
                continue
            pool = mapping.pool  # pool.contains(address, max(size, 1)), inline:
            if not pool.address <= address <= pool.address + pool.size - (size or 1):
                # The entry points outside its publisher's pool: a corrupted or hostile
                # registry.  Never build a view over it; drop it and count it.
                self.corrupted += 1
                lease.release()
                continue
            leases.append(lease)
        return leases

    def _refresh_channels(self, starts: dict | None = None) -> None:
        """Re-read the topic's publishers (its ``generation`` moved).  A publisher the
        registry listed with this subscription is read from where ``starts`` says (see
        ``Registry.add_subscription``); one that came later, from its first message."""
        registry = self._registry
        words = self._words
        self._generation = words[self._generation_word]  # before the lists (ring.py)
        known = {(c.position, c.ident): c for c in self._channels}
        channels = []
        own_slot = self.runtime.slot
        for p in registry.publisher_indices(self.topic_index):
            r = registry.publishers[p]
            if r.state != L.USED or (self.ignore_local and r.process == own_slot):
                continue
            if not 0 <= r.position < registry.header.max_publishers_per_topic:
                continue  # a scribbled record: not a place in any receipts
            channel = _Channel(registry, p, r, self._holds, self._cursor_words)
            key = (channel.position, channel.ident)
            old = known.get(key)
            if old is not None:
                channel = old
            elif starts:
                channel.cursor = starts.get(key, 0)
            channels.append(channel)
        self._channels = channels
        self._publish_cursors()

    def release(self, lease: Lease) -> None:
        """Take back this subscription's hold on ``lease``'s message."""
        if self.runtime.closed:
            return
        with self._lock:
            held = self._drop(lease.hold)
        mapping = lease.mapping
        if mapping is not None:  # None: the publisher was gone before it was mapped
            mapping.uncount()
        if self.destroyed and held == 0:
            self._drained()

    def _drained(self) -> None:
        """The last message this destroyed subscription held was released: unlist it."""
        registry = self._registry
        if registry.lock.held_here():  # a collection inside a registry update
            self.runtime.drained.add(self)  # the listener unlists it
        else:
            registry.finish_draining(self.index)

    def _drop(self, hold: int) -> int:
        """Take back one hold, at ``hold`` in the receipts (own lock held); return how many
        this subscription still holds."""
        memory = self._memory
        count = memory[hold]
        if count:
            memory[hold] = count - 1
        if faults.ARMED:
            faults.hit("release.inside")
        self.held = held = self.held - 1
        if self._words[self._incarnation_word] == self.incarnation:  # still our record
            self._words32[self._held_word] = held
        return held

    def destroy(self) -> None:
        if not self.destroyed:
            self.destroyed = True
            with self._lock:
                self.record.held = self.held
            self.runtime.registry.remove_subscription(self.index)


def _drop_hold(memory, hold: int) -> None:
    count = memory[hold]
    if count:
        TOTAL_STORE_ORDER or full_fence()  # the message's reads before it (ring.py, Release)
        memory[hold] = count - 1


def _by_time(item):
    return item[0]
