"""The lock-free message path: who writes which shared word, and why it is safe.

Per message no process takes a lock and no shared word has two writers.  The
registry's last two tables (``registry/layout.py``) hold the path:

==========================  ================================  ===========================
word                        written by                        read by
==========================  ================================  ===========================
channel ``ident``           the registry, creating the        subscribers (is it still the
                            publisher (global lock)           publisher they know?)
entry ``e``: address,       the publisher                     subscribers
size, timestamp, ``seq``
``log[s % R]`` =            the publisher                     subscribers (which entry
``s << 16 | e``                                               carries ``s``?)
``head``                    the publisher                     subscribers
receipts ``cursors[pp]``    the subscribing process           the publisher (linger)
receipts ``holds[pp, e]``   the subscribing process           the publisher (reclaim)
process ``sleeping``        that process                      publishers
process ``doorbell``        the kernel (``FUTEX_WAKE_OP``'s   that process
                            atomic add, for any publisher)
==========================  ================================  ===========================

``pp`` is the publisher's position in its topic, ``e`` an entry index,
``R`` the channel's number of entries.

**Publish** (publisher): (a) write the entry's address, size and timestamp,
then its ``seq``; (b) write ``log`` then ``head``; (c) withdraw the entry that
left the depth (its ``seq = 0``); (d) :func:`full_fence`; (e) ring every
subscribing process whose ``sleeping`` is set; (f) read the withdrawn entry's
``holds`` in every subscription's receipts: free it when all are 0, else read
them again later (on a loan, a publish or the listener's pass).

**Take** (subscriber): (1) read ``head``, then ``log`` for each new ``s`` (a
word naming another ``s`` was overwritten: that message left the depth);
(2) read the entry (``seq`` must be ``s``); (3) add 1 to its own
``holds[pp, e]``; (4) :func:`full_fence`; (5) read the entry's ``seq`` and the
channel's ``ident`` again: if either changed, take the hold back and skip the
message.  **Release**: subtract 1 from ``holds[pp, e]``, ordered after every
read of the message (a release store): a publisher that reads 0 (an acquire
load) frees and reuses the blocks, and on a CPU that may let a store pass
earlier loads (aarch64) a late read would see the next message.  x86-64 never
does; elsewhere :func:`full_fence` goes before the subtraction.  No fence after
it: a publisher that reads the old count only frees the entry later.

*No use after free.*  (c)-(d)-(f) and (3)-(4)-(5) are Dekker's pattern: each
side stores, fences, then loads the other's word, so at least one sees the
other's store.  If the publisher read ``holds == 0``, the subscriber's (5)
sees ``seq != s`` and skips; if the subscriber read ``seq == s``, the
publisher sees the hold and keeps the entry.  ``seq`` goes ``s -> 0 -> s'``
with ``s' > s``, so ``seq == s`` in (5) also proves that the fields read in
(2) belong to ``s`` (a seqlock).  A publisher reads the holds of the
subscriptions its topic lists; it reads the topic's ``generation`` after its
fence and refreshes that list when it moved.  A subscription is listed
(``generation`` bumped) before it can take anything, so one that the
publisher's list misses cannot have passed (4) before the publisher's fence:
its (5) sees the withdrawal.

*No lost wake-up.*  A subscriber thread about to sleep sets its process's
``sleeping`` (the process counts its sleeping threads under a lock), fences,
reads the ``doorbell`` word, looks for messages once more, and sleeps in
``FUTEX_WAIT`` only while the word is unchanged.  A publisher writes
``head``, fences (d), then reads ``sleeping`` (e).  If it read 0, the
subscriber's look comes after the ``head`` store and finds the message; if
it read 1, it adds 1 to the word and wakes the sleepers, and a ``FUTEX_WAIT``
that starts after the add returns at once.  Only the sleeping process clears
its flag, so no publisher can overwrite a fresh "I sleep" with "awake".

*Other CPUs.*  On x86-64 (total store order) stores are seen in program order
and loads are not reordered with loads, so (a)-(b) and (1)-(2) need no fence
(:func:`store_fence`, :func:`load_fence` are no-ops there); only the
store-then-load steps (d) and (4) need the full fence, a locked instruction.
Elsewhere every fence is a ``FUTEX_WAKE_OP`` on a private word, whose atomic
operation the kernel brackets with full barriers (``dmb ish`` on arm64):
slower, and correct.

*The native path* (``agnoshm/_native/ring.c``) does the same steps on the same
words with C11 atomics, so it is correct on any CPU without the kernel's help:
(a)'s ``seq`` and (b)'s ``log`` and ``head`` are release stores, (1)'s ``head``,
``log`` and (2)'s ``seq`` acquire loads (what :func:`store_fence` and
:func:`load_fence` stand for); (d) and (4) are
``atomic_thread_fence(memory_order_seq_cst)`` (Dekker's pattern needs a fence on
both sides; a C side and a Python side pair up as two of either would); every
other shared word is a relaxed atomic load or store.
"""

from __future__ import annotations

import ctypes
import platform
import threading

from agnoshm import _libc

#: True where the CPU keeps stores in order and loads in order (x86-64).
TOTAL_STORE_ORDER = platform.machine() in ("x86_64", "AMD64")

_fence_word = ctypes.c_uint32(0)
#: A full fence on every CPU: an atomic store by the kernel (``FUTEX_WAKE_OP``) to a
#: private word; what every fence is off x86-64 (a syscall: slower than a locked insn).
futex_fence = _libc.futex_setter(ctypes.addressof(_fence_word), 0)

if TOTAL_STORE_ORDER:
    _fence_lock = threading.Lock()
    _acquire = _fence_lock.acquire
    _release = _fence_lock.release

    def full_fence() -> None:
        """Order every earlier store of this thread before every later load.

        ``Lock.acquire`` and ``Lock.release`` are locked read-modify-write
        instructions (a semaphore's or mutex's compare-and-swap, an atomic add),
        which on x86-64 drain the store buffer: a full fence.
        """
        _acquire()
        _release()

    def store_fence() -> None:
        """Order earlier stores before later stores (x86-64 does already)."""

    def load_fence() -> None:
        """Order earlier loads before later loads (x86-64 does already)."""
else:  # pragma: no cover - exercised on other CPUs only
    full_fence = store_fence = load_fence = futex_fence

