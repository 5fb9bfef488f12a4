"""The per-process wake-up: a futex word in the process's registry record.

A publisher rings every subscribing *process* once per message with one
``FUTEX_WAKE_OP`` (atomic increment and wake), so the cost of ``publish()``
grows with subscribing processes, not subscriptions.  A ring only says
"look"; the registry says what to take, so merged rings lose nothing.  A
waiter reads the word, checks its subscriptions, then sleeps only while the
word is unchanged.  ``busy_poll_us`` makes it spin that long first.  Before
it spins or sleeps, a waiter runs ``before_sleep`` (the runtime writes its
batched releases to the registry, so an idle subscriber holds nothing extra).
"""

from __future__ import annotations

import ctypes
import time

from agnoshm import _libc


class Doorbell:
    """The doorbell of one process slot."""

    __slots__ = ("address", "_word", "_busy_poll_ns", "ring", "_futex_wait", "_before_sleep")

    def __init__(self, address: int, busy_poll_us: int = 0, before_sleep=None):
        self.address = address
        self._before_sleep = before_sleep
        self._word = ctypes.c_uint32.from_address(address)
        self._busy_poll_ns = busy_poll_us * 1000
        #: ``ring()``: add one to the word and wake every waiter (thread-safe).
        self.ring = _libc.futex_ringer(address)
        self._futex_wait = _libc.futex_waiter(address)

    def value(self) -> int:
        return self._word.value

    def wait(self, seen: int, timeout_sec: float | None) -> None:
        """Return when the word differs from ``seen``, after ``timeout_sec``, or spuriously."""
        if self._before_sleep is not None:
            self._before_sleep()
        if self._busy_poll_ns:
            word = self._word
            clock = time.monotonic_ns
            deadline = clock() + self._busy_poll_ns
            while clock() < deadline:
                if word.value != seen:
                    return
        self._futex_wait(seen, timeout_sec)
