"""Topics and endpoints in the registry: opening topics, adding and removing publishers
and subscriptions, and rmw's durability rule."""

from __future__ import annotations

import contextlib
import ctypes
from typing import Iterable

from agnoshm import faults
from agnoshm.errors import LimitReachedError, TypeMismatchError
from agnoshm.registry import layout as L
from agnoshm.registry.lock import initialize_mutex


def all_transient_local(durabilities: Iterable[int]) -> bool:
    """rmw's rule for what a topic's publishers offer: True if there is a publisher and
    every one is TRANSIENT_LOCAL (a BEST_AVAILABLE subscription then is too)."""
    durabilities = list(durabilities)
    return bool(durabilities) and all(d == L.TRANSIENT_LOCAL for d in durabilities)


class Endpoints:
    """The :class:`Registry`'s topics, publishers and subscriptions."""

    # -- topics ----------------------------------------------------------------------

    def _find_topic_locked(self, name: bytes) -> int:
        for i, t in enumerate(self.topics):
            if t.state == L.USED and t.name == name:
                return i
        return -1

    def find_topic(self, name: str) -> int:
        """Return the index of topic ``name``, or -1."""
        return self._find_topic_locked(name.encode())

    def _open_topic_locked(self, name: str, type_name: str, type_hash: str) -> int:
        """The topic ``name``, opened if new (global lock held).

        As in rclpy (DDS), a topic's type binds only while it has endpoints: one with no
        publisher and no live subscription (draining ones, destroyed while views still
        hold their messages, do not count) takes the type of the next endpoint.

        :raises TypeMismatchError: a live endpoint has another type (or definition).
        """
        i = self._find_topic_locked(name.encode())
        if i >= 0:
            t = self.topics[i]
            if not self._has_endpoints_locked(i):
                with self.topic_lock(i):
                    t.type_name = type_name.encode()
                    t.type_hash = type_hash.encode()
            elif t.type_name.decode() != type_name or t.type_hash.decode() != type_hash:
                raise TypeMismatchError(
                    f"topic {name!r} carries {t.type_name.decode()} ({t.type_hash.decode()}), not "
                    f"{type_name} ({type_hash}): use the same message type (and definition) in "
                    "every publisher and subscription of a topic")
            return i
        for _sweep in range(2):
            for i, t in enumerate(self.topics):
                if t.state == L.FREE:
                    ctypes.memset(ctypes.addressof(t), 0, ctypes.sizeof(t))
                    t.name = name.encode()
                    t.type_name = type_name.encode()
                    t.type_hash = type_hash.encode()
                    initialize_mutex(ctypes.addressof(t) + L.TopicRecord.lock.offset)
                    self._topic_locks.pop(i, None)
                    t.state = L.USED
                    return i
            if not self._free_unused_topics_locked():
                break
        raise LimitReachedError(
            f"registry {self.name} holds {self.header.max_topics} topics already: raise max_topics "
            "(AGNOSHM_MAX_TOPICS) in every process of the domain")

    def _has_endpoints_locked(self, topic: int) -> bool:
        """Whether ``topic`` has a publisher or a subscription that is not draining."""
        return any(self.publishers[p].state == L.USED for p in self.publisher_indices(topic)) \
            or any(self.subscriptions[s].state == L.USED for s in self.subscription_indices(topic))

    @contextlib.contextmanager
    def _topic_freed_on_error(self, topic: int):
        """Free a topic that an endpoint creation opened but could not join."""
        try:
            yield
        except BaseException:
            self._free_topic_if_unused_locked(topic)
            raise

    def _free_unused_topics_locked(self) -> int:
        """Free every topic left without endpoints; return how many (global lock held).

        A process that dies holding the global lock between opening a topic and
        linking its endpoint leaves one behind.  Each is freed under its own lock
        (order: global, topic), so no endpoint change is still inside it.
        """
        freed = 0
        for i, t in enumerate(self.topics):
            if t.state == L.USED and t.n_publishers == 0 and t.n_subscriptions == 0:
                with self.topic_lock(i):
                    if t.n_publishers == 0 and t.n_subscriptions == 0:
                        t.state = L.FREE
                        freed += 1
        return freed

    def _free_topic_if_unused_locked(self, topic: int) -> None:
        t = self.topics[topic]
        if t.n_publishers == 0 and t.n_subscriptions == 0:
            t.state = L.FREE

    def publisher_indices(self, topic: int) -> list[int]:
        """Publisher records listed by ``topic`` (references past the table are ignored:
        the registry is writable by every process of the domain)."""
        n = len(self.publishers)
        return [i - 1 for i in self.topics[topic].publishers if 0 < i <= n]

    def subscription_indices(self, topic: int) -> list[int]:
        n = len(self.subscriptions)
        return [i - 1 for i in self.topics[topic].subscriptions if 0 < i <= n]

    def subscriber_slots(self, topic: int) -> list[int]:
        """Distinct process slots with a receiving subscription on ``topic``."""
        return sorted({self.subscriptions[i].process for i in self.subscription_indices(topic)
                       if self.subscriptions[i].state == L.USED})

    # -- adding endpoints --------------------------------------------------------------

    def add_publisher(self, topic_name: str, type_name: str, type_hash: str, depth: int,
                      durability: int, node_name: str) -> tuple[int, int]:
        """Register a publisher of this process; return ``(publisher, topic)`` indices."""
        if depth > self.header.max_entries:
            raise LimitReachedError(
                f"depth {depth} exceeds the {self.header.max_entries} live messages a publisher may "
                "have: lower the depth or raise max_entries (AGNOSHM_MAX_ENTRIES)")

        def fill(r, index: int, pos: int, _topic: int) -> None:
            offset = self.channel_offset(index)
            self._commit(offset, self.channel_size, f"the channel of publisher {index}")
            ctypes.memset(self.address + offset, 0, self.channel_size)
            self.header.incarnations += 1
            self.channel(index).start.ident = self.header.incarnations  # unique per publisher
            # rmw: a publisher offers the most
            r.durability = L.TRANSIENT_LOCAL if durability == L.BEST_AVAILABLE else durability
            r.position = pos

        return self._add_endpoint("publishers", topic_name, type_name, type_hash, depth,
                                  node_name, fill, "publisher.registered")

    def add_subscription(self, topic_name: str, type_name: str, type_hash: str, depth: int,
                         durability: int, node_name: str,
                         starts: dict | None = None) -> tuple[int, int]:
        """Register a subscription of this process; return ``(subscription, topic)`` indices.

        A VOLATILE subscription starts after each publisher's newest message, a
        TRANSIENT_LOCAL one before its oldest retained one.  Both are read under the
        lock that lists the subscription, so every message published once it is
        listed (counted) is delivered.  ``starts`` gets ``(publisher position,
        channel ident) -> the sequence number it starts after``; the receipts' cursors
        too.
        """
        def fill(r, index: int, pos: int, topic: int) -> None:
            offset = self.receipts_offset(index)
            self._commit(offset, self.receipts_size, f"the receipts of subscription {index}")
            ctypes.memset(self.address + offset, 0, self.receipts_size)
            r.durability = durability
            if durability == L.BEST_AVAILABLE:
                r.durability = L.TRANSIENT_LOCAL if all_transient_local(
                    self.publishers[p].durability for p in self.publisher_indices(topic)) \
                    else L.VOLATILE
            r.bit = pos
            cursors = self.receipts(index).cursors
            for p in self.publisher_indices(topic):
                publisher = self.publishers[p]
                if publisher.state != L.USED or not 0 <= publisher.position < len(cursors):
                    continue
                start = self.channel(p).start
                cursor = 0 if r.durability == L.TRANSIENT_LOCAL else start.head
                cursors[publisher.position] = cursor
                if starts is not None:
                    starts[(publisher.position, start.ident)] = cursor

        return self._add_endpoint("subscriptions", topic_name, type_name, type_hash, depth,
                                  node_name, fill, "subscription.registered")

    def _add_endpoint(self, kind: str, topic_name: str, type_name: str, type_hash: str,
                      depth: int, node_name: str, fill, fault: str) -> tuple[int, int]:
        """The steps both endpoint kinds share: open the topic, claim a record and a position
        in the topic's list, write the record (``fill`` adds what is the kind's own), link it.

        ``kind`` names both the registry's table and the topic's list ("publishers" or
        "subscriptions").  The record is written before it is linked, so a process that
        dies in between leaves a record that :meth:`repair` frees.
        """
        with self.lock:
            self._reap_dead_locked()
            topic = self._open_topic_locked(topic_name, type_name, type_hash)
            t = self.topics[topic]
            table, listed = getattr(self, kind), getattr(t, kind)
            with self.topic_lock(topic), self._topic_freed_on_error(topic):
                index = self._claim_record_locked(table, kind, f"max_{kind}")
                pos = self._claim_topic_position(listed, kind, topic_name)
                r = table[index]
                ctypes.memset(ctypes.addressof(r), 0, ctypes.sizeof(r))
                r.topic, r.process, r.depth = topic, self.own_slot, depth
                r.incarnation = self.processes[self.own_slot].incarnation
                r.node_name = node_name.encode()[:L.NODE_NAME_LEN - 1]
                fill(r, index, pos, topic)
                r.state = L.USED
                if faults.ARMED:
                    faults.hit(fault)
                listed[pos] = index + 1
                if kind == "publishers":
                    t.n_publishers += 1
                else:
                    t.n_subscriptions += 1
                t.generation += 1
            self.header.generation += 1
        return index, topic

    def _claim_record_locked(self, table, kind: str, capacity_key: str) -> int:
        for i, r in enumerate(table):
            if r.state == L.FREE:
                return i
        raise LimitReachedError(
            f"registry {self.name} holds {len(table)} {kind} already: raise {capacity_key} "
            f"(AGNOSHM_{capacity_key.upper()}) in every process of the domain")

    @staticmethod
    def _claim_topic_position(array, kind: str, topic_name: str) -> int:
        for pos in range(len(array)):
            if array[pos] == 0:
                return pos
        key = f"max_{kind}_per_topic"
        raise LimitReachedError(
            f"topic {topic_name!r} has {len(array)} {kind} already, the most one "
            f"topic can have: spread them over more topics, or raise {key} "
            f"(AGNOSHM_{key.upper()}) in every process of the domain")

    # -- removing endpoints -------------------------------------------------------------

    def remove_publisher(self, index: int) -> None:
        with self.lock:
            self._remove_publisher_locked(index)

    def _remove_publisher_locked(self, index: int) -> None:
        r = self.publishers[index]
        topic = r.topic
        t = self.topics[topic]
        with self.topic_lock(topic):
            for pos in range(len(t.publishers)):
                if t.publishers[pos] == index + 1:
                    t.publishers[pos] = 0
                    t.n_publishers -= 1
            channel = self.channel(index)
            channel.start.ident = 0  # subscribers that still know it see it is gone
            for e in channel.entries:
                e.seq = 0
            r.state = L.FREE
            t.generation += 1
        self._free_topic_if_unused_locked(topic)
        self.header.generation += 1

    def remove_subscription(self, index: int) -> None:
        """Remove a subscription; while views still hold its messages it only drains."""
        with self.lock:
            self._remove_subscription_locked(index, force=False)

    def _remove_subscription_locked(self, index: int, *, force: bool) -> None:
        r = self.subscriptions[index]
        topic = r.topic
        with self.topic_lock(topic):
            if r.held and not force:
                r.state = L.DRAINING  # keeps its position and receipts until its last view is released
                self.header.generation += 1  # it no longer counts (endpoint_counts)
                return
            self._unlist_subscription_topic_locked(index)
        self._free_topic_if_unused_locked(topic)
        self.header.generation += 1

    def finish_draining(self, index: int) -> None:
        """Unlist a draining subscription whose last view is gone (its process calls it)."""
        with self.lock:
            r = self.subscriptions[index]
            if r.state == L.DRAINING and r.process == self.own_slot:
                topic = r.topic
                with self.topic_lock(topic):
                    self._unlist_subscription_topic_locked(index)
                self._free_topic_if_unused_locked(topic)
                self.header.generation += 1

    def _unlist_subscription_topic_locked(self, index: int) -> None:
        """Drop a subscription from its topic and clear its holds (topic lock held): a
        dead process's holds go with it."""
        r = self.subscriptions[index]
        t = self.topics[r.topic]
        bit = r.bit
        listed = bit < len(t.subscriptions)
        ctypes.memset(self.address + self.receipts_offset(index), 0, self.receipts_size)
        if listed and t.subscriptions[bit] == index + 1:
            t.subscriptions[bit] = 0
            t.n_subscriptions -= 1
        r.state = L.FREE
        t.generation += 1

    # -- relayed endpoints ----------------------------------------------------------------

    def set_relayed(self, kind: str, index: int, count: int | None) -> bool:
        """Make endpoint ``index`` of this process count as ``count`` endpoints beyond a
        bridge (None: as itself again); return whether the count changed.

        A bridge calls it for the agnoshm endpoints it relays through, so that
        :meth:`endpoint_counts` counts the ROS 2 (or Zenoh) endpoints they stand for.

        :param kind: ``"publishers"`` or ``"subscriptions"``.
        :raises ValueError: for an endpoint this process does not own, or a bad count.
        """
        table = getattr(self, kind) if kind in ("publishers", "subscriptions") else None
        if table is None or not 0 <= index < len(table):
            raise ValueError(f"no {kind} record {index}")
        if count is not None and not 0 <= count < 0xFFFFFFFF:
            raise ValueError(f"relayed count {count} is out of range")
        value = L.NOT_RELAYED if count is None else count + 1
        with self.lock:
            r = table[index]
            if r.state != L.USED or r.process != self.own_slot or \
                    r.incarnation != self.processes[self.own_slot].incarnation:
                raise ValueError(f"{kind} record {index} is not an endpoint of this process")
            if r.relayed == value:
                return False
            with self.topic_lock(r.topic):
                r.relayed = value
                self.topics[r.topic].generation += 1
            self.header.generation += 1
        return True
