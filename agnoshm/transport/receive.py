"""The receive path: find new entries, reference them, hand out leases.

A receive delivers, in publish order, the topic's entries newer than the
last one this subscription took, at most ``depth`` of them (the newest).
Under the topic's lock it sets this subscription's bit on each entry it
takes; the owner never reuses a referenced entry.  Outside the lock it makes
sure each publisher's pool is mapped here (by slot incarnation) before
anything dereferences the entry.  A :class:`Lease` clears the bit when the
last Python object derived from the message dies.

Releases of small messages are batched: the lease goes on its port's
``pending`` list and its bit is cleared with the next take (under the lock
that take holds anyway), when :data:`PENDING_MAX` wait, before an executor
sleeps, or by the listener's housekeeping (at most ``Listener.PERIOD`` later).
A message is only ever held longer, never freed early (invariant 3), and a
message with an array over :data:`BATCHED_RELEASE_MAX_BYTES` is released at
once (the view marks its lease ``release_at_once``), so a big frame is never
held for the sake of batching.
"""

from __future__ import annotations

import errno

from agnoshm import faults
from agnoshm.errors import InvalidHandleError
from agnoshm.registry import layout as L

#: A lease whose message has an array larger than this is released at once, not batched.
BATCHED_RELEASE_MAX_BYTES = 64 * 1024
#: A port writes its waiting releases to the registry once this many wait.
PENDING_MAX = 16


class Lease:
    """This subscription's reference on one message; released exactly once."""

    __slots__ = ("port", "publisher", "entry", "seq", "mapping", "address", "size",
                 "timestamp_ns", "release_at_once", "_released", "__weakref__")

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
        self.release_at_once = False  # set by a view over a large array (see the module doc)
        self._released = False

    @property
    def pool(self):
        return self.mapping.pool

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.port.release(self)

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
        self._ahead: list[tuple] = []  # found by the last walk, not yet taken (oldest first)
        self.destroyed = False
        self.corrupted = 0  # entries dropped because they pointed outside their pool
        # Released leases whose bits are not yet cleared in the registry (see the module
        # docstring).  Appended to from any thread; swapped out under the topic lock.
        self.pending: list[tuple] = []  # (publisher, entry, seq, mapping) per lease

    def has_data(self) -> bool:
        """Cheap, lock-free check: has the topic moved past what this subscription took?"""
        return self.topic.seq > self.record.last_seq

    def take(self, max_count: int = 1) -> list[Lease]:
        """Take up to ``max_count`` new messages (oldest first) and reference them."""
        if self.destroyed:
            raise InvalidHandleError("subscription was destroyed; create a new one")
        with self.lock:
            done = self._release_pending_locked() if self.pending else None
            taken = self._take_locked(max_count)
        if done:
            self.runtime.peers.release_all(done)
        if not taken:
            return []
        leases = self._leases(taken)
        if faults.ARMED:
            faults.hit("take.after")
        return leases

    def _take_locked(self, max_count: int) -> list[tuple]:
        """Reference up to ``max_count`` new entries; return what a lease needs of each.

        Finding the oldest new entry means walking each publisher's entries back
        from its newest.  The entries a walk found but this take did not take are
        kept (``_ahead``), so the next take walks only what was published since;
        each is used only if its entry still carries its sequence number (checked
        when it is taken, so a take costs what it takes, not the backlog).
        """
        record = self.record
        topic = self.topic
        last = record.last_seq
        newest = topic.seq
        if newest <= last:
            return []
        if topic.generation != self._generation:
            self._refresh_publishers_locked()  # also forgets _ahead
        ahead = self._ahead
        floor = ahead[-1][0] if ahead else last
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
                if seq <= floor or seq >= upper:
                    break
                found.append((seq, publisher, index - 1, e, slot, incarnation))
                upper = seq
                index = e.prev
                steps += 1
        if len(found) > 1:
            found.sort(key=_by_seq)
        if ahead:
            found = ahead + found  # every new entry is newer than every one ahead
        if not found:
            self._ahead = []
            record.last_seq = newest
            return []
        window = found[-self.depth:]
        word, mask = self._ref_word, self._ref_mask
        taken = []
        position = 0
        # Read each entry's message under the lock: once it is unlocked, a destroyed
        # publisher's record (and entry row) may already serve a new publisher.
        for seq, publisher, index, e, slot, incarnation in window:
            position += 1
            if e.seq != seq or seq <= last:
                continue  # kept from an earlier walk, and reclaimed since
            refs = e.refs
            if not refs[word] & mask:
                refs[word] |= mask
                e.holders += 1
            taken.append((seq, publisher, index, e.address, e.size, e.timestamp_ns, slot,
                          incarnation))
            if len(taken) == max_count:
                break
        self._ahead = window[position:]
        if faults.ARMED:
            faults.hit("take.inside")
        if not taken:
            record.last_seq = newest
            return []
        record.last_seq = taken[-1][0] if self._ahead else newest
        record.held += len(taken)
        record.received += len(taken)
        return taken

    def _leases(self, taken: list) -> list[Lease]:
        peers = self.runtime.peers
        mappings = []
        key = mapping = None
        for item in taken:  # usually one publisher: one lookup
            if (item[6], item[7]) != key:
                key = (item[6], item[7])
                try:
                    mapping = peers.mapping(*key)
                except OSError:
                    mapping = None  # the publisher is gone: its message went with it
            mappings.append(mapping)
        peers.acquire_all([m for m in mappings if m is not None])
        leases = []
        for (seq, publisher, entry, address, size, timestamp_ns, _slot, _incarnation), mapping \
                in zip(taken, mappings):
            lease = Lease(self, publisher, entry, seq, mapping, address, size, timestamp_ns)
            if mapping is None:
                lease.release()
                continue
            if not mapping.pool.contains(address, max(size, 1)):
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
        self._ahead = []
        self._generation = self.topic.generation

    def release(self, lease: Lease) -> None:
        """Give up this subscription's reference on ``lease``'s message (now or batched)."""
        if self.runtime.closed:
            return
        pending = self.pending
        pending.append((lease.publisher, lease.entry, lease.seq, lease.mapping))
        self.runtime.unflushed.add(self)  # after the append: a flush cannot miss it
        if not lease.release_at_once and len(pending) < PENDING_MAX and not self.destroyed:
            return
        self.flush_releases()

    def flush_releases(self) -> None:
        """Clear the registry bits of every pending release (see the module docstring)."""
        if not self.pending or self.runtime.closed:
            return
        try:
            with self.lock:
                done = self._release_pending_locked()
        except OSError as err:
            if err.errno != errno.EDEADLK:
                raise
            # Dropped while this thread holds the topic lock: the next pass does it.
            self.runtime.unflushed.add(self)
            return
        self.runtime.peers.release_all(done)

    def _release_pending_locked(self) -> list:
        """Clear the bits of the pending leases; return their mappings (topic lock held)."""
        pending, self.pending = self.pending, []
        record = self.record
        mappings = [p[3] for p in pending if p[3] is not None]
        if record.state == L.FREE or record.incarnation != self.incarnation:
            return mappings
        registry = self.runtime.registry
        publishers = registry.publishers
        topic = self.topic_index
        bit = self.bit
        for publisher, entry, seq, _mapping in pending:
            e = registry.entries_of(publisher)[entry]
            # Publisher records are reused across topics, whose seqs both start at
            # 1: the entry is ours only if its record still belongs to our topic.
            if e.seq == seq and publishers[publisher].topic == topic:
                L.clear_ref(e, bit)
            if faults.ARMED:
                faults.hit("release.inside")
            record.held -= 1
        if record.state == L.DRAINING and record.held == 0:
            registry._unlist_subscription_topic_locked(self.index)
        return mappings

    def destroy(self) -> None:
        if not self.destroyed:
            self.destroyed = True
            self.flush_releases()
            self.runtime.registry.remove_subscription(self.index)


def _by_seq(item):
    return item[0]
