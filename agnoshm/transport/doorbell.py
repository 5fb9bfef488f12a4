"""The per-process wake-up: a futex word in the process's registry record.

A publisher rings every subscribing *process* once per message with one
``FUTEX_WAKE_OP`` (atomic increment and wake), so the cost of ``publish()``
grows with subscribing processes, not subscriptions.  A ring only says
"look"; the registry says what to take, so merged rings lose nothing.  A
waiter reads the word, checks its subscriptions, then sleeps only while the
word is unchanged.  ``busy_poll_us`` makes it spin that long first.  Before
it spins or sleeps, a waiter runs ``before_sleep`` (the runtime writes its
batched releases to the registry, so an idle subscriber holds nothing extra).

**Rings only for sleepers.**  A process that is busy taking messages needs no
wake-up, and the syscall is most of what ``publish()`` costs, so a publisher
rings only while the record's ``sleeping`` flag is set, and clears it as it
rings.  A waiter that finds the flag clear sets it (atomically, a full
barrier) and returns at once, so that its caller looks for messages once more
before sleeping.  Publisher: commit the entry, unlock (a full barrier on
x86), read the flag.  Waiter: set the flag, barrier, look.  One of the two
sees the other's write, so a message is never slept through: either the
publisher rings or the waiter finds the message.  A flag cleared by one
publisher while a waiter sets it again is harmless, because that publisher
rings right after clearing it.  Elsewhere than x86 the unlock is not a full
barrier, so publishers ring every time (:data:`RING_ONLY_SLEEPERS`).
"""

from __future__ import annotations

import ctypes
import platform
import time

from agnoshm import _libc

#: Publishers skip the ring while the subscribing process is awake (see the module doc).
RING_ONLY_SLEEPERS = platform.machine() in ("x86_64", "AMD64")


class Doorbell:
    """The doorbell of one process slot."""

    __slots__ = ("address", "_word", "_sleeping", "_set_sleeping", "_busy_poll_ns", "ring",
                 "_futex_wait", "_before_sleep")

    def __init__(self, address: int, sleeping_address: int, busy_poll_us: int = 0,
                 before_sleep=None):
        self.address = address
        self._word = ctypes.c_uint32.from_address(address)
        self._sleeping = ctypes.c_uint32.from_address(sleeping_address)
        self._set_sleeping = _libc.futex_setter(sleeping_address, 1)
        self._busy_poll_ns = busy_poll_us * 1000
        self._before_sleep = before_sleep
        #: ``ring()``: add one to the word and wake every waiter (thread-safe, unconditional).
        self.ring = _libc.futex_ringer(address)
        self._futex_wait = _libc.futex_waiter(address)

    def value(self) -> int:
        return self._word.value

    def wait(self, seen: int, timeout_sec: float | None) -> None:
        """Return when the word differs from ``seen``, after ``timeout_sec``, or spuriously.

        The caller reads ``seen``, looks for work, then calls this, in a loop.
        """
        if self._before_sleep is not None:
            self._before_sleep()
        if not self._sleeping.value:
            self._set_sleeping()  # publishers ring from now on; look once more first
            return
        if self._busy_poll_ns:
            word = self._word
            clock = time.monotonic_ns
            deadline = clock() + self._busy_poll_ns
            while clock() < deadline:
                if word.value != seen:
                    return
        self._futex_wait(seen, timeout_sec)


def publisher_ringer(doorbell_address: int, sleeping_address: int):
    """``ring()`` for a publisher: rings the doorbell only while its process may sleep."""
    ring = _libc.futex_ringer(doorbell_address)
    if not RING_ONLY_SLEEPERS:
        return ring
    sleeping = ctypes.c_uint32.from_address(sleeping_address)

    def ring_if_sleeping() -> None:
        if sleeping.value:
            sleeping.value = 0
            ring()
    return ring_if_sleeping
