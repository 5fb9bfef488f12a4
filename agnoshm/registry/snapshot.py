"""The registry's read API: what integrations (``cli/``, ``bag/``, ``ros/``, ``bench/``,
``node.py``) may know of a domain's registry, as plain dataclasses.

Two readers return the same dataclasses:

* :class:`RegistryFile` reads a registry without joining its domain (``agnoshm
  topic``, ``node``, ``doctor``, ``clean``): it opens the object ``O_RDONLY``, maps it
  ``PROT_READ`` and copies the records in use.  It never creates a registry, never
  takes a lock and never writes.  Records are read without the registry's locks: a
  snapshot taken while processes come and go may be slightly out of date, never
  harmful.
* :class:`Reads` (part of :class:`~agnoshm.registry.registry.Registry`) answers a
  process that has joined: a topic, every topic, endpoint counts, a publisher's node.

Integrations never read the registry's bytes or its layout themselves.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
from dataclasses import dataclass, field

from agnoshm.memory import BACKEND_CODES
from agnoshm.names import pool_name, queue_name
from agnoshm.registry import layout as L
from agnoshm.registry import liveness
from agnoshm.registry.endpoints import all_transient_local
from agnoshm.registry.opening import read_header as _read_raw_header
from agnoshm.registry.opening import validate_header

DURABILITY_NAMES = {L.TRANSIENT_LOCAL: "TRANSIENT_LOCAL", L.VOLATILE: "VOLATILE"}
_DURABILITY_CODES = {name: code for code, name in DURABILITY_NAMES.items()}
CAPACITIES = ("max_processes", "max_topics", "max_publishers", "max_subscriptions",
              "max_entries", *L.PER_TOPIC_CAPACITIES)


def transient_local(publishers) -> bool:
    """rmw's rule (:func:`~agnoshm.registry.endpoints.all_transient_local`) over
    :class:`Publisher` s: there is one and every one offers TRANSIENT_LOCAL."""
    return all_transient_local(_DURABILITY_CODES.get(p.durability) for p in publishers)


@dataclass
class Process:
    """One process registered in the domain; ``slot`` is also its pool slot."""

    slot: int
    pid: int
    name: str
    start_time: int
    incarnation: int
    backend: str
    uid: int
    pool_address: int
    pool_size: int
    alive: bool

    @property
    def pool_name(self) -> str:
        """``/agnocast@<pid>`` (a shm object, or the memfd's name)."""
        return pool_name(self.pid)

    @property
    def queue_name(self) -> str:
        return queue_name(self.pid)


@dataclass
class Entry:
    """One live message of a publisher."""

    seq: int
    address: int
    size: int
    timestamp_ns: int
    refs: int  # bit i: the subscription at position i of the topic holds it


@dataclass
class Endpoint:
    """What publishers and subscriptions share; ``process`` is None in a joined process's
    reads (and for a free slot)."""

    index: int
    topic: str
    node_name: str
    depth: int
    durability: str
    process: Process | None


@dataclass
class Publisher(Endpoint):
    published: int
    entries: list[Entry] = field(default_factory=list)  # live ones, oldest first


@dataclass
class Subscription(Endpoint):
    bit: int
    received: int
    held: int
    draining: bool  # destroyed, kept only while views still hold its messages


@dataclass
class Topic:
    index: int
    name: str
    type_name: str
    type_hash: str
    published: int  # messages its publishers published
    publishers: list[Publisher] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)

    @property
    def transient_local(self) -> bool:
        """Whether it has publishers and all offer TRANSIENT_LOCAL."""
        return transient_local(self.publishers)


@dataclass
class Node:
    """A node as the registry sees it: the endpoints created under one fully qualified name
    in one process (nodes without endpoints leave no trace in the registry)."""

    name: str
    process: Process | None
    publishers: list[Publisher] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)


@dataclass
class Snapshot:
    """Everything the registry of ``domain_id`` held when it was read."""

    domain_id: int
    path: str
    layout_version: int
    state: int
    capacities: dict[str, int]
    base_address: int
    pool_size: int
    live_processes: int
    reaped: int
    repairs: int
    processes: list[Process]
    topics: list[Topic]

    def find_topic(self, name: str) -> Topic | None:
        """The topic called ``name`` (fully qualified), or None."""
        return next((t for t in self.topics if t.name == name), None)

    def nodes(self) -> list[Node]:
        """Nodes by name then pid; a name used in two processes gives two nodes."""
        found: dict[tuple[str, int], Node] = {}
        for t in self.topics:
            for e in t.publishers + t.subscriptions:
                key = (e.node_name, e.process.slot if e.process else -1)
                node = found.get(key)
                if node is None:
                    node = found[key] = Node(e.node_name, e.process)
                (node.publishers if isinstance(e, Publisher) else node.subscriptions).append(e)
        return sorted(found.values(), key=lambda n: (n.name, n.process.pid if n.process else 0))


# -- reading without joining ------------------------------------------------------------


def read_header(fd: int, where: str) -> L.Header:
    """The validated header of the registry open at ``fd`` (zeros, magic 0, while its
    creator has not finished it).

    :raises RegistryVersionError: for another layout version.
    :raises RegistryCorruptedError: for no agnoshm magic, bad capacities or a short object.
    """
    header = _read_raw_header(fd)
    if header.magic != 0:
        validate_header(header, os.fstat(fd).st_size, where, joining=False)
    return header


def read_processes(fd: int, header: L.Header) -> list[Process]:
    """Every registered process of the registry open at ``fd``, with its liveness."""
    off = L.Offsets(header)
    size = ctypes.sizeof(L.ProcessRecord)
    raw = os.pread(fd, size * header.max_processes, off.processes)
    processes = []
    for slot in range(len(raw) // size):
        p = L.ProcessRecord.from_buffer_copy(raw, slot * size)
        if p.state != L.FREE:
            processes.append(_process(fd, slot, p))
    return processes


def _process(fd: int, slot: int, p: L.ProcessRecord) -> Process:
    backend = BACKEND_CODES.get(p.backend)
    return Process(slot, p.pid, _text(p.name), p.start_time, p.incarnation,
                   backend.name if backend is not None else str(p.backend), p.uid,
                   p.pool_address, p.pool_size, liveness.is_alive(fd, slot, p.pid, p.start_time))


class RegistryFile:
    """A registry opened read-only by path; its header is validated once, here.

    :raises FileNotFoundError: if there is no such registry.
    :raises PermissionError: if this user may not read it.
    :raises RegistryVersionError: for another layout version.
    :raises RegistryCorruptedError: for no agnoshm registry, or an inconsistent one.
    """

    _fd = -1

    def __init__(self, path: str):
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.header = read_header(self._fd, path)
        except BaseException:
            self.close()
            raise

    @property
    def initialized(self) -> bool:
        """False while its creator has not finished the header (or died before)."""
        return self.header.magic != 0

    @property
    def closed(self) -> bool:
        """True if its last process closed it (and maybe died before unlinking it)."""
        return self.header.state == L.REGISTRY_CLOSED

    def being_created(self) -> bool:
        """Whether a creator is writing the header right now (it holds the init lock)."""
        return liveness.byte_is_locked(self._fd, L.INIT_LOCK_BYTE)

    def modified(self) -> float:
        """When the object was last written (``st_mtime``)."""
        return os.fstat(self._fd).st_mtime

    def processes(self) -> list[Process]:
        return read_processes(self._fd, self.header)

    def snapshot(self) -> Snapshot:
        """Copy every record in use (the header must be :attr:`initialized`)."""
        header, off = self.header, L.Offsets(self.header)
        with mmap.mmap(self._fd, off.total_size, mmap.MAP_SHARED, mmap.PROT_READ) as mm:
            processes = read_processes(self._fd, header)
            by_slot = {p.slot: p for p in processes}
            publishers = dict(_used(mm, off.publishers, L.PublisherRecord, header.max_publishers))
            subscriptions = dict(_used(mm, off.subscriptions, L.SubscriptionRecord,
                                       header.max_subscriptions))
            channel_size = ctypes.sizeof(off.channel)
            receipts_size = ctypes.sizeof(off.receipt)

            def channel(publisher: int):
                return off.channel.from_buffer_copy(mm, off.channels + publisher * channel_size)

            def receipts(subscription: int):
                return off.receipt.from_buffer_copy(mm, off.receipts + subscription * receipts_size)

            entries = _entries_reader(channel, receipts, header.max_entries)

            topics = [_topic(index, t, publishers.get, subscriptions.get, by_slot.get, entries)
                      for index, t in _used(mm, off.topics, off.topic_record, header.max_topics)]
        return Snapshot(
            domain_id=header.domain_id, path=self.path, layout_version=header.layout_version,
            state=header.state, capacities={k: getattr(header, k) for k in CAPACITIES},
            base_address=header.base_address, pool_size=header.pool_size,
            live_processes=header.live_processes, reaped=header.reaped, repairs=header.repairs,
            processes=processes, topics=sorted(topics, key=lambda t: t.name))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RegistryFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _entries_reader(channel, receipts, max_entries: int):
    """``entries(publisher, position, subscriptions)``: the live entries of publisher record
    ``publisher`` at ``position`` in its topic, with the subscriptions (``(bit, record
    index)`` pairs) holding each, read from channel and receipts copies."""
    def entries(publisher: int, position: int, subscriptions) -> list[Entry]:
        found = channel(publisher).entries
        holds = [(bit, receipts(sub).holds) for bit, sub in subscriptions]
        base = position * max_entries
        live = []
        for index, e in enumerate(found):
            if e.seq:
                refs = sum(1 << bit for bit, h in holds if h[base + index])
                live.append(Entry(e.seq, e.address, e.size, e.timestamp_ns, refs))
        return sorted(live, key=lambda e: e.seq)
    return entries


def _used(mm, offset: int, record, count: int):
    """``(index, record copy)`` of every record whose state (its first u32) is not FREE."""
    size = ctypes.sizeof(record)
    for i in range(count):
        if struct.unpack_from("<I", mm, offset + i * size)[0] != L.FREE:
            yield i, record.from_buffer_copy(mm, offset + i * size)


def _topic(index: int, t, publisher, subscription, process, entries) -> Topic:
    """A :class:`Topic` from topic record ``t`` number ``index``.

    :param publisher: record index -> the publisher record in use, or None (so
        for ``subscription``); references to records of another topic are skipped.
    :param process: slot -> :class:`Process` or None.
    :param entries: ``(publisher index, its position, subscriptions)`` -> its live entries
        (see :func:`_entries_reader`).
    """
    topic = Topic(index, _text(t.name), _text(t.type_name), _text(t.type_hash), 0)
    listed = []
    for pos, ref in enumerate(t.subscriptions):
        r = subscription(ref - 1) if ref else None
        if r is None or r.topic != index:
            continue
        listed.append((pos, ref - 1))
        topic.subscriptions.append(Subscription(
            ref - 1, topic.name, _text(r.node_name), r.depth, _durability(r.durability),
            process(r.process), pos, r.received, r.held, r.state == L.DRAINING))
    for pos, ref in enumerate(t.publishers):
        r = publisher(ref - 1) if ref else None
        if r is None or r.topic != index:
            continue
        topic.publishers.append(Publisher(
            ref - 1, topic.name, _text(r.node_name), r.depth, _durability(r.durability),
            process(r.process), r.published, entries(ref - 1, pos, listed)))
        topic.published += r.published
    return topic


def _durability(code: int) -> str:
    return DURABILITY_NAMES.get(code, str(code))


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


# -- reading in a joined process ----------------------------------------------------------


class Reads:
    """What a joined process may read of its :class:`Registry` (no entries, no processes:
    the records' ``process`` is None)."""

    def read_topic(self, name: str) -> Topic | None:
        """Topic ``name`` (fully qualified) with its endpoints, or None if there is none.

        Read without the global lock, like :meth:`endpoint_counts`.
        """
        index = self.find_topic(name)
        return None if index < 0 else self._read_topic(index)

    def read_topics(self) -> list[Topic]:
        """Every topic with its endpoints, read under the global lock."""
        with self.lock:
            return [self._read_topic(i) for i, t in enumerate(self.topics)
                    if t.state == L.USED]

    def endpoint_counts(self, name: str) -> tuple[int, int]:
        """``(publishers, subscriptions)`` of topic ``name``; ``(0, 0)`` for a topic that does
        not exist.

        A draining subscription (destroyed, its views still held) does not count; a bridge's
        endpoint counts as the endpoints it relays (``relayed``, set by
        :meth:`~agnoshm.registry.endpoints.Endpoints.set_relayed`), not as itself.  Read
        without the global lock: while endpoints come and go the answer may lag, never harm.
        """
        index = self.find_topic(name)
        if index < 0:
            return 0, 0
        publishers, subscriptions = self.publishers, self.subscriptions
        return (sum(_weight(publishers[i]) for i in self.publisher_indices(index)),
                sum(_weight(subscriptions[i]) for i in self.subscription_indices(index)))

    def generation(self) -> int:
        """A number that changes whenever a process, topic or endpoint comes or goes (or a
        bridge's relayed count changes): a cheap test whether counts may have changed."""
        return self.header.generation

    def publisher_node_name(self, index: int) -> str:
        """The fully qualified node name of publisher record ``index`` (e.g. the one a
        received message names)."""
        return self.publishers[index].node_name.decode(errors="replace")

    def _read_topic(self, index: int) -> Topic:
        def used(table):
            n = len(table)
            return lambda i: table[i] if 0 <= i < n and table[i].state != L.FREE else None

        return _topic(index, self.topics[index], used(self.publishers),
                      used(self.subscriptions), lambda _slot: None,
                      lambda _pub, _pos, _subs: [])


def _weight(record) -> int:
    """What one endpoint record adds to :meth:`Reads.endpoint_counts`."""
    if record.state != L.USED:
        return 0
    return 1 if record.relayed == L.NOT_RELAYED else record.relayed - 1
