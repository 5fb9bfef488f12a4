"""The pools of other processes, as this process maps them (read-only, same address).

A mapping is keyed by slot and remembered with the slot's incarnation, so a
slot that a new process took over is never read through a stale mapping
(the check a receive makes before it dereferences an entry).  A mapping is
dropped only when no received message of this process still points into it.
"""

from __future__ import annotations

import threading
from collections import deque

from agnoshm.errors import PoolAccessError
from agnoshm.memory import BACKEND_CODES, Pool
from agnoshm.registry import layout as L


class PeerMapping:
    """One mapped pool and the received messages (leases) pointing into it.

    Leases count themselves without a lock: one item each in a deque, whose append and
    pop are atomic.  A lease appends, then reads ``retired``; :meth:`retire` sets
    ``retired``, then reads the count (Dekker's pattern, ordered by the GIL): either the
    lease sees the mapping retired and takes its count back, or the retire sees the lease
    and undoes itself, so no lease is ever counted into a pool being unmapped.  The native
    path uses ``agnoshm._native._ring.Mapping``, whose leases C counts.
    """

    __slots__ = ("incarnation", "pool", "retired", "_counted", "_kept")

    def __init__(self, incarnation: int, pool: Pool):
        self.incarnation = incarnation
        self.pool = pool
        self.retired = False
        self._counted: deque = deque()
        self._kept = 0

    @property
    def leases(self) -> int:
        """Received messages (leases) pointing into the pool."""
        return len(self._counted) + self._kept

    @leases.setter
    def leases(self, value: int) -> None:  # e.g. the own pool's, never unmapped here
        self._kept = value - len(self._counted)

    def count(self) -> bool:
        """Count one more lease; False (nothing counted) if the mapping is retired."""
        self._counted.append(None)
        if self.retired:
            self._counted.pop()
            return False
        return True

    def uncount(self) -> None:
        """Count one lease fewer."""
        self._counted.pop()

    def retire(self) -> bool:
        """Mark it for unmapping if no lease points into it; return whether it is retired
        (no lease is counted in a retired mapping).  Called under PeerPools' lock."""
        if not self.retired:
            self.retired = True
            if self.leases:
                self.retired = False
        return self.retired


class PeerPools:
    """Read-only mappings of other processes' pools, by slot."""

    def __init__(self, registry, reservation, own_slot: int, own_pool: Pool, domain_id: int,
                 mapping_type=PeerMapping):
        """:param mapping_type: :class:`PeerMapping`, or the native path's ``Mapping``."""
        self._mapping_type = mapping_type
        self._registry = registry
        self._reservation = reservation
        self._domain_id = domain_id
        self._lock = threading.Lock()
        own = mapping_type(registry.processes[own_slot].incarnation, own_pool)
        own.leases = 1 << 62  # never unmapped here: the runtime closes its own pool
        self._mappings: dict[int, PeerMapping] = {own_slot: own}
        self._own_slot = own_slot

    def mapping(self, slot: int, incarnation: int) -> PeerMapping:
        """Return the mapping of ``slot`` for process ``incarnation``, mapping it if needed.

        :raises PoolAccessError: if the pool may not be read or the slot is still
            mapped for a previous process whose messages this process holds.
        :raises FileNotFoundError: if the owner is gone.
        """
        m = self._mappings.get(slot)
        if m is not None and m.incarnation == incarnation:
            return m
        with self._lock:
            m = self._mappings.get(slot)
            if m is not None and m.incarnation == incarnation:
                return m
            if m is not None:
                if not m.retire():
                    raise PoolAccessError(
                        f"slot {slot} was taken by a new process while this process still holds "
                        f"{m.leases} messages of the previous one: release them")
                m.pool.close(self._reservation)
                del self._mappings[slot]
            processes = self._registry.processes
            if not 0 <= slot < len(processes):  # a scribbled record: nobody is there
                raise FileNotFoundError(f"no process slot {slot} in the registry")
            p = processes[slot]
            if p.state != L.USED or p.incarnation != incarnation:
                raise FileNotFoundError(f"process in slot {slot} is gone")
            r = self._reservation
            backend = BACKEND_CODES.get(p.backend)
            if (backend is None or p.pool_size == 0
                    or p.pool_address != r.base + slot * p.pool_size
                    or p.pool_address + p.pool_size > r.base + r.size):
                # Never map at an address the registry names unless it is this slot's
                # place in our reservation: a corrupted record must not clobber memory.
                raise PoolAccessError(
                    f"registry record of slot {slot} names pool 0x{p.pool_address:x}+"
                    f"{p.pool_size} (backend {p.backend}), not its place in the agnoshm range "
                    f"0x{r.base:x}+{r.size}: the registry is corrupted; stop every agnoshm "
                    "process of the domain and run agnoshm clean")
            pool = backend.open_readonly(p.pid, p.pool_address, p.pool_size,
                                         domain_id=self._domain_id)
            m = self._mappings[slot] = self._mapping_type(incarnation, pool)
            return m

    def map_announced(self, slot: int, incarnation: int) -> None:
        """Map a pool named by an announcement; ignore it if it is stale or not ours to read."""
        try:
            if 0 <= slot < len(self._registry.processes):
                self.mapping(slot, incarnation)
        except (OSError, PoolAccessError):
            pass

    def acquire(self, slot: int, incarnation: int) -> PeerMapping | None:
        """The mapping of ``slot`` for process ``incarnation`` with one more received
        message counted in it (mapped now if needed), or None if that process is gone
        or its pool may not be read.  Pure path only (C counts the native leases)."""
        m = self._mappings.get(slot)
        if m is None or m.incarnation != incarnation:
            try:
                m = self.mapping(slot, incarnation)
            except (OSError, PoolAccessError):
                return None
        return m if m.count() else None  # not if drop_stale retired it meanwhile

    def release(self, mapping: PeerMapping) -> None:
        """Count one received message fewer pointing into ``mapping``."""
        mapping.uncount()

    def drop_stale(self) -> None:
        """Unmap pools of processes that are gone once nothing here points into them."""
        with self._lock:
            for slot, m in list(self._mappings.items()):
                p = self._registry.processes[slot]
                if (p.state != L.USED or p.incarnation != m.incarnation) and m.retire():
                    m.pool.close(self._reservation)
                    del self._mappings[slot]

    def mapped_slots(self) -> list[int]:
        return sorted(self._mappings)

    def close(self) -> None:
        with self._lock:
            for slot, m in list(self._mappings.items()):
                if slot != self._own_slot:
                    m.pool.close(self._reservation)
            self._mappings.clear()
