"""The receive path: find new entries, reference them, hand out leases.

A receive delivers, in publish order, the topic's entries newer than the
last one this subscription took, at most ``depth`` of them (the newest).
Under the topic's lock it sets this subscription's bit on each entry it
takes; the owner never reuses a referenced entry.  Outside the lock it makes
sure each publisher's pool is mapped here (by slot incarnation) before
anything dereferences the entry.  A :class:`Lease` clears the bit when the
last Python object derived from the message dies.
"""

from __future__ import annotations

import errno

from agnoshm import faults
from agnoshm.errors import InvalidHandleError
from agnoshm.registry import layout as L


class Lease:
    """This subscription's reference on one message; released exactly once."""

    __slots__ = ("port", "publisher", "entry", "seq", "mapping", "address", "size",
                 "timestamp_ns", "_released", "__weakref__")

    def __init__(self, port, publisher: int, entry: int, seq: int, mapping, address: int,
                 size: int, timestamp_ns: int):
        self.port = port
        self.publisher = publisher
        self.entry = entry
        self.seq = seq
        self.mapping = mapping
        self.address = address
        self.size = size
        self.timestamp_ns = timestamp_ns
        self._released = False

    @property
    def pool(self):
        return self.mapping.pool

    def release(self) -> None:
        if not self._released:
            self._released = True
            try:
                self.port.release(self)
            except OSError as err:
                if err.errno != errno.EDEADLK:
                    raise
                # Dropped (e.g. by the cyclic GC) while this thread holds the topic
                # lock: the listener thread releases it on its next pass.
                self.port.runtime.deferred_releases.append(self)

    def __del__(self):
        try:
            self.release()
        except Exception:  # interpreter shutdown or runtime gone: nothing left to release
            pass


class SubscriberPort:
    """The data-plane side of one subscription.

    .. warning:: Users do not create ports; ``Node.create_subscription`` does.
    """

    def __init__(self, runtime, index: int, topic: int, depth: int):
        registry = runtime.registry
        self.runtime = runtime
        self.index = index
        self.depth = depth
        self.record = registry.subscriptions[index]
        self.incarnation = self.record.incarnation
        self.bit = self.record.bit  # its position in the topic: its bit in Entry.refs
        self._ref_word, self._ref_mask = L.ref_word_and_mask(self.bit)
        self.topic = registry.topics[topic]
        self.topic_index = topic
        self.lock = registry.topic_lock(topic)
        self._generation = -1
        self._publishers: list[tuple] = []
        self.destroyed = False
        self.corrupted = 0  # entries dropped because they pointed outside their pool

    def has_data(self) -> bool:
        """Cheap, lock-free check: has the topic moved past what this subscription took?"""
        return self.topic.seq > self.record.last_seq

    def take(self, max_count: int = 1) -> list[Lease]:
        """Take up to ``max_count`` new messages (oldest first) and reference them."""
        if self.destroyed:
            raise InvalidHandleError("subscription was destroyed; create a new one")
        record = self.record
        topic = self.topic
        with self.lock:
            last = record.last_seq
            newest = topic.seq
            if newest <= last:
                return []
            if topic.generation != self._generation:
                self._refresh_publishers_locked()
            found = []
            for publisher, entries, pub_record, slot, incarnation, depth in self._publishers:
                index = pub_record.newest
                upper = newest + 1
                steps = 0
                while index and steps < depth:
                    if index > len(entries):
                        break  # a corrupted link: nothing past the row is an entry
                    e = entries[index - 1]
                    seq = e.seq
                    if seq <= last or seq >= upper:
                        break
                    found.append((seq, publisher, index - 1, e, slot, incarnation))
                    upper = seq
                    index = e.prev
                    steps += 1
            if not found:
                record.last_seq = newest
                return []
            found.sort(key=_by_seq)
            taken = found[-self.depth:][:max_count]
            word, mask = self._ref_word, self._ref_mask
            # Read each entry's message under the lock: once it is unlocked, a destroyed
            # publisher's record (and entry row) may already serve a new publisher.
            for i, (seq, publisher, index, e, slot, incarnation) in enumerate(taken):
                refs = e.refs
                if not refs[word] & mask:
                    refs[word] |= mask
                    e.holders += 1
                taken[i] = (seq, publisher, index, e.address, e.size, e.timestamp_ns, slot,
                            incarnation)
            if faults.ARMED:
                faults.hit("take.inside")
            record.last_seq = taken[-1][0] if len(taken) < len(found[-self.depth:]) else newest
            record.held += len(taken)
            record.received += len(taken)
        leases = self._leases(taken)
        if faults.ARMED:
            faults.hit("take.after")
        return leases

    def _leases(self, taken: list) -> list[Lease]:
        peers = self.runtime.peers
        leases = []
        for seq, publisher, entry, address, size, timestamp_ns, slot, incarnation in taken:
            lease = Lease(self, publisher, entry, seq, None, address, size, timestamp_ns)
            try:
                lease.mapping = peers.mapping(slot, incarnation)
            except OSError:
                lease.release()  # the publisher is gone: its message went with it
                continue
            peers.acquire(lease.mapping)
            if not lease.mapping.pool.contains(lease.address, max(lease.size, 1)):
                # The entry points outside its publisher's pool: a corrupted or hostile
                # registry.  Never build a view over it; drop it and count it.
                self.corrupted += 1
                lease.release()
                continue
            leases.append(lease)
        return leases

    def _refresh_publishers_locked(self) -> None:
        registry = self.runtime.registry
        publishers = []
        for p in registry.publisher_indices(self.topic_index):
            r = registry.publishers[p]
            if r.state == L.USED:
                publishers.append((p, registry.entries_of(p), r, r.process, r.incarnation, r.depth))
        self._publishers = publishers
        self._generation = self.topic.generation

    def release(self, lease: Lease) -> None:
        runtime = self.runtime
        if runtime.closed:
            return
        record = self.record
        with self.lock:
            if record.state != L.FREE and record.incarnation == self.incarnation:
                registry = runtime.registry
                e = registry.entries_of(lease.publisher)[lease.entry]
                # Publisher records are reused across topics, whose seqs both start at
                # 1: the entry is ours only if its record still belongs to our topic.
                if (e.seq == lease.seq
                        and registry.publishers[lease.publisher].topic == self.topic_index):
                    L.clear_ref(e, self.bit)
                if faults.ARMED:
                    faults.hit("release.inside")
                record.held -= 1
                if record.state == L.DRAINING and record.held == 0:
                    runtime.registry._unlist_subscription_topic_locked(self.index)
        if lease.mapping is not None:
            runtime.peers.release(lease.mapping)

    def destroy(self) -> None:
        if not self.destroyed:
            self.destroyed = True
            self.runtime.registry.remove_subscription(self.index)


def _by_seq(item):
    return item[0]
