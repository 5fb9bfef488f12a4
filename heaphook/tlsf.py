"""Two-level segregated fit (TLSF) allocator over integer offsets of one pool.

Layout of the bookkeeping (all of it ordinary Python objects, none of it inside
the pool):

* ``_used``      offset -> block size of every allocated block;
* ``_free``      offset -> block size of every free block;
* ``_free_end``  end offset -> start offset of every free block (the "footer"
  boundary tag: freeing a block finds a free left neighbour through its own
  start offset, a free right neighbour through its own end offset in ``_free``);
* ``_lists``     one dict (offset -> size) per size class, indexed by the flat
  class number ``fl * 32 + sl``; a block is taken with ``popitem()``, so the
  block of a class freed last is reused first (its pages are warm);
* ``_fl_map`` and ``_sl_maps``: the two bitmap levels, Python ints.

Free blocks are always coalesced, so a free block never has a free physical
neighbour.  Every block size is a multiple of 16 and every block starts on a
multiple of 16.

Alignment of large blocks: a request of :data:`LARGE_BLOCK` bytes or more is
searched for with 48 extra bytes; when the block found is not 64-aligned its
leading 16, 32 or 48 bytes are split off as a free fragment.  A fragment's left
neighbour is never free (the block it came from was coalesced), so this stays
O(1), and freeing the large block later merges the fragment back.

Size classes: below 512 bytes one class per 16 bytes (``fl == 0``); from 512
bytes on, ``fl`` is the bit length of the size minus 9 and ``sl`` the next
five bits, i.e. 32 classes per power of two, each at most 1/32 of its sizes
wide.  Allocation uses "good fit": the request is rounded up to the next class
boundary, so the first block of the first non-empty class at or above it fits
without looking at its size.  Only when that finds nothing, the at most two
classes that the rounding skipped are probed for a block that fits, a bounded
number of entries each, before :class:`OutOfPoolMemory` is raised.
"""

from __future__ import annotations

import operator
from itertools import islice

__all__ = [
    "LARGE_ALIGNMENT",
    "LARGE_BLOCK",
    "MIN_ALIGNMENT",
    "OutOfPoolMemory",
    "TlsfAllocator",
    "alignment_for",
]

MIN_ALIGNMENT = 16
"""Every offset is a multiple of this; every block size too."""

LARGE_ALIGNMENT = 64
"""Alignment of blocks requested with :data:`LARGE_BLOCK` bytes or more."""

LARGE_BLOCK = 4096
"""Requests of at least this many bytes get :data:`LARGE_ALIGNMENT`."""

_SL_LOG2 = 5  # 32 second-level classes per power of two
_SMALL = 512  # below it: one class per 16 bytes (first level 0)
_PROBES = 16  # entries looked at per skipped class before giving up


class OutOfPoolMemory(MemoryError):
    """No free block of the pool can hold the request.

    :param requested: bytes asked for.
    :param free_bytes: bytes free in the pool at that moment.
    :param largest_free_block: size of the largest free block.
    :param pool_size: size of the pool.
    """

    def __init__(self, requested: int, free_bytes: int, largest_free_block: int, pool_size: int) -> None:
        self.requested = requested
        self.free_bytes = free_bytes
        self.largest_free_block = largest_free_block
        self.pool_size = pool_size
        super().__init__(
            f"cannot allocate {requested} bytes (aligned to {alignment_for(requested)}): "
            f"{free_bytes} bytes free, largest free block {largest_free_block} bytes, "
            f"pool size {pool_size} bytes; create a larger allocator or free blocks"
        )


def alignment_for(nbytes: int) -> int:
    """Alignment of the offset that a request of ``nbytes`` gets.

    :param nbytes: requested size in bytes.
    :returns: :data:`LARGE_ALIGNMENT` for ``nbytes >= LARGE_BLOCK``, else :data:`MIN_ALIGNMENT`.
    """
    return LARGE_ALIGNMENT if nbytes >= LARGE_BLOCK else MIN_ALIGNMENT


def _class_of(size: int) -> int:
    """Flat class number ``fl * 32 + sl`` of a block of ``size`` bytes.

    Below 512 bytes the class is ``size >> 4``.  From 512 on, with
    ``s = size.bit_length() - 6`` (the shift that keeps the top six bits),
    ``fl = s - 3`` and ``sl = (size >> s) - 32``, which flattens to
    ``32 * s - 128 + (size >> s)``.  The hot paths inline this formula.
    """
    if size < _SMALL:
        return size >> 4
    s = size.bit_length() - 6
    return (s << 5) - 128 + (size >> s)


def _as_size(nbytes: object) -> int:
    """Validate a request size that is not a plain ``int``."""
    if isinstance(nbytes, bool):
        raise TypeError(f"nbytes must be an integer, got {nbytes!r}")
    try:
        return operator.index(nbytes)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"nbytes must be an integer, got {nbytes!r}") from None


class TlsfAllocator:
    """O(1) allocator of aligned blocks of the offsets ``[reserve_front, size)``.

    :param size: pool size in bytes; a tail of less than 16 bytes is not used.
    :param reserve_front: bytes at the front that are never handed out (a
        header area), rounded up to 64.
    :raises TypeError: if ``size`` or ``reserve_front`` is not an integer.
    :raises ValueError: if fewer than 16 bytes remain to manage.
    """

    __slots__ = (
        "_size",
        "_start",
        "_end",
        "_used",
        "_free",
        "_free_end",
        "_lists",
        "_fl_map",
        "_sl_maps",
        "_used_bytes",
        "_high_water",
    )

    def __init__(self, size: int, *, reserve_front: int = 0) -> None:
        if not isinstance(size, int) or not isinstance(reserve_front, int):
            raise TypeError(f"size and reserve_front must be integers, got {size!r} and {reserve_front!r}")
        if reserve_front < 0:
            raise ValueError(f"reserve_front must be >= 0, got {reserve_front}")
        start = -(-reserve_front // LARGE_ALIGNMENT) * LARGE_ALIGNMENT
        end = size & -MIN_ALIGNMENT
        if end - start < MIN_ALIGNMENT:
            raise ValueError(
                f"pool of {size} bytes with reserve_front={reserve_front} leaves nothing to allocate"
            )
        self._size = size
        self._start = start
        self._end = end
        self._used: dict[int, int] = {}
        self._free: dict[int, int] = {}
        self._free_end: dict[int, int] = {}
        top = _class_of(end - start)
        self._lists: list[dict[int, int]] = [{} for _ in range(top + 1)]
        self._fl_map = 0
        self._sl_maps = [0] * ((top >> _SL_LOG2) + 1)
        self._used_bytes = 0
        self._high_water = 0
        self._insert(start, end - start)

    # -- hot path -----------------------------------------------------------

    def allocate(self, nbytes: int) -> int:
        """Carve a block of at least ``nbytes`` bytes out of the pool.

        :param nbytes: bytes wanted, > 0.
        :returns: offset of the block: a multiple of 16, of 64 if ``nbytes >= 4096``.
        :raises TypeError: if ``nbytes`` is not an integer.
        :raises ValueError: if ``nbytes <= 0``.
        :raises OutOfPoolMemory: if no free block can hold the request.
        """
        # Hot path: constants are spelled as literals (16-byte grain, 32
        # classes per power of two, 512 = _SMALL, 4096 = LARGE_BLOCK, 48 =
        # LARGE_ALIGNMENT - MIN_ALIGNMENT); class formulas as in _class_of.
        if nbytes.__class__ is not int:
            nbytes = _as_size(nbytes)
        if nbytes <= 0:
            raise ValueError(f"nbytes must be > 0, got {nbytes}")
        size = (nbytes + 15) & -16
        if nbytes >= 4096:
            need = size + 48
            mask = 63
        else:
            need = size
            mask = 0
        # Good fit: the class at or above `need` rounded up to a class boundary.
        if need < 512:
            idx = need >> 4
        else:
            s = need.bit_length() - 6
            idx = (s << 5) - 128 - (-need >> s)
        # Find first set at or above idx: second level, then first level.
        sl_maps = self._sl_maps
        fl = idx >> 5
        try:
            m = sl_maps[fl] & (-1 << (idx & 31))
        except IndexError:
            m = 0
        if not m:
            m = self._fl_map & (-1 << (fl + 1))
            if m:
                fl = (m & -m).bit_length() - 1
                m = sl_maps[fl]
        lists = self._lists
        if m:
            taken_idx = (fl << 5) | ((m & -m).bit_length() - 1)
            taken = lists[taken_idx]
            off, bsize = taken.popitem()
        else:
            off, bsize, taken_idx = self._probe(nbytes, size, mask, idx)
            taken = lists[taken_idx]
            del taken[off]
        free = self._free
        free_end = self._free_end
        del free[off]
        del free_end[off + bsize]
        pad = -off & mask
        if pad:  # split off a leading fragment for 64 alignment
            self._insert(off, pad)
            off += pad
            bsize -= pad
        rest = bsize - size
        if rest:
            # Split: the tail [off + size, off + bsize) becomes a free block
            # (inlined _insert; its right neighbour is not free).
            if rest < 512:
                idx = rest >> 4
            else:
                s = rest.bit_length() - 6
                idx = (s << 5) - 128 + (rest >> s)
            lst = lists[idx]
            if not lst:
                fl = idx >> 5
                sl_maps[fl] |= 1 << (idx & 31)
                self._fl_map |= 1 << fl
            tail = off + size
            lst[tail] = rest
            free[tail] = rest
            free_end[tail + rest] = tail
        if not taken:  # cleared last: the tail often refills the same class
            fl = taken_idx >> 5
            sm = sl_maps[fl] & ~(1 << (taken_idx & 31))
            sl_maps[fl] = sm
            if not sm:
                self._fl_map &= ~(1 << fl)
        self._used[off] = size
        self._used_bytes += size
        end = off + size
        if end > self._high_water:
            self._high_water = end
        return off

    def free(self, offset: int) -> None:
        """Give a block back and merge it with free physical neighbours.

        :param offset: an offset returned by :meth:`allocate` and not freed since.
        :raises ValueError: if ``offset`` is not the start of an allocated block.
        """
        size = self._used.pop(offset, None)
        if size is None:
            raise ValueError(
                f"free({offset!r}): not the start of an allocated block (double free or foreign offset)"
            )
        self._used_bytes -= size
        free = self._free
        free_end = self._free_end
        end = offset + size
        lists = self._lists
        nsize = free.pop(end, None)
        if nsize is not None:  # merge the free right neighbour (inlined _unlist)
            del free_end[end + nsize]
            if nsize < 512:
                right_idx = nsize >> 4
            else:
                s = nsize.bit_length() - 6
                right_idx = (s << 5) - 128 + (nsize >> s)
            right = lists[right_idx]
            del right[end]
            end += nsize
        else:
            right = None
        prv = free_end.pop(offset, None)
        if prv is not None:  # merge the free left neighbour
            del free[prv]
            self._unlist(prv, offset - prv)
            offset = prv
        # Enter [offset, end) as a free block (inlined _insert).
        size = end - offset
        if size < 512:
            idx = size >> 4
        else:
            s = size.bit_length() - 6
            idx = (s << 5) - 128 + (size >> s)
        lst = lists[idx]
        if not lst:
            fl = idx >> 5
            self._sl_maps[fl] |= 1 << (idx & 31)
            self._fl_map |= 1 << fl
        lst[offset] = size
        free[offset] = size
        free_end[end] = offset
        if right is not None and not right:  # cleared last, as in allocate
            fl = right_idx >> 5
            sm = self._sl_maps[fl] & ~(1 << (right_idx & 31))
            self._sl_maps[fl] = sm
            if not sm:
                self._fl_map &= ~(1 << fl)

    # -- free-list maintenance ---------------------------------------------

    def _insert(self, off: int, size: int) -> None:
        """Enter ``[off, off + size)`` as a free block (neighbours must not be free)."""
        if size < 512:  # inlined _class_of
            idx = size >> 4
        else:
            s = size.bit_length() - 6
            idx = (s << 5) - 128 + (size >> s)
        lst = self._lists[idx]
        if not lst:
            fl = idx >> 5
            self._sl_maps[fl] |= 1 << (idx & 31)
            self._fl_map |= 1 << fl
        lst[off] = size
        self._free[off] = size
        self._free_end[off + size] = off

    def _unlist(self, off: int, size: int) -> None:
        """Take the free block ``[off, off + size)`` out of its class list."""
        if size < 512:  # inlined _class_of
            idx = size >> 4
        else:
            s = size.bit_length() - 6
            idx = (s << 5) - 128 + (size >> s)
        lst = self._lists[idx]
        del lst[off]
        if not lst:
            fl = idx >> 5
            sm = self._sl_maps[fl] & ~(1 << (idx & 31))
            self._sl_maps[fl] = sm
            if not sm:
                self._fl_map &= ~(1 << fl)

    def _probe(self, nbytes: int, size: int, mask: int, search_idx: int) -> tuple[int, int, int]:
        """Look for a fitting block in the classes that good fit skipped.

        Those are the classes from ``size``'s own up to, not including,
        ``search_idx``: at most two.  Each is probed for :data:`_PROBES` entries.

        :returns: ``(offset, block size, class)`` of a block that fits.
        :raises OutOfPoolMemory: if none is found.
        """
        lists = self._lists
        for idx in range(_class_of(size), min(search_idx, len(lists))):
            for off, bsize in islice(lists[idx].items(), _PROBES):
                if bsize >= size + (-off & mask):
                    return off, bsize, idx
        raise OutOfPoolMemory(nbytes, self.free_bytes, self.largest_free_block, self._size)

    # -- introspection -------------------------------------------------------

    def size_of(self, offset: int) -> int:
        """Usable bytes of an allocated block (its request rounded up, maybe more).

        :param offset: start of an allocated block.
        :returns: the block size.
        :raises ValueError: if ``offset`` is not the start of an allocated block.
        """
        size = self._used.get(offset)
        if size is None:
            raise ValueError(f"size_of({offset!r}): not the start of an allocated block")
        return size

    @property
    def size(self) -> int:
        """Pool size in bytes, as given."""
        return self._size

    @property
    def start(self) -> int:
        """First managed offset: ``reserve_front`` rounded up to 64."""
        return self._start

    @property
    def end(self) -> int:
        """End of the managed offsets: ``size`` rounded down to 16."""
        return self._end

    @property
    def used_bytes(self) -> int:
        """Bytes in allocated blocks (rounded sizes)."""
        return self._used_bytes

    @property
    def free_bytes(self) -> int:
        """Managed bytes not in allocated blocks."""
        return self._end - self._start - self._used_bytes

    @property
    def allocated_blocks(self) -> int:
        """Number of allocated blocks."""
        return len(self._used)

    @property
    def largest_free_block(self) -> int:
        """Size of the largest free block, 0 if none.

        Cost: the number of free blocks in the highest non-empty size class.
        """
        if not self._fl_map:
            return 0
        fl = self._fl_map.bit_length() - 1
        idx = (fl << _SL_LOG2) | (self._sl_maps[fl].bit_length() - 1)
        return max(self._lists[idx].values())

    @property
    def high_water(self) -> int:
        """Highest block end ever handed out (0 before the first allocation)."""
        return self._high_water

    def fragmentation(self) -> float:
        """``1 - largest_free_block / free_bytes``; 0.0 when nothing is free.

        :returns: a figure in ``[0.0, 1.0)``: 0.0 means all free bytes are one block.
        """
        free_bytes = self.free_bytes
        if not free_bytes:
            return 0.0
        return 1.0 - self.largest_free_block / free_bytes

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(size={self._size}, used={self._used_bytes}, "
            f"free={self.free_bytes}, blocks={len(self._used)})"
        )
