"""The ``agnoshm-ros-dispatch`` thread: agnoshm doorbell rings become rclpy executor wake-ups.

One thread per process, alive while at least one callback subscription on an
rclpy node exists.  It sleeps on the process's doorbell (a futex wait that
releases the GIL; publishers ring it once per message for every subscribing
process), and on each ring asks every subscription to signal its executor if
it has data and no signal outstanding (``sub._poke()``: a guard condition
``trigger()``, which rcl allows from any thread, or ``executor.create_task``).
Once per :data:`SWEEP_PERIOD` it also asks each subscription to notice a node,
guard or context that went away without telling agnoshm (``sub._sweep()``).

It never polls in Python, and never takes an rclpy context's lock (the
``on_shutdown`` callback holds it while it joins this thread).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from agnoshm import context
from agnoshm.transport.waiting import wait_for_work

_logger = logging.getLogger("agnoshm.ros")

#: Seconds between the background thread's checks for nodes destroyed behind its
#: back (e.g. ``rclpy.node.Node.destroy_node(node)`` called on the class) and for
#: contexts shut down by rclpy's signal handler.
SWEEP_PERIOD = 1.0

THREAD_NAME = "agnoshm-ros-dispatch"

_lock = threading.Lock()
_dispatcher: "Dispatcher | None" = None


class Dispatcher:
    """One thread per process: wait on the doorbell, signal subscriptions that have data."""

    def __init__(self, runtime):
        self.runtime = runtime
        self._subs: tuple = ()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def add(self, sub) -> None:
        """Start signalling ``sub`` (starting the thread if needed)."""
        with self._lock:
            self._subs += (sub,)
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                                name=THREAD_NAME, daemon=True)
                self._thread.start()
        sub._poke()  # TRANSIENT_LOCAL: data may be there already

    def remove(self, sub) -> None:
        """Stop signalling ``sub``; the last one out stops (and joins) the thread."""
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)
            if self._subs:
                return
            detached = self._detach_locked()
        self._join(*detached)

    def stop(self) -> None:
        """Stop and join the thread (agnoshm shutdown); it restarts on the next add."""
        with self._lock:
            self._subs = ()
            detached = self._detach_locked()
        self._join(*detached)

    def _detach_locked(self):
        thread, stop = self._thread, self._stop
        self._thread = self._stop = None
        return thread, stop

    def _join(self, thread, stop) -> None:
        if thread is None:
            return
        stop.set()
        if not self.runtime.closed:
            self.runtime.doorbell.ring()
        if thread is not threading.current_thread():  # not from the thread itself (sweep)
            thread.join()

    def _run(self, stop: threading.Event) -> None:
        next_sweep = time.monotonic() + SWEEP_PERIOD

        def look() -> tuple:
            """Poke every subscription (sweep them when due); never finds work to return."""
            nonlocal next_sweep
            for sub in self._subs:
                try:
                    sub._poke()
                except Exception:
                    _logger.exception("signalling subscription on %s failed", sub.topic_name)
            if time.monotonic() >= next_sweep:
                for sub in self._subs:
                    try:
                        sub._sweep()
                    except Exception:
                        _logger.exception("checking subscription on %s failed", sub.topic_name)
                next_sweep = time.monotonic() + SWEEP_PERIOD
            return None, max(0.0, next_sweep - time.monotonic())

        # Returns once stopped: _join sets ``stop``, then rings.
        wait_for_work(self.runtime.doorbell, look, stop=stop.is_set)


def current() -> Dispatcher | None:
    """The process's dispatcher, if one was made."""
    return _dispatcher


def get_dispatcher(runtime) -> Dispatcher:
    """The dispatcher of ``runtime``; one of an older (shut down) runtime is stopped."""
    global _dispatcher
    with _lock:
        if _dispatcher is not None and _dispatcher.runtime is runtime:
            return _dispatcher
        old, _dispatcher = _dispatcher, Dispatcher(runtime)
        dispatcher = _dispatcher
    if old is not None:
        old.stop()
    context.on_shutdown(dispatcher.stop)  # joined before agnoshm closes the doorbell
    return dispatcher


def _forget_after_fork() -> None:
    global _lock, _dispatcher
    _lock = threading.Lock()
    _dispatcher = None


os.register_at_fork(after_in_child=_forget_after_fork)
