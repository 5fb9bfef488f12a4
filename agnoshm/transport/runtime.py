"""Everything agnoshm holds in one process: registry, reservation, own pool, peers, listener.

Init order (undone in reverse on any failure, and at :meth:`Runtime.close`):
open and join the registry (it fixes the geometry and this process's slot),
reserve the address range, create the pool at the slot, create the
announcement queue, start the memfd pool server and the listener thread.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref

from agnoshm import _native, faults
from agnoshm.config import Config
from agnoshm.memory import BACKENDS, AddressReservation, PoolAllocator
from agnoshm.registry import layout as L
from agnoshm.registry.registry import open_and_join
from agnoshm.transport.announce import AnnouncementQueue, announce
from agnoshm.transport.doorbell import Doorbell, NativeDoorbell
from agnoshm.transport.listener import Listener
from agnoshm.transport.peers import PeerMapping, PeerPools
from agnoshm.transport.native_ports import NativePublisherPort, NativeSubscriberPort
from agnoshm.transport.publish import PublisherPort
from agnoshm.transport.receive import SubscriberPort


class Runtime:
    """The process-wide agnoshm state.

    .. warning:: Users do not create it; ``agnoshm.init()`` (or the first ``Node``) does.
    """

    closed = True  # class-level defaults make close() safe after a failed __init__
    registry = reservation = pool = queue = pool_server = listener = peers = native = None
    native_region = None  # the registry's mapping as the C path sees it (closed before unmap)
    slot = -1

    def __init__(self, config: Config, name: str | None = None):
        self.config = config
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._publishers: "weakref.WeakSet[PublisherPort]" = weakref.WeakSet()
        self.drained: set[SubscriberPort] = set()  # destroyed ports whose last view is gone
        try:
            self._start(config, name or os.path.basename(sys.argv[0] or "python"))
        except BaseException:
            self.close()
            raise

    def _start(self, config: Config, name: str) -> None:
        #: the C message path (``agnoshm._native._ring``), or None: pure Python (AGNOSHM_NATIVE)
        self.native = _native.load(config.native)
        self.registry, self.slot = open_and_join(config, self.pid, config.backend, name)
        if self.native is not None:
            self.native_region = self.native.Region(self.registry.address, self.registry.size)
        self.closed = False
        if faults.ARMED:
            faults.hit("init.joined")
        header = self.registry.header
        self.pool_size = header.pool_size
        self.reservation = AddressReservation(header.base_address,
                                              header.max_processes * header.pool_size)
        record = self.registry.processes[self.slot]
        backend = BACKENDS[config.backend]
        self.pool = backend.create(self.pid, record.pool_address, record.pool_size,
                                   mode=config.mode, gid=config.group)
        self.allocator = PoolAllocator(self.pool, self.native)
        if faults.ARMED:
            faults.hit("init.pool")
        self.peers = PeerPools(self.registry, self.reservation, self.slot, self.pool,
                               config.domain_id, mapping_type=(
                                   PeerMapping if self.native is None else self.native.Mapping))
        self.queue = AnnouncementQueue(self.pid, config.mode)
        self.pool_server = backend.serve(self.pool, config.domain_id, config.group)
        doorbell = (self.registry.doorbell_address(self.slot),
                    self.registry.sleeping_address(self.slot), config.busy_poll_us)
        self.doorbell = (Doorbell(*doorbell) if self.native is None
                         else NativeDoorbell(*doorbell, self.native))
        if faults.ARMED:
            faults.hit("init.queue")
        self.listener = Listener(self)

    # endpoints ------------------------------------------------------------------
    def create_publisher_port(self, topic_name: str, type_name: str, type_hash: str, depth: int,
                              durability: int, node_name: str) -> PublisherPort:
        index, topic = self.registry.add_publisher(topic_name, type_name, type_hash, depth,
                                                   durability, node_name)
        port = (NativePublisherPort if self.native else PublisherPort)(self, index, topic, depth)
        self._publishers.add(port)
        self._announce(topic)
        return port

    def _announce(self, topic: int) -> None:
        """Tell every other process subscribed to ``topic`` to map this pool now."""
        me = self.registry.processes[self.slot]
        for slot in self.registry.subscriber_slots(topic):
            if slot != self.slot:
                if faults.ARMED:
                    faults.hit("publisher.announce")
                announce(self.registry.processes[slot].pid, self.pid, self.slot, me.incarnation)

    def create_subscriber_port(self, topic_name: str, type_name: str, type_hash: str, depth: int,
                               durability: int, node_name: str, *,
                               ignore_local: bool = False) -> SubscriberPort:
        """:param ignore_local: skip messages of publishers in this process."""
        starts: dict = {}
        index, topic = self.registry.add_subscription(topic_name, type_name, type_hash, depth,
                                                      durability, node_name, starts)
        port = (NativeSubscriberPort if self.native else SubscriberPort)(
            self, index, topic, depth, ignore_local=ignore_local, starts=starts)
        for p in self.registry.publisher_indices(topic):  # map existing publishers' pools now
            r = self.registry.publishers[p]
            if r.state == L.USED:
                self.peers.map_announced(r.process, r.incarnation)
        return port

    # housekeeping ------------------------------------------------------------------
    def reclaim_all(self) -> None:
        for port in list(self._publishers):
            if not port.destroyed:
                port.reclaim()

    def finish_draining(self) -> None:
        """Unlist the destroyed subscriptions whose last view is gone."""
        drained = self.drained
        for _ in range(len(drained)):
            try:
                port = drained.pop()
            except KeyError:  # emptied by another thread
                return
            self.registry.finish_draining(port.index)

    def housekeeping(self) -> None:
        """Reap dead processes, reclaim released messages, unmap gone pools."""
        if self.closed:
            return
        self.registry.reap_successors()
        self.finish_draining()
        self.reclaim_all()
        self.peers.drop_stale()

    def abandon_after_fork(self) -> None:
        """In a forked child: drop the parent's mappings and descriptors, touch nothing shared."""
        from agnoshm import _libc

        self.closed = True
        self._close_native_region()
        for fd in (self.queue and self.queue.fileno(), self.pool and self.pool.fd,
                   self.registry and self.registry._fd):
            if fd is not None and fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if self.reservation is not None:
            _libc.munmap(self.reservation.base, self.reservation.size)
        if self.registry is not None and self.registry.address:
            _libc.munmap(self.registry.address, self.registry.size)
        self.listener = self.registry = self.reservation = self.pool = self.queue = None
        self.pool_server = self.peers = None

    # lifetime -------------------------------------------------------------------------
    def _close_native_region(self) -> None:
        """Before the registry is unmapped: native ports raise from here on (ValueError, as
        the pure path's released memoryviews do) instead of touching unmapped memory."""
        if self.native_region is not None:
            self.native_region.close()

    def close(self) -> None:
        """Leave the domain and remove everything this process created (idempotent)."""
        with getattr(self, "_lock", threading.Lock()):
            if self.listener is not None:
                self.listener.stop()
                self.listener = None
            was_open = not self.closed
            self.closed = True
            # Leases released from here on give nothing back (the records are leaving): the
            # native ones see it in the region, as the pure ones see ``closed``.
            self._close_native_region()
            # Remove our names *before* leaving: once our record is free no reaper
            # looks for them, so a kill -9 between leave() and here would leak them.
            if self.pool is not None:
                self.pool.unlink()
            if self.queue is not None:
                self.queue.close(unlink=True)
            if faults.ARMED and was_open:
                faults.hit("shutdown.leave")
            if self.registry is not None and was_open and self.slot >= 0:
                try:
                    self.registry.leave(self.slot)
                except Exception:
                    pass
            if self.pool_server is not None:
                self.pool_server.close()
            if self.queue is not None:
                self.queue.close(unlink=True)
            if self.peers is not None:
                self.peers.close()
            if self.pool is not None and self.reservation is not None:
                self.pool.close(self.reservation)
            if self.reservation is not None:
                self.reservation.close()
            if self.registry is not None:
                self.registry.close()
            self.registry = self.reservation = self.pool = self.queue = None
            self.pool_server = self.peers = None
