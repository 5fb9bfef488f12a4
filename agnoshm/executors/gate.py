"""The runtime gate: executor threads stay out of shared memory once agnoshm shuts down.

Every thread that reads the doorbell or the registry on an executor's behalf
(the single-threaded spin, the multi-threaded workers, :mod:`agnoshm.aio`'s
waiter) enters through :data:`_gate` with a :class:`_Pass` of its own.
"""

from __future__ import annotations

import logging
import threading
import weakref

from agnoshm import context

_logger = logging.getLogger("agnoshm.executor")

_CLOSE_TIMEOUT = 10.0  # seconds agnoshm.shutdown() waits for executor threads to leave


class _Pass:
    """One thread's admission to a runtime's shared memory (see :class:`_RuntimeGate`)."""

    __slots__ = ("inside", "__weakref__")

    def __init__(self):
        self.inside = False


class _RuntimeGate:
    """Keeps executor threads out of a runtime's shared memory once it starts closing.

    A thread reads the doorbell and the registry only between ``enter`` and
    ``leave`` with its own :class:`_Pass`, which costs two attribute writes.
    ``agnoshm.shutdown()`` first drops the runtime (``context._runtime = None``),
    then calls :meth:`_close` (an ``on_shutdown`` callback) before it unmaps
    anything: that rings the doorbell and waits until no pass is inside.  A
    thread sets ``inside`` before it checks the runtime, and the closer drops the
    runtime before it checks ``inside``, so one of them always sees the other
    (the GIL orders these accesses).  A thread about to sleep on the doorbell
    checks the runtime again after reading the word, so it cannot sleep through
    the closer's ring.
    """

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._passes: "weakref.WeakSet[_Pass]" = weakref.WeakSet()
        self.closing = False
        self._watched = None  # the runtime whose shutdown calls _close()

    def new_pass(self) -> _Pass:
        ticket = _Pass()
        with self._cond:
            self._passes.add(ticket)
        return ticket

    def enter(self, ticket: _Pass, runtime) -> bool:
        """Enter ``runtime``'s shared memory; False if it is closing (then touch nothing)."""
        if runtime is not self._watched:
            self._watch(runtime)  # before the check below: see the class docstring
        ticket.inside = True
        # context.running(runtime), inline (every round of the wake-up loop comes here):
        # False too once a signal stopped agnoshm.
        if context._runtime is runtime and not runtime.closed and context._stopped_by is None:
            return True
        ticket.inside = False
        return False

    def leave(self, ticket: _Pass) -> None:
        ticket.inside = False
        if self.closing:
            with self._cond:
                self._cond.notify_all()

    def entry(self, ticket: _Pass, runtime) -> tuple:
        """``(enter, leave)``: :meth:`enter` and :meth:`leave` for ``ticket`` and ``runtime``
        as no-argument functions (the wake-up loop's, called every round: a closure costs
        a third of a ``functools.partial`` of a bound method).  ``runtime`` is watched now,
        before any check (see the class docstring); it stays watched until it shuts down."""
        if runtime is not self._watched:
            self._watch(runtime)
        cond = self._cond

        def enter() -> bool:
            ticket.inside = True
            if context._runtime is runtime and not runtime.closed and context._stopped_by is None:
                return True
            ticket.inside = False
            return False

        def leave() -> None:
            ticket.inside = False
            if self.closing:
                with cond:
                    cond.notify_all()
        return enter, leave

    def _watch(self, runtime) -> None:
        with self._cond:
            if runtime is not self._watched:
                context.on_shutdown(lambda: self._close(runtime))
                self._watched = runtime

    def _close(self, runtime) -> None:
        with self._cond:
            self.closing = True
            try:
                runtime.doorbell.ring()
            except Exception:
                pass
            if not self._cond.wait_for(lambda: not any(p.inside for p in self._passes),
                                       _CLOSE_TIMEOUT):
                _logger.warning("executor threads still use agnoshm's shared memory at shutdown")
            self.closing = False


_gate = _RuntimeGate()
