"""The registry: agnoshm's control plane in shared memory, with no daemon.

It does what Agnocast's kernel module does: it knows the processes, topics,
publishers, subscriptions, message entries and who holds them.  One
object per ROS domain (``names.registry_name``), created race-free by
whichever process comes first and unlinked by the last one to leave.

Locking: the global lock (``Header.lock``) guards structure (joining,
endpoints, topics, reaping); each topic's lock guards its endpoint lists,
that is endpoint changes only.  Order: global, then topic.  Both are robust
mutexes; a dead owner triggers :meth:`Registry.repair`.  Messages take no
lock: publishers' channels and subscriptions' receipts have one writer per
word (``agnoshm/transport/ring.py``).

:class:`Registry` is assembled from one mixin per job: :mod:`.opening`
(create or validate), :mod:`.processes` (join, leave, liveness, reaping),
:mod:`.endpoints` (topics, publishers, subscriptions), :mod:`.repair`
(repair and checks) and :mod:`.snapshot` (what integrations may read).
"""

from __future__ import annotations

import ctypes
import os

from agnoshm import _libc
from agnoshm.config import Config
from agnoshm.errors import RegistryError
from agnoshm.names import registry_name
from agnoshm.registry import layout as L
from agnoshm.registry.endpoints import Endpoints
from agnoshm.registry.lock import RobustLock
from agnoshm.registry.opening import Opening
from agnoshm.registry.processes import Processes, RegistryClosed
from agnoshm.registry.repair import Repair
from agnoshm.registry.snapshot import Reads


class Registry(Opening, Processes, Endpoints, Repair, Reads):
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
        self.channel_size = ctypes.sizeof(off.channel)
        self.receipts_size = ctypes.sizeof(off.receipt)
        #: The whole object as bytes and as u64 words (``words[offset >> 3]``): the message
        #: path reads and writes single bytes and aligned words through these.
        self.memory = memoryview((ctypes.c_char * self._size).from_address(a)).cast("B")
        self.words = self.memory.cast("Q")
        self.words32 = self.memory.cast("I")
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

    def channel_offset(self, publisher: int) -> int:
        """Where publisher record ``publisher``'s :class:`~layout.Channel` starts."""
        return self.offsets.channels + publisher * self.channel_size

    def channel(self, publisher: int):
        """Publisher record ``publisher``'s channel (a ctypes ``Channel``)."""
        return self.offsets.channel.from_address(self._address + self.channel_offset(publisher))

    def receipts_offset(self, subscription: int) -> int:
        """Where subscription record ``subscription``'s :class:`~layout.Receipts` start."""
        return self.offsets.receipts + subscription * self.receipts_size

    def receipts(self, subscription: int):
        """Subscription record ``subscription``'s receipts (a ctypes ``Receipts``)."""
        return self.offsets.receipt.from_address(
            self._address + self.receipts_offset(subscription))

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

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Unmap and close this process's handle (does not unregister it)."""
        if self._address:
            self._topic_locks.clear()
            for attr in ("header", "processes", "topics", "publishers", "subscriptions"):
                self.__dict__.pop(attr, None)
            for view in (self.words, self.words32, self.memory):  # later use raises instead of faulting
                try:
                    view.release()
                except BufferError:  # a numpy array still exports it: the unmap decides
                    pass
            _libc.munmap(self._address, self._size)
            self._address = 0
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, size={self._size})"


def open_and_join(config: Config, pid: int, backend: str, name: str) -> tuple[Registry, int]:
    """Open (or create) the domain's registry and join it; return it and this process's slot."""
    for _attempt in range(100):
        registry = Registry(config)
        try:
            return registry, registry.join(pid, backend, name)
        except RegistryClosed:
            registry.close()
        except BaseException:
            registry.close()
            raise
    raise RegistryError(f"could not join registry {registry_name(config.domain_id)}")
