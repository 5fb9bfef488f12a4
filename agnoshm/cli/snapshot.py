"""A read-only snapshot of one domain's registry, as plain dataclasses.

``agnoshm topic``, ``node``, ``doctor`` and ``clean`` read the registry
through :func:`read`: it opens ``/dev/shm/agnoshm-registry-domain<id>``
``O_RDONLY``, maps it ``PROT_READ`` and copies the records in use.  It never
creates a registry, never takes a lock and never writes, so it can neither
disturb running processes nor leave anything behind.  Records are read without
the registry's locks: a snapshot taken while processes come and go may be
slightly out of date, never harmful.
"""

from __future__ import annotations

import ctypes
import difflib
import mmap
import os
import struct
from dataclasses import dataclass, field

from agnoshm.cli import CommandError
from agnoshm.errors import RegistryCorruptedError, RegistryVersionError
from agnoshm.memory import BACKEND_CODES
from agnoshm.names import SHM_DIR, pool_name, queue_name, registry_name
from agnoshm.registry import layout as L
from agnoshm.registry import liveness

DURABILITY_NAMES = {L.TRANSIENT_LOCAL: "TRANSIENT_LOCAL", L.VOLATILE: "VOLATILE"}


class NoRegistryError(CommandError):
    """Raised when the domain has no registry, i.e. no agnoshm process runs in it."""

    exit_code = 1


class NotFoundError(CommandError):
    """Raised for a topic or node that the registry does not know."""

    exit_code = 1


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
class Publisher:
    index: int
    topic: str
    node_name: str
    depth: int
    durability: str
    process: Process | None
    published: int
    entries: list[Entry] = field(default_factory=list)  # live ones, oldest first


@dataclass
class Subscription:
    index: int
    topic: str
    node_name: str
    depth: int
    durability: str
    process: Process | None
    bit: int
    last_seq: int
    received: int
    held: int
    draining: bool  # destroyed, kept only while views still hold its messages


@dataclass
class Topic:
    index: int
    name: str
    type_name: str
    type_hash: str
    seq: int
    publishers: list[Publisher] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)


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

    def topic(self, name: str) -> Topic:
        """The topic called ``name`` (a relative name is taken from the root namespace).

        :raises NotFoundError: if there is none; the message names close matches.
        """
        name = normalize_topic(name)
        for t in self.topics:
            if t.name == name:
                return t
        raise NotFoundError(_unknown("topic", name, [t.name for t in self.topics],
                                     self.domain_id, "agnoshm topic list"))

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

    def node(self, name: str) -> list[Node]:
        """Every node called ``name`` (usually one).

        :raises NotFoundError: if there is none.
        """
        name = name if name.startswith("/") else "/" + name
        nodes = [n for n in self.nodes() if n.name == name]
        if not nodes:
            raise NotFoundError(_unknown("node", name, sorted({n.name for n in self.nodes()}),
                                         self.domain_id, "agnoshm node list"))
        return nodes


def normalize_topic(name: str) -> str:
    """``chatter`` -> ``/chatter`` (the CLI resolves relative names against the root)."""
    name = name.strip()
    return name if name.startswith("/") else "/" + name


def _unknown(kind: str, name: str, known: list[str], domain_id: int, hint: str) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    text = f"unknown {kind} {name!r} in ROS domain {domain_id}"
    if close:
        text += f"; did you mean {' or '.join(close)}?"
    elif known:
        text += f"; `{hint}` shows the {len(known)} there are"
    else:
        text += f"; there is no {kind} at all"
    return text


def domain_id() -> int:
    """This process's ROS domain (``ROS_DOMAIN_ID``, default 0)."""
    from agnoshm.config import load_config

    return load_config().domain_id


def registry_path(domain: int) -> str:
    return SHM_DIR + registry_name(domain)


def read(domain: int | None = None) -> Snapshot:
    """Read the registry of ``domain`` (default: ``ROS_DOMAIN_ID``) without joining it.

    :raises NoRegistryError: if the domain has no registry (no agnoshm process runs there).
    :raises RegistryVersionError: if another agnoshm layout version created it.
    :raises RegistryCorruptedError: if it holds no agnoshm registry.
    """
    domain = domain_id() if domain is None else domain
    path = registry_path(domain)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NoRegistryError(f"no agnoshm processes in ROS domain {domain} "
                              f"({path} does not exist)") from None
    except PermissionError:
        raise CommandError(f"may not read {path} (uid {os.getuid()}): run as the user of the "
                           "agnoshm processes, or configure a shared group (AGNOSHM_GROUP)") from None
    try:
        return _read_fd(fd, domain, path)
    finally:
        os.close(fd)


def read_header(fd: int, path: str) -> L.Header:
    """The header of the registry open at ``fd`` (zeros if it is shorter).

    :raises RegistryVersionError: for another layout version.
    :raises RegistryCorruptedError: for no agnoshm magic.
    """
    raw = os.pread(fd, ctypes.sizeof(L.Header), 0).ljust(ctypes.sizeof(L.Header), b"\0")
    header = L.Header.from_buffer_copy(raw)
    if header.magic == 0:
        return header
    if header.magic != L.MAGIC:
        raise RegistryCorruptedError(
            f"{path} is not an agnoshm registry (magic 0x{header.magic:016x}): another program "
            "uses this name, or it was overwritten; remove it when no agnoshm process runs "
            "(agnoshm clean)")
    if header.layout_version != L.LAYOUT_VERSION:
        raise RegistryVersionError(
            f"{path} has registry layout version {header.layout_version}, this agnoshm reads "
            f"version {L.LAYOUT_VERSION}: use the agnoshm version that the processes of ROS "
            f"domain {header.domain_id} run")
    bad = L.bad_per_topic_capacity(header)
    if bad:
        raise RegistryCorruptedError(f"{path} header is corrupted ({bad}): remove it when no "
                                     "agnoshm process runs (agnoshm clean)")
    return header


def _read_fd(fd: int, domain: int, path: str) -> Snapshot:
    header = read_header(fd, path)
    if header.magic == 0:
        raise NoRegistryError(f"no agnoshm processes in ROS domain {domain} "
                              f"({path} is still being created)")
    size = os.fstat(fd).st_size
    off = L.Offsets(header)
    if size < off.total_size:
        raise RegistryCorruptedError(f"{path} holds {size} bytes, its header needs "
                                     f"{off.total_size}: remove it with agnoshm clean")
    with mmap.mmap(fd, off.total_size, mmap.MAP_SHARED, mmap.PROT_READ) as mm:
        processes = _read_processes(mm, fd, off, header)
        by_slot = {p.slot: p for p in processes}
        publishers = {i: r for i, r in _used(mm, off.publishers, L.PublisherRecord,
                                             header.max_publishers)}
        subscriptions = {i: r for i, r in _used(mm, off.subscriptions, L.SubscriptionRecord,
                                                header.max_subscriptions)}
        topics = []
        row = ctypes.sizeof(off.entry) * header.max_entries
        for index, t in _used(mm, off.topics, off.topic_record, header.max_topics):
            topic = Topic(index, _text(t.name), _text(t.type_name), _text(t.type_hash), t.seq)
            for ref in t.publishers:
                r = publishers.get(ref - 1) if ref else None
                if r is None or r.topic != index:
                    continue
                pub = Publisher(ref - 1, topic.name, _text(r.node_name), r.depth,
                                DURABILITY_NAMES.get(r.durability, str(r.durability)),
                                by_slot.get(r.process), r.published)
                entries = (off.entry * header.max_entries).from_buffer_copy(
                    mm, off.entries + (ref - 1) * row)
                pub.entries = sorted((Entry(e.seq, e.address, e.size, e.timestamp_ns,
                                            L.refs_value(e))
                                      for e in entries if e.seq), key=lambda e: e.seq)
                topic.publishers.append(pub)
            for pos, ref in enumerate(t.subscriptions):
                r = subscriptions.get(ref - 1) if ref else None
                if r is None or r.topic != index:
                    continue
                topic.subscriptions.append(Subscription(
                    ref - 1, topic.name, _text(r.node_name), r.depth,
                    DURABILITY_NAMES.get(r.durability, str(r.durability)),
                    by_slot.get(r.process), pos, r.last_seq, r.received, r.held,
                    r.state == L.DRAINING))
            topics.append(topic)
    return Snapshot(
        domain_id=header.domain_id, path=path, layout_version=header.layout_version,
        state=header.state,
        capacities={k: getattr(header, k) for k in ("max_processes", "max_topics",
                                                    "max_publishers", "max_subscriptions",
                                                    "max_entries", *L.PER_TOPIC_CAPACITIES)},
        base_address=header.base_address, pool_size=header.pool_size,
        live_processes=header.live_processes, reaped=header.reaped, repairs=header.repairs,
        processes=processes, topics=sorted(topics, key=lambda t: t.name))


def _used(mm, offset: int, record, count: int):
    """``(index, record copy)`` of every record whose state (its first u32) is not FREE."""
    size = ctypes.sizeof(record)
    for i in range(count):
        if struct.unpack_from("<I", mm, offset + i * size)[0] != L.FREE:
            yield i, record.from_buffer_copy(mm, offset + i * size)


def _read_processes(mm, fd: int, off: L.Offsets, header: L.Header) -> list[Process]:
    processes = []
    for slot, p in _used(mm, off.processes, L.ProcessRecord, header.max_processes):
        alive = (liveness.byte_is_locked(fd, L.LIVENESS_LOCK_BASE + slot)
                 and liveness.pid_matches(p.pid, p.start_time))
        processes.append(Process(slot, p.pid, _text(p.name), p.start_time, p.incarnation,
                                 _backend_name(p.backend), p.uid,
                                 p.pool_address, p.pool_size, alive))
    return processes


def _backend_name(code: int) -> str:
    backend = BACKEND_CODES.get(code)
    return backend.name if backend is not None else str(code)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


# -- formatting helpers shared by the verbs -----------------------------------------------


def size_text(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def plural(n: int, word: str) -> str:
    """``plural(1, "topic")`` -> ``1 topic``; ``plural(0, "live process")`` -> ``0 live processes``."""
    if n == 1:
        return f"1 {word}"
    return f"{n} {word}" + ("es" if word.endswith(("s", "sh", "ch", "x", "z")) else "s")
