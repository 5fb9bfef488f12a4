"""The registry: agnoshm's control plane in shared memory, with no daemon.

It does what Agnocast's kernel module does: it knows the processes, topics,
publishers, subscriptions, message entries and who references them.  One
object per ROS domain (``names.registry_name``), created race-free by
whichever process comes first and unlinked by the last one to leave.

Locking: the global lock (``Header.lock``) guards structure (joining,
endpoints, topics, reaping); each topic's lock guards its entries, its
sequence number and its endpoint lists.  Order: global, then topic.  Both
are robust mutexes; a dead owner triggers :meth:`Registry.repair`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import time

from agnoshm import _libc, faults
from agnoshm.config import Config
from agnoshm.errors import (
    LimitReachedError,
    RegistryCorruptedError,
    RegistryError,
    RegistryVersionError,
    TypeMismatchError,
)
from agnoshm.memory import BACKEND_CODES, BACKENDS
from agnoshm.names import queue_name, registry_name
from agnoshm.registry import layout as L
from agnoshm.registry import liveness
from agnoshm.registry.lock import RobustLock, initialize_mutex


class Registry:
    """This process's handle on the registry of one domain.

    .. warning:: Users do not create registries; the runtime does.
    """

    _fd = -1  # class-level defaults: close() is safe after a failed __init__
    _address = 0
    _size = 0

    def __init__(self, config: Config):
        self.name = registry_name(config.domain_id)
        for _attempt in range(100):
            self._fd, created = self._open_fd(config)
            try:
                self._size = self._initialize_or_validate(config, created)
            except BaseException:
                os.close(self._fd)
                self._fd = -1
                raise
            if self._size:
                break
            os.close(self._fd)  # the last process unlinked it meanwhile: start over
            self._fd = -1
        else:
            raise RegistryError(f"could not open registry {self.name}: it keeps being removed")
        self._address = _libc.mmap(None, self._size, _libc.PROT_READ | _libc.PROT_WRITE,
                                   _libc.MAP_SHARED, self._fd, 0)
        self._bind_tables()

    # -- opening ---------------------------------------------------------------

    def _open_fd(self, config: Config) -> tuple[int, bool]:
        name = self.name.encode()
        mode = config.mode | (0o060 if config.group is not None else 0) | ((config.mode & 0o444) >> 1)
        try:
            fd = _libc.shm_open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            if config.group is not None:
                os.fchown(fd, -1, config.group)
            os.fchmod(fd, mode)
            return fd, True
        except FileExistsError:
            pass
        try:
            return _libc.shm_open(name, os.O_RDWR | os.O_CLOEXEC, 0), False
        except PermissionError as err:
            raise RegistryError(
                f"may not open registry {self.name} (uid {os.getuid()}): run as the user who "
                "created it or configure a shared group (AGNOSHM_GROUP)"
            ) from err
        except FileNotFoundError:
            return self._open_fd(config)

    def _initialize_or_validate(self, config: Config, created: bool) -> int:
        """Initialize the header if nobody did; return the object size, 0 if it was closed."""
        liveness.lock_byte_blocking(self._fd, L.INIT_LOCK_BYTE)
        try:
            size = os.fstat(self._fd).st_size
            header_bytes = os.pread(self._fd, ctypes.sizeof(L.Header), 0)
            header = L.Header.from_buffer_copy(header_bytes.ljust(ctypes.sizeof(L.Header), b"\0"))
            if header.magic == 0:
                # Nobody finished initializing (a creator may have died after sizing it
                # for other capacities): size it for ours, then write the header.
                offsets = L.Offsets(config)
                size = offsets.total_size
                os.ftruncate(self._fd, size)
                # Back every table but the entry rows now: a page of a sparse shm object
                # first touched on a full /dev/shm is a SIGBUS, and scans read them all.
                self._commit(0, offsets.entries, "the registry's tables")
                self._write_header(config, size)
                return size
            self._validate_header(header, size)
            if header.state == L.REGISTRY_CLOSED:
                self._unlink_if_abandoned()
                return 0
            return header.total_size
        finally:
            liveness.unlock_byte(self._fd, L.INIT_LOCK_BYTE)

    def _unlink_if_abandoned(self) -> None:
        """Unlink this closed registry if its last process died before unlinking it.

        ``leave`` marks it closed and unlinks it holding the global lock, so once we
        hold that lock a closer that is alive is done; if the name still denotes
        this object, the closer died in between and would wedge the domain forever.
        """
        address = _libc.mmap(None, L.PAGE, _libc.PROT_READ | _libc.PROT_WRITE, _libc.MAP_SHARED,
                             self._fd, 0)
        try:
            with RobustLock(address + L.Header.lock.offset, lambda: None):  # closed: no repair
                try:
                    fd = _libc.shm_open(self.name.encode(), os.O_RDONLY | os.O_CLOEXEC, 0)
                except FileNotFoundError:
                    return
                try:
                    named, ours = os.fstat(fd), os.fstat(self._fd)
                    if (named.st_dev, named.st_ino) == (ours.st_dev, ours.st_ino):
                        _libc.shm_unlink(self.name.encode())
                finally:
                    os.close(fd)
        finally:
            _libc.munmap(address, L.PAGE)

    def _commit(self, offset: int, length: int, what: str) -> None:
        """Back ``length`` bytes at ``offset`` with memory (posix_fallocate), or raise.

        :raises LimitReachedError: if /dev/shm (or RAM) has no room for them.
        """
        if not _libc.fallocate(self._fd, offset, length):
            raise LimitReachedError(
                f"no memory left in /dev/shm for {what} in registry {self.name} "
                f"({length} bytes): free space in /dev/shm (agnoshm clean removes what "
                "dead processes left)")

    def _write_header(self, config: Config, size: int) -> None:
        address = _libc.mmap(None, L.PAGE, _libc.PROT_READ | _libc.PROT_WRITE, _libc.MAP_SHARED,
                             self._fd, 0)
        try:
            header = L.Header.from_address(address)
            ctypes.memset(address, 0, L.PAGE)
            header.layout_version = L.LAYOUT_VERSION
            header.domain_id = config.domain_id
            for key in ("max_processes", "max_topics", "max_publishers", "max_subscriptions",
                        "max_entries", *L.PER_TOPIC_CAPACITIES, "pool_size", "base_address"):
                setattr(header, key, getattr(config, key))
            header.total_size = size
            initialize_mutex(address + L.Header.lock.offset)
            header.state = L.REGISTRY_READY
            header.magic = L.MAGIC  # last: a header with magic is complete
        finally:
            _libc.munmap(address, L.PAGE)

    def _validate_header(self, header: L.Header, size: int) -> None:
        if header.magic != L.MAGIC:
            raise RegistryCorruptedError(
                f"{self.name} is not an agnoshm registry (magic 0x{header.magic:016x}): another "
                f"program uses this name, or it was overwritten; remove /dev/shm{self.name} when "
                "no agnoshm process runs (agnoshm clean)"
            )
        if header.layout_version != L.LAYOUT_VERSION:
            raise RegistryVersionError(
                f"{self.name} has layout version {header.layout_version}, this agnoshm uses "
                f"{L.LAYOUT_VERSION}: run the same agnoshm version in every process of ROS domain "
                f"{header.domain_id}, or use another ROS_DOMAIN_ID"
            )
        bad = L.bad_per_topic_capacity(header)
        if bad:
            raise RegistryCorruptedError(
                f"{self.name} header is corrupted ({bad}): remove it with agnoshm clean")
        expected = L.Offsets(header).total_size
        if header.total_size != expected or size < expected:
            raise RegistryCorruptedError(
                f"{self.name} header is inconsistent (size {size}, header says "
                f"{header.total_size}, capacities need {expected}): remove it with agnoshm clean"
            )

    def _bind_tables(self) -> None:
        a = self._address
        self.header = L.Header.from_address(a)
        h = self.header
        self.offsets = off = L.Offsets(h)
        self.processes = (L.ProcessRecord * h.max_processes).from_address(a + off.processes)
        self.topics = (off.topic_record * h.max_topics).from_address(a + off.topics)
        self.publishers = (L.PublisherRecord * h.max_publishers).from_address(a + off.publishers)
        self.subscriptions = (L.SubscriptionRecord * h.max_subscriptions).from_address(
            a + off.subscriptions)
        self._entry_row = off.entry * h.max_entries
        self._entry_row_bytes = ctypes.sizeof(self._entry_row)
        self.lock = RobustLock(a + L.Header.lock.offset, self.repair)
        self._topic_locks: dict[int, RobustLock] = {}
        self.own_slot = -1

    # -- accessors ---------------------------------------------------------------

    @property
    def address(self) -> int:
        return self._address

    @property
    def size(self) -> int:
        return self._size

    def entries_of(self, publisher: int):
        """The entry row (a ctypes array of :class:`Entry`) of publisher record ``publisher``."""
        return self._entry_row.from_address(
            self._address + self.offsets.entries + publisher * self._entry_row_bytes)

    def topic_lock(self, topic: int) -> RobustLock:
        lock = self._topic_locks.get(topic)
        if lock is None:
            address = ctypes.addressof(self.topics[topic]) + L.TopicRecord.lock.offset
            lock = self._topic_locks[topic] = RobustLock(address, lambda: self._repair_topic(topic))
        return lock

    def doorbell_address(self, slot: int) -> int:
        return ctypes.addressof(self.processes[slot]) + L.ProcessRecord.doorbell.offset

    def sleeping_address(self, slot: int) -> int:
        return ctypes.addressof(self.processes[slot]) + L.ProcessRecord.sleeping.offset

    # -- processes -------------------------------------------------------------------

    def join(self, pid: int, backend: str, name: str) -> int:
        """Register this process; return its slot (also the index of its pool address).

        :raises LimitReachedError: if every slot is taken by a live process.
        """
        start_time = liveness.process_start_time(pid)
        with self.lock:
            if self.header.state == L.REGISTRY_CLOSED:
                raise _RegistryClosed()
            self._reap_dead_locked()
            free = [i for i, p in enumerate(self.processes) if p.state == L.FREE]
            if not free:
                raise LimitReachedError(
                    f"registry {self.name} has all {self.header.max_processes} process slots in use:"
                    " raise max_processes (AGNOSHM_MAX_PROCESSES) in every process of the domain, "
                    "or use another ROS_DOMAIN_ID")
            slot = min(free, key=lambda i: self.processes[i].left_at_ns)
            if not liveness.try_lock_byte(self._fd, L.LIVENESS_LOCK_BASE + slot):
                raise RegistryCorruptedError(f"slot {slot} of {self.name} is free but locked")
            p = self.processes[slot]
            self.header.incarnations += 1
            p.pid = pid
            p.start_time = start_time
            p.incarnation = self.header.incarnations
            p.backend = BACKENDS[backend].code
            p.uid = os.getuid()
            p.pool_address = self.header.base_address + slot * self.header.pool_size
            p.pool_size = self.header.pool_size
            p.name = name.encode()[:63]
            p.state = L.USED
            self.header.live_processes += 1
            self.header.generation += 1
        self.own_slot = slot
        return slot

    def leave(self, slot: int) -> bool:
        """Unregister this process; unlink the registry if it was the last. Return True if so."""
        with self.lock:
            self._free_process_locked(slot, unlink_objects=False)
            liveness.unlock_byte(self._fd, L.LIVENESS_LOCK_BASE + slot)
            self._reap_dead_locked()
            last = self.header.live_processes == 0
            if last:
                self.header.state = L.REGISTRY_CLOSED
                try:
                    _libc.shm_unlink(self.name.encode())
                except FileNotFoundError:
                    pass
        self.own_slot = -1
        return last

    def is_alive(self, slot: int) -> bool:
        """Return True if the process registered in ``slot`` is running."""
        p = self.processes[slot]
        if p.state != L.USED:
            return False
        if slot == self.own_slot:
            return True
        return (liveness.byte_is_locked(self._fd, L.LIVENESS_LOCK_BASE + slot)
                and liveness.pid_matches(p.pid, p.start_time))

    def live_slots(self) -> list[int]:
        return [i for i, p in enumerate(self.processes) if p.state == L.USED]

    def reap_dead(self) -> list[int]:
        """Reclaim every dead process (endpoints, references, named objects); return their pids."""
        if all(self.is_alive(i) for i in self.live_slots()):
            return []
        with self.lock:
            return self._reap_dead_locked()

    def reap_successors(self) -> list[int]:
        """Reap dead processes, checking only this process's successors.

        The registered processes after this one in slot order (wrapping round) are
        checked up to the first live one; if any is dead, every dead process is
        reaped.  Each process's housekeeping does this, so every dead process has a
        watcher, its nearest live predecessor, and a pass costs about one liveness
        check instead of one per process: housekeeping in N processes is O(N) in
        all, not O(N^2).  Any registry operation still checks everyone.
        """
        own, processes = self.own_slot, self.processes
        n = len(processes)
        for step in range(1, n):
            slot = (own + step) % n
            if processes[slot].state != L.USED:
                continue
            if self.is_alive(slot):
                return []
            with self.lock:
                return self._reap_dead_locked()
        return []

    @staticmethod
    def _unlink_objects_of_dead(p: L.ProcessRecord) -> None:
        """Remove the pool and queue named after a dead process's pid.

        Unless its pid already belongs to a new process that has objects of those
        names open: one that joined another domain (names carry no domain) and
        replaced the stale objects with its own.  Those are left alone, and so is
        everything of a process whose descriptors cannot be read.
        """
        in_use = liveness.open_by(p.pid)
        if in_use is None:
            return
        own = BACKEND_CODES.get(p.backend)  # a scribbled code: try every backend, leak nothing
        for backend in (own,) if own is not None else BACKENDS.values():
            path = backend.path(p.pid)
            if path is not None and path not in in_use:
                backend.unlink(p.pid)
        if queue_name(p.pid) not in in_use:
            try:
                _libc.mq_unlink(queue_name(p.pid).encode())
            except FileNotFoundError:
                pass

    def _reap_dead_locked(self) -> list[int]:
        dead = [i for i in self.live_slots() if not self.is_alive(i)]
        pids = []
        for slot in dead:
            pids.append(self.processes[slot].pid)
            self._free_process_locked(slot, unlink_objects=True)
            self.header.reaped += 1
        return pids

    def _free_process_locked(self, slot: int, *, unlink_objects: bool) -> None:
        p = self.processes[slot]
        for i, pub in enumerate(self.publishers):
            if pub.state != L.FREE and pub.process == slot:
                self._remove_publisher_locked(i)
        for i, sub in enumerate(self.subscriptions):
            if sub.state != L.FREE and sub.process == slot:
                self._remove_subscription_locked(i, force=True)
        if unlink_objects:
            if faults.ARMED:
                faults.hit("reap.inside")
            self._unlink_objects_of_dead(p)
        p.state = L.FREE
        p.left_at_ns = time.monotonic_ns()
        self.header.live_processes -= 1
        self.header.generation += 1

    # -- topics and endpoints ------------------------------------------------------

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

    def _claim_record_locked(self, table, kind: str, capacity_key: str) -> int:
        for i, r in enumerate(table):
            if r.state == L.FREE:
                return i
        raise LimitReachedError(
            f"registry {self.name} holds {len(table)} {kind} already: raise {capacity_key} "
            f"(AGNOSHM_{capacity_key.upper()}) in every process of the domain")

    @staticmethod
    def _claim_topic_position(array, count: int, kind: str, topic_name: str) -> int:
        for pos in range(len(array)):
            if array[pos] == 0:
                return pos
        key = f"max_{kind}_per_topic"
        raise LimitReachedError(
            f"topic {topic_name!r} has {len(array)} {kind} already, the most one "
            f"topic can have: spread them over more topics, or raise {key} "
            f"(AGNOSHM_{key.upper()}) in every process of the domain")

    def add_publisher(self, topic_name: str, type_name: str, type_hash: str, depth: int,
                      durability: int, node_name: str) -> tuple[int, int]:
        """Register a publisher of this process; return ``(publisher, topic)`` indices."""
        if depth > self.header.max_entries:
            raise LimitReachedError(
                f"depth {depth} exceeds the {self.header.max_entries} live messages a publisher may "
                "have: lower the depth or raise max_entries (AGNOSHM_MAX_ENTRIES)")
        with self.lock:
            self._reap_dead_locked()
            topic = self._open_topic_locked(topic_name, type_name, type_hash)
            t = self.topics[topic]
            with self.topic_lock(topic), self._topic_freed_on_error(topic):
                index = self._claim_record_locked(self.publishers, "publishers", "max_publishers")
                pos = self._claim_topic_position(t.publishers, t.n_publishers, "publishers",
                                                 topic_name)
                r = self.publishers[index]
                self._commit(self.offsets.entries + index * self._entry_row_bytes,
                             self._entry_row_bytes, f"the entry row of publisher {index}")
                ctypes.memset(ctypes.addressof(r), 0, ctypes.sizeof(r))
                ctypes.memset(ctypes.addressof(self.entries_of(index)), 0, self._entry_row_bytes)
                if durability == L.BEST_AVAILABLE:
                    durability = L.TRANSIENT_LOCAL  # rmw: a publisher offers the most
                r.topic, r.process, r.depth, r.durability = topic, self.own_slot, depth, durability
                r.incarnation = self.processes[self.own_slot].incarnation
                r.node_name = node_name.encode()[:L.NODE_NAME_LEN - 1]
                r.state = L.USED
                if faults.ARMED:
                    faults.hit("publisher.registered")
                t.publishers[pos] = index + 1
                t.n_publishers += 1
                t.generation += 1
            self.header.generation += 1
        return index, topic

    def add_subscription(self, topic_name: str, type_name: str, type_hash: str, depth: int,
                         durability: int, node_name: str) -> tuple[int, int]:
        """Register a subscription of this process; return ``(subscription, topic)`` indices.

        A VOLATILE subscription starts after the newest message; a
        TRANSIENT_LOCAL one before the oldest retained message.
        """
        with self.lock:
            self._reap_dead_locked()
            topic = self._open_topic_locked(topic_name, type_name, type_hash)
            t = self.topics[topic]
            with self.topic_lock(topic), self._topic_freed_on_error(topic):
                index = self._claim_record_locked(self.subscriptions, "subscriptions",
                                                  "max_subscriptions")
                pos = self._claim_topic_position(t.subscriptions, t.n_subscriptions,
                                                 "subscriptions", topic_name)
                r = self.subscriptions[index]
                ctypes.memset(ctypes.addressof(r), 0, ctypes.sizeof(r))
                if durability == L.BEST_AVAILABLE:
                    durability = self._best_available_durability_locked(topic)
                r.topic, r.process, r.depth, r.durability = topic, self.own_slot, depth, durability
                r.incarnation = self.processes[self.own_slot].incarnation
                r.bit = pos
                r.last_seq = 0 if durability == L.TRANSIENT_LOCAL else t.seq
                r.node_name = node_name.encode()[:L.NODE_NAME_LEN - 1]
                r.state = L.USED
                if faults.ARMED:
                    faults.hit("subscription.registered")
                t.subscriptions[pos] = index + 1
                t.n_subscriptions += 1
                t.generation += 1
            self.header.generation += 1
        return index, topic

    def _best_available_durability_locked(self, topic: int) -> int:
        """rmw's rule for a BEST_AVAILABLE subscription: TRANSIENT_LOCAL if the topic has
        publishers and every one of them is TRANSIENT_LOCAL, otherwise VOLATILE."""
        publishers = [self.publishers[p] for p in self.publisher_indices(topic)]
        if publishers and all(p.durability == L.TRANSIENT_LOCAL for p in publishers):
            return L.TRANSIENT_LOCAL
        return L.VOLATILE

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
            for e in self.entries_of(index):
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
                r.state = L.DRAINING  # keeps its bit until its last view is released
                return
            self._unlist_subscription_topic_locked(index)
        self._free_topic_if_unused_locked(topic)
        self.header.generation += 1

    def _unlist_subscription_topic_locked(self, index: int) -> None:
        """Drop a subscription from its topic and clear its references (topic lock held)."""
        r = self.subscriptions[index]
        t = self.topics[r.topic]
        bit = r.bit
        listed = bit < len(t.subscriptions)
        if listed:
            for pub in self.publisher_indices(r.topic):
                for e in self.entries_of(pub):
                    if e.holders:
                        L.clear_ref(e, bit)
        if listed and t.subscriptions[bit] == index + 1:
            t.subscriptions[bit] = 0
            t.n_subscriptions -= 1
        r.state = L.FREE
        t.generation += 1

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

        Two ways leave one behind: the last view of a drained subscription unlists
        it under the topic lock alone, and a process may die holding the global lock
        between opening a topic and linking its endpoint.  Each is freed under its
        own lock (order: global, topic), so no releaser is still inside it.
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

    # -- repair and checks -------------------------------------------------------------

    def repair(self) -> None:
        """Restore consistency after a process died holding the global lock."""
        self.header.repairs += 1
        for topic, t in enumerate(self.topics):
            if t.state != L.USED:
                continue
            for array, table in ((t.publishers, self.publishers), (t.subscriptions, self.subscriptions)):
                for pos in range(len(array)):
                    ref = array[pos]
                    if ref and (ref > len(table) or table[ref - 1].state == L.FREE
                                or table[ref - 1].topic != topic):
                        array[pos] = 0
            t.n_publishers = sum(1 for x in t.publishers if x)
            t.n_subscriptions = sum(1 for x in t.subscriptions if x)
        if faults.ARMED:
            faults.hit("repair.inside")
        self._free_unused_topics_locked()  # opened by a process that died before linking to it
        for table, array_name in ((self.publishers, "publishers"), (self.subscriptions, "subscriptions")):
            for i, r in enumerate(table):
                if r.state != L.FREE and (
                        r.topic >= len(self.topics) or r.process >= len(self.processes)
                        or (i + 1) not in list(getattr(self.topics[r.topic], array_name))):
                    r.state = L.FREE  # claimed but never linked: its creator died mid-way
        self.header.live_processes = len(self.live_slots())
        self._reap_dead_locked()

    def _repair_topic(self, topic: int) -> None:
        """A process died holding a topic lock: entries are written seq-last, so
        half-written ones are free; the dead process's endpoints are reaped at the
        next registry operation.  A publisher that died between committing an entry
        and advancing the topic's sequence number leaves an entry newer than the
        topic: the topic's number moves past it, so no later message reuses it."""
        self.header.repairs += 1
        t = self.topics[topic]
        newest = t.seq
        for pub in self.publisher_indices(topic):
            if pub < len(self.publishers):
                for e in self.entries_of(pub):
                    if e.seq > newest:
                        newest = e.seq
                    # a reference taken or dropped mid-way: the bits are the truth
                    e.holders = L.refs_value(e).bit_count()
        t.seq = newest

    def check_consistency(self) -> list[str]:
        """Return a list of problems found (empty when the registry is consistent)."""
        problems = []
        with self.lock:
            live = 0
            n_topics, n_processes = len(self.topics), len(self.processes)
            for table, kind in ((self.publishers, "publisher"), (self.subscriptions, "subscription")):
                for i, r in enumerate(table):
                    if r.state != L.FREE and (r.topic >= n_topics or r.process >= n_processes):
                        problems.append(f"{kind} {i} names topic {r.topic} / process slot "
                                        f"{r.process}, past the registry's tables")
            if problems:
                return problems  # the checks below index the tables with these fields
            for slot, p in enumerate(self.processes):
                if p.state == L.USED:
                    live += 1
                    if not self.is_alive(slot):
                        problems.append(f"process slot {slot} (pid {p.pid}) is dead but registered")
            if live != self.header.live_processes:
                problems.append(f"live_processes is {self.header.live_processes}, counted {live}")
            for topic, t in enumerate(self.topics):
                if t.state == L.USED:
                    with self.topic_lock(topic):  # publishers and takers write under it
                        problems += self._check_topic_locked(topic)
            for table, kind in ((self.publishers, "publisher"), (self.subscriptions, "subscription")):
                for i, r in enumerate(table):
                    if r.state != L.FREE and self.processes[r.process].state != L.USED:
                        problems.append(f"{kind} {i} belongs to free process slot {r.process}")
        return problems

    def _check_topic_locked(self, topic: int) -> list[str]:
        """Problems of one topic: its endpoint lists and its publishers' entries."""
        problems = []
        t = self.topics[topic]
        pubs = self.publisher_indices(topic)
        subs = self.subscription_indices(topic)
        if len(pubs) != sum(1 for x in t.publishers if x) or len(subs) != sum(
                1 for x in t.subscriptions if x):
            problems.append(f"topic {t.name!r} lists endpoints past the registry's tables")
        if len(pubs) != t.n_publishers or len(subs) != t.n_subscriptions:
            problems.append(f"topic {t.name.decode()} endpoint counts disagree with lists")
        valid_bits = 0
        for pos, ref in enumerate(t.subscriptions):
            if 0 < ref <= len(self.subscriptions):  # those past the table: reported above
                s = self.subscriptions[ref - 1]
                if s.state == L.FREE or s.topic != topic or s.bit != pos:
                    problems.append(f"topic {t.name.decode()} lists bad subscription {ref - 1}")
                valid_bits |= 1 << pos
        for pub in pubs:
            r = self.publishers[pub]
            if r.state != L.USED or r.topic != topic:
                problems.append(f"topic {t.name.decode()} lists bad publisher {pub}")
            if self.processes[r.process].state != L.USED:
                problems.append(f"publisher {pub} belongs to a free process slot")
            for e in self.entries_of(pub):
                refs = L.refs_value(e)
                if e.seq and refs & ~valid_bits:
                    problems.append(f"entry seq {e.seq} of publisher {pub} is referenced "
                                    "by a subscription that is gone")
                if e.seq and e.holders != refs.bit_count():
                    problems.append(f"entry seq {e.seq} of publisher {pub} counts "
                                    f"{e.holders} holders for {refs.bit_count()} "
                                    "references")
                if e.seq > t.seq:
                    problems.append(f"entry seq {e.seq} is newer than topic seq {t.seq}")
        return problems

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Unmap and close this process's handle (does not unregister it)."""
        if self._address:
            self._topic_locks.clear()
            for attr in ("header", "processes", "topics", "publishers", "subscriptions"):
                self.__dict__.pop(attr, None)
            _libc.munmap(self._address, self._size)
            self._address = 0
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, size={self._size})"


class _RegistryClosed(RegistryError):
    """The registry was unlinked by its last process between open and join: reopen."""


def open_and_join(config: Config, pid: int, backend: str, name: str) -> tuple[Registry, int]:
    """Open (or create) the domain's registry and join it; return it and this process's slot."""
    for _attempt in range(100):
        registry = Registry(config)
        try:
            return registry, registry.join(pid, backend, name)
        except _RegistryClosed:
            registry.close()
        except BaseException:
            registry.close()
            raise
    raise RegistryError(f"could not join registry {registry_name(config.domain_id)}")
