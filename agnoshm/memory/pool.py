"""A pool: one process's shared memory, mapped at its slot address.

:class:`Pool` is what every backend returns (``memory/backend.py``): the
owner's writable mapping or a peer's read-only one.
:class:`PoolAllocator` carves the owner's pool with heaphook's TLSF allocator
and commits pages (``fallocate``) before handing them out, so a full
``/dev/shm`` is a clear error at allocation time, never a ``SIGBUS`` later.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from typing import TYPE_CHECKING

from agnoshm import _libc
from agnoshm.errors import PoolAccessError, PoolExhaustedError
from agnoshm.memory.spares import BlockCache
from heaphook import OutOfPoolMemory, TlsfAllocator

if TYPE_CHECKING:
    from agnoshm.memory.backend import PoolBackend

COMMIT_CHUNK = 4 << 20
SPARE_PER_SIZE = 4
SPARE_BYTES = 64 << 20


class Pool:
    """A mapping of one process's pool at its fixed address.

    .. warning:: Users do not create pools; the runtime does.
    """

    _fd = -1  # class-level defaults: close() runs safely after a failed __init__
    _mapped = False

    def __init__(self, name: str, address: int, size: int, *, writable: bool, fd: int,
                 backend: PoolBackend, pid: int):
        self.name = name
        self.address = address
        self.size = size
        self.writable = writable
        self.backend = backend
        self.pid = pid  # the owner's
        self._fd = fd
        self._mapped = True
        raw = memoryview((ctypes.c_char * size).from_address(address)).cast("B")
        self.buffer = raw if writable else raw.toreadonly()

    @property
    def fd(self) -> int:
        return self._fd

    def contains(self, address: int, size: int) -> bool:
        return self.address <= address and address + size <= self.address + self.size

    def commit(self, offset: int, length: int) -> None:
        """Back ``[offset, offset + length)`` with pages now (owner only).

        :raises PoolExhaustedError: if the memory filesystem is full.
        """
        if not _libc.fallocate(self._fd, offset, length):
            raise PoolExhaustedError(
                f"no memory left to back pool {self.name} ({length} more bytes at offset "
                f"{offset}): /dev/shm or RAM is full; free space in /dev/shm (agnoshm clean "
                "removes what dead processes left) or lower message sizes")

    def unlink(self) -> bool:
        """Remove the pool's name (owner only), so no process opens it any more.

        The mapping stays usable. Return False if there was no name (a memfd has none).
        """
        if not self.writable:
            raise PoolAccessError(errno.EPERM, f"only the owner of pool {self.name} unlinks it")
        return self.backend.unlink(self.pid)

    def close(self, reservation) -> None:
        """End this process's access: the slot goes back to the reservation."""
        if self._mapped:
            self._mapped = False
            try:
                self.buffer.release()
            except BufferError:  # a caller still holds a slice; the range becomes PROT_NONE
                pass
            reservation.give_back(self.address, self.size)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        mode = "rw" if self.writable else "ro"
        return f"Pool({self.name!r}, 0x{self.address:x}, size={self.size}, {mode}, {self.backend.name})"


class PoolAllocator:
    """Thread-safe message allocation in the owner's pool, in absolute addresses.

    Freed blocks are kept for the next message of the same size
    (:class:`~agnoshm.memory.spares.BlockCache`: at most :data:`SPARE_PER_SIZE`
    blocks a size and :data:`SPARE_BYTES` bytes in all) and go back to the TLSF
    allocator whenever an allocation would otherwise fail.

    :param native: the C extension (``agnoshm._native._ring``), whose ``BlockCache``
        keeps the blocks without a lock, or None (the pure-Python reference).
    """

    def __init__(self, pool: Pool, native=None):
        self.pool = pool
        self._tlsf = TlsfAllocator(pool.size)
        self._lock = threading.Lock()  # the TLSF allocator and the committed size
        self._committed = 0
        cache_type = BlockCache if native is None else native.BlockCache
        self._cache = cache = cache_type(SPARE_PER_SIZE, SPARE_BYTES, self._allocate_new,
                                         self._give_back)
        #: ``allocate(nbytes) -> address``: a new block of at least ``nbytes``; raises
        #: :class:`PoolExhaustedError` if no block is large enough (the cache's method: a
        #: kept block costs no Python frame on the native path)
        self.allocate = cache.allocate
        #: ``free(address)``: give a block back (kept for its size, or to TLSF)
        self.free = cache.free
        #: ``size_of(address)``: the size a live block was allocated with (0: not live)
        self.size_of = cache.size_of

    def _allocate_new(self, nbytes: int) -> int:
        lock = self._lock
        lock.acquire()
        try:
            return self.pool.address + self._allocate_locked(nbytes)
        finally:
            lock.release()

    def _allocate_locked(self, nbytes: int) -> int:
        try:
            offset = self._tlsf.allocate(nbytes)
        except OutOfPoolMemory:
            self._release_spares_locked()
            try:
                offset = self._tlsf.allocate(nbytes)
            except OutOfPoolMemory as err:
                raise PoolExhaustedError(
                    f"pool {self.pool.name} has no block of {nbytes} bytes "
                    f"({self._tlsf.free_bytes} bytes free, largest block "
                    f"{self._tlsf.largest_free_block}): raise pool_size (AGNOSHM_POOL_SIZE), "
                    "lower the publishers' depth, or drop references to received messages"
                ) from err
        end = offset + nbytes  # not high_water: after a failed commit it stays above
        if end > self._committed:  # the committed part, and every later loan would fail
            self._commit_to(end, offset)
        return offset

    def _commit_to(self, end: int, offset: int) -> None:
        target = min(self.pool.size, (end + COMMIT_CHUNK - 1) // COMMIT_CHUNK * COMMIT_CHUNK)
        try:
            self.pool.commit(self._committed, target - self._committed)
        except PoolExhaustedError:
            self._tlsf.free(offset)
            raise
        self._committed = target

    def _give_back(self, address: int) -> None:
        lock = self._lock
        lock.acquire()
        try:
            self._tlsf.free(address - self.pool.address)
        finally:
            lock.release()

    def _release_spares_locked(self) -> None:
        base = self.pool.address
        for address in self._cache.drain():
            self._tlsf.free(address - base)

    @property
    def used_bytes(self) -> int:
        """Bytes handed out and not freed (spare blocks do not count)."""
        with self._lock:
            base = self.pool.address
            return self._tlsf.used_bytes - sum(self._tlsf.size_of(a - base)
                                               for a in self._cache.kept())

    @property
    def committed_bytes(self) -> int:
        return self._committed
