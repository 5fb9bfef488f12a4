"""Freed message blocks kept for the next message of the same size: the allocator's fast path.

A publisher sends the same sizes again and again (a camera's frames), so a
freed block is kept in a small list keyed by its requested size and handed out
again without going through the TLSF allocator: at most ``per_size`` blocks a
size and ``max_bytes`` in all; the rest goes to and comes from the allocator
itself (two functions the cache is given).  :class:`BlockCache` also knows the
requested size of every live block, which is how a free finds its list.

This class is the reference; ``agnoshm._native._ring.BlockCache`` is its C
twin, the same methods with the same results.  Each step on the kept blocks is
one that other threads see whole: here under the cache's lock, in C because it
runs no Python code (it holds the GIL throughout, so it needs no lock).  The
allocator's own functions run outside that step, under the allocator's lock.
"""

from __future__ import annotations

import threading


class BlockCache:
    """Live blocks' requested sizes, and freed blocks kept by size for reuse.

    :param per_size: blocks kept at most for one requested size.
    :param max_bytes: bytes kept at most over all sizes.
    :param allocate_new: ``allocate_new(nbytes) -> address``: a block from the allocator
        itself, when none of that size is kept (raises as the allocator does).
    :param give_back: ``give_back(address)``: return a freed block to the allocator, when
        there is no room to keep it.
    """

    __slots__ = ("_sizes", "_spare", "_lock", "_allocate_new", "_give_back", "spare_bytes",
                 "per_size", "max_bytes")

    def __init__(self, per_size: int, max_bytes: int, allocate_new, give_back):
        self._sizes: dict[int, int] = {}  # address -> requested size, of live blocks
        self._spare: dict[int, list[int]] = {}  # requested size -> kept addresses
        self._lock = threading.Lock()
        self._allocate_new = allocate_new
        self._give_back = give_back
        self.spare_bytes = 0  #: bytes of the kept blocks
        self.per_size = per_size
        self.max_bytes = max_bytes

    def allocate(self, nbytes: int) -> int:
        """A block of ``nbytes``: a kept one of exactly that size, else ``allocate_new``'s."""
        lock = self._lock  # acquire/release: a ``with`` costs twice as much (every message)
        lock.acquire()
        try:
            spare = self._spare.get(nbytes)
            if spare:
                address = spare.pop()
                self.spare_bytes -= nbytes
                self._sizes[address] = nbytes
                return address
        finally:
            lock.release()
        address = self._allocate_new(nbytes)  # outside the lock: it may drain()
        self._sizes[address] = nbytes
        return address

    def free(self, address: int) -> None:
        """Free live block ``address``: keep it for its size, or ``give_back`` it.

        :raises KeyError: if ``address`` is not a live block (freed twice, or never ours).
        """
        lock = self._lock
        lock.acquire()
        try:
            nbytes = self._sizes.pop(address)
            spare = self._spare.get(nbytes)
            if spare is None:
                spare = self._spare[nbytes] = []
            if len(spare) < self.per_size and self.spare_bytes + nbytes <= self.max_bytes:
                spare.append(address)
                self.spare_bytes += nbytes
                return
        finally:
            lock.release()
        self._give_back(address)

    def drain(self) -> list[int]:
        """Forget every kept block and return their addresses (the caller gives them back)."""
        with self._lock:
            addresses = [a for spare in self._spare.values() for a in spare]
            self._spare.clear()
            self.spare_bytes = 0
            return addresses

    def kept(self) -> list[int]:
        """The addresses of the kept blocks."""
        with self._lock:
            return [a for spare in self._spare.values() for a in spare]

    def size_of(self, address: int) -> int:
        """The requested size of live block ``address``; 0 if it is not live."""
        return self._sizes.get(address, 0)
