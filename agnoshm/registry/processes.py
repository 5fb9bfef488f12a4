"""Processes in the registry: joining, leaving, liveness and reaping the dead."""

from __future__ import annotations

import os
import time

from agnoshm import _libc, faults
from agnoshm.errors import LimitReachedError, RegistryCorruptedError, RegistryError
from agnoshm.memory import BACKEND_CODES, BACKENDS
from agnoshm.names import SHM_DIR, queue_name
from agnoshm.registry import layout as L
from agnoshm.registry import liveness


class RegistryClosed(RegistryError):
    """The registry was unlinked by its last process between open and join: reopen."""


class Processes:
    """The :class:`Registry`'s process table: join, leave, who is alive, reaping."""

    def join(self, pid: int, backend: str, name: str) -> int:
        """Register this process; return its slot (also the index of its pool address).

        :raises LimitReachedError: if every slot is taken by a live process.
        """
        start_time = liveness.process_start_time(pid)
        with self.lock:
            if self.header.state == L.REGISTRY_CLOSED:
                raise RegistryClosed()
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
                self._close_and_unlink_locked()
        self.own_slot = -1
        return last

    def close_if_abandoned(self) -> bool:
        """Reap the dead; if no process is left alive, close and unlink the registry as its
        last process would have.  Return True if this call unlinked it.

        For a registry whose processes all died (``agnoshm clean``); the caller has not
        joined.  A process opening the registry meanwhile sees it closed and starts anew.
        """
        self.reap_dead()  # frees dead records, unlinks their pools and queues
        with self.lock:
            if self.header.state == L.REGISTRY_CLOSED or not self._name_is_ours():
                return False  # closed by another: the name may be a new registry's now
            if any(self.is_alive(slot) for slot in self.live_slots()):
                return False
            return self._close_and_unlink_locked()

    def _name_is_ours(self) -> bool:
        """Whether the registry's name still refers to the object this handle opened."""
        try:
            named = os.stat(SHM_DIR + self.name)
        except FileNotFoundError:
            return False
        mine = os.fstat(self._fd)
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    def _close_and_unlink_locked(self) -> bool:
        """Mark the registry closed (openers now start a new one) and unlink its name;
        return False if the name was gone already (global lock held)."""
        self.header.state = L.REGISTRY_CLOSED
        try:
            _libc.shm_unlink(self.name.encode())
            return True
        except FileNotFoundError:
            return False

    def is_alive(self, slot: int) -> bool:
        """Return True if the process registered in ``slot`` is running."""
        p = self.processes[slot]
        if p.state != L.USED:
            return False
        if slot == self.own_slot:
            return True
        return liveness.is_alive(self._fd, slot, p.pid, p.start_time)

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
