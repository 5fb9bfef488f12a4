"""heaphook: the allocator that carves messages out of one shared-memory pool.

heaphook is a TLSF (two-level segregated fit) allocator.  It manages the
integer offsets ``[reserve_front, size)`` of one pool; it never touches the
pool's memory, and it knows nothing of topics, messages or processes.  Its
bookkeeping lives in ordinary Python objects of the owning process, so the
pool holds message bytes only.  :meth:`TlsfAllocator.allocate` and
:meth:`TlsfAllocator.free` are O(1): a handful of dict and int operations,
whatever the number of blocks.

Alignment rules (offsets are relative to the pool base, which must itself be
at least 64-aligned, e.g. page-aligned):

* every returned offset is a multiple of :data:`MIN_ALIGNMENT` (16);
* a request of :data:`LARGE_BLOCK` (4096) bytes or more gets an offset that is
  a multiple of :data:`LARGE_ALIGNMENT` (64: a cache line; also fine for
  numpy and SIMD);
* block sizes are rounded up to a multiple of 16.

:func:`alignment_for` gives the alignment for a request size.
"""

from heaphook.tlsf import (
    LARGE_ALIGNMENT,
    LARGE_BLOCK,
    MIN_ALIGNMENT,
    OutOfPoolMemory,
    TlsfAllocator,
    alignment_for,
)

__all__ = [
    "LARGE_ALIGNMENT",
    "LARGE_BLOCK",
    "MIN_ALIGNMENT",
    "OutOfPoolMemory",
    "TlsfAllocator",
    "alignment_for",
]
