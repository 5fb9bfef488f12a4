"""The per-process wake-up: a futex word in the process's registry record.

A publisher rings every subscribing *process* at most once per message with
one ``FUTEX_WAKE_OP`` (atomic add and wake), so the cost of ``publish()``
grows with subscribing processes, not subscriptions.  A ring only says
"look"; the channels say what to take, so merged rings lose nothing.

**Rings only for sleepers.**  The syscall is most of what a ring costs, and a
process that is busy taking messages needs none, so a publisher rings only
while the process's ``sleeping`` flag is set.  The process owns that flag:
it counts its threads that may sleep and sets the flag while there is one,
and only it clears it (a publisher that cleared it could overwrite a fresh
set and lose a wake-up).  A waiting thread *arms* (counts itself, sets the
flag, full fence), reads the word, looks for messages once more, and sleeps
only while the word is unchanged; then it *disarms*.  The argument that no
message is slept through is in :mod:`agnoshm.transport.ring`.

The callers' loop: ``seen = value()``; look; ``wait(seen, timeout)``.  The
first ``wait`` of a thread arms and returns at once, so that the caller looks
once more after arming; the next one sleeps and disarms when it wakes.
``busy_poll_us`` is for the wake-up loop (``waiting.py``): it spins that long
looking for work, awake, before it arms.
"""

from __future__ import annotations

import ctypes
import functools
import threading

from agnoshm import _libc
from agnoshm.transport.ring import full_fence


class Doorbell:
    """The doorbell of one process slot (pure Python: ctypes words, a thread-local).

    :class:`NativeDoorbell` does the same steps in C.
    """

    __slots__ = ("address", "_word", "_sleeping", "sleepers", "_lock", "_armed",
                 "busy_poll_ns", "ring", "value", "_futex_wait")

    #: whether ``disarm()`` costs less than reading ``sleepers`` first (it is C)
    cheap_disarm = False

    def __init__(self, address: int, sleeping_address: int, busy_poll_us: int = 0):
        self.address = address
        self._word = ctypes.c_uint32.from_address(address)
        self._sleeping = ctypes.c_uint32.from_address(sleeping_address)
        #: threads armed now (written under the lock; a racy read is enough to skip disarm())
        self.sleepers = 0
        self._lock = threading.Lock()
        self._armed = threading.local()
        #: how long a waiter spins looking for work before it arms (the wake-up loop's job)
        self.busy_poll_ns = busy_poll_us * 1000
        #: ``ring()``: add one to the word and wake every waiter (thread-safe, unconditional).
        #: ``value()``: the word now (a plain load; the wake-up loop reads it every round,
        #: so it is a C call, not a Python method).
        self.value = functools.partial(getattr, self._word, "value")
        self.ring = _libc.futex_ringer(address)
        self._futex_wait = _libc.futex_waiter(address)

    def armed(self) -> bool:
        """Whether the calling thread is armed (publishers ring for it)."""
        return getattr(self._armed, "on", False)

    def arm(self) -> None:
        """Count this thread as one that may sleep: publishers ring from now on."""
        armed = self._armed
        if getattr(armed, "on", False):
            return
        lock = self._lock  # acquire/release: a ``with`` costs twice as much (every message)
        lock.acquire()
        try:
            self.sleepers += 1
            self._sleeping.value = 1
        finally:
            lock.release()
        armed.on = True
        full_fence()  # the flag before the caller's next look (ring.py)

    def disarm(self) -> None:
        """This thread is awake: publishers need not ring for it any more."""
        if not self.sleepers:  # no thread is armed (the usual case when work is found)
            return
        armed = self._armed
        if getattr(armed, "on", False):
            armed.on = False
            lock = self._lock
            lock.acquire()
            try:
                self.sleepers -= 1
                if not self.sleepers:
                    self._sleeping.value = 0
            finally:
                lock.release()

    def wait(self, seen: int, timeout_sec: float | None) -> None:
        """Return when the word differs from ``seen``, after ``timeout_sec``, or spuriously.

        The caller reads ``seen``, looks for work, then calls this, in a loop.  The
        first call arms and returns at once (look once more); the next sleeps.
        """
        if not getattr(self._armed, "on", False):
            self.arm()
            return
        try:
            self._futex_wait(seen, timeout_sec)
        finally:
            self.disarm()


class NativeDoorbell:
    """:class:`Doorbell`'s interface with ``arm``, ``disarm``, ``armed`` and ``wait`` in C
    (``agnoshm._native``'s ``Futex``): the same steps on the same words, with the armed
    threads in a set of idents instead of a thread-local, and no lock (each C call runs
    no Python code, so the GIL makes it whole).  A sleeping receiver arms and disarms once
    a message: in Python that was about 9k instructions, in C a few hundred.
    """

    __slots__ = ("address", "busy_poll_ns", "value", "ring", "arm", "disarm", "armed", "wait",
                 "_futex")
    cheap_disarm = True

    def __init__(self, address: int, sleeping_address: int, busy_poll_us: int, native):
        """:param native: the C extension (``agnoshm._native._ring``)."""
        self.address = address
        self.busy_poll_ns = busy_poll_us * 1000
        futex = self._futex = native.Futex(address, sleeping_address)
        self.value, self.ring = futex.value, futex.ring
        self.arm, self.disarm, self.armed, self.wait = (futex.arm, futex.disarm, futex.armed,
                                                        futex.sleep)

    @property
    def sleepers(self) -> int:
        """Threads armed now (a racy read is enough to skip disarm())."""
        return self._futex.sleepers
