"""How matched counts changes are noticed: the ``agnoshm-matched`` thread.

Nothing on the message path knows about matched events.  The registry's
``generation`` (:meth:`~agnoshm.registry.snapshot.Reads.generation`) changes
whenever a process, topic or endpoint comes or goes, a dead process is reaped
(within a second, by any process's housekeeping) or a bridge's relayed count
changes.  One thread per process, alive only while an endpoint has a matched
callback or a thread waits in ``wait_for_subscription`` / ``wait_for_publisher``,
reads that number every :data:`POLL_SEC` seconds (one load from shared memory);
only when it changed does it recount the watched endpoints' topics.  New
endpoints ring no doorbell, so this bounded poll is what makes events timely: a
change is seen within :data:`POLL_SEC`.

Changes accumulate per endpoint as rmw's matched status does, and are handed to
the endpoint's executor as a task (``executor.create_task``, agnoshm's or
rclpy's), so the callback runs in the thread that spins the node, never here.
A node in no executor yet keeps its changes until it is added to one.  Changes
that cancel out between two looks (an endpoint created and destroyed within
:data:`POLL_SEC`) are not seen.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref

from agnoshm import context
from agnoshm.events import MatchedInfo

_logger = logging.getLogger("agnoshm.events")

#: Seconds between two reads of the registry's generation by the matched thread.
POLL_SEC = 0.05

THREAD_NAME = "agnoshm-matched"

_lock = threading.Lock()
_watcher: "Watcher | None" = None


class MatchedHandler:
    """One endpoint's matched status and callback (holds the endpoint weakly)."""

    def __init__(self, endpoint, callback):
        self._endpoint = weakref.ref(endpoint)
        self.callback = callback
        self._lock = threading.Lock()
        self._current = 0
        self._total = 0
        self._total_change = 0
        self._current_change = 0
        self._scheduled = None  # the executor a task of ours is pending in

    @property
    def alive(self) -> bool:
        endpoint = self._endpoint()
        return endpoint is not None and endpoint._port is not None

    def observe(self) -> None:
        """Recount the other side of the topic; accumulate the change (matched thread)."""
        endpoint = self._endpoint()
        if endpoint is None or endpoint._port is None:
            return
        with self._lock:  # the read too: two observers never apply counts out of order
            count = endpoint._matched_count()
            delta = count - self._current
            if delta:
                self._current = count
                self._current_change += delta
                if delta > 0:
                    self._total += delta
                    self._total_change += delta

    def deliver(self) -> None:
        """Schedule the callback in the node's executor if a change waits (matched thread)."""
        with self._lock:
            if not (self._current_change or self._total_change):
                return
            endpoint = self._endpoint()
            executor = None if endpoint is None else _executor_of(endpoint)
            if executor is None or executor is self._scheduled:
                return  # not spun yet (kept until it is), or its task is pending there
            self._scheduled = executor  # a task left in another (shut down) one is replaced
        try:
            executor.create_task(self._run)
        except Exception:  # e.g. an rclpy executor shut down meanwhile: try again later
            with self._lock:
                self._scheduled = None

    def _run(self):
        """The task: take the accumulated status (as rmw does) and call back."""
        with self._lock:
            self._scheduled = None
            if not (self._current_change or self._total_change) or not self.alive:
                return None
            info = MatchedInfo(self._total, self._total_change, self._current,
                               self._current_change)
            self._total_change = self._current_change = 0
        try:
            return self.callback(info)
        except Exception as exc:
            endpoint = self._endpoint()
            _logger.error("matched callback of %s raised %s: %s; the executor carries on",
                          endpoint, type(exc).__name__, exc, exc_info=exc)
            return None


def _executor_of(endpoint):
    """The executor spinning ``endpoint``'s node (agnoshm's or rclpy's), or None."""
    from agnoshm.node import Node

    owner = endpoint._node
    if isinstance(owner, Node):
        return owner.executor
    node = owner.node  # a NodeBinding: its rclpy node, None once gone
    return None if node is None else node.executor


class Watcher:
    """The process's matched thread (see the module docstring)."""

    def __init__(self, runtime):
        self.runtime = runtime
        self._changed = threading.Condition()
        self._handlers: list[MatchedHandler] = []
        self._waiters = 0
        self._changes = 0  # generation changes seen: waiters wait for it to move
        self._thread: threading.Thread | None = None
        self._stopped = False

    def watch(self, endpoint, callback) -> MatchedHandler:
        """Call ``callback(MatchedInfo)`` in ``endpoint``'s executor when its count changes;
        the first call reports the endpoints matched already."""
        handler = MatchedHandler(endpoint, callback)
        with self._changed:
            self._handlers.append(handler)
            self._start_locked()
        handler.observe()  # after the thread's first read: no change is missed between
        return handler

    def wait(self, predicate, timeout_sec: float | None) -> bool:
        """Wait until ``predicate()`` (a registry read) holds; False after ``timeout_sec``
        (None or negative: forever) or at shutdown."""
        deadline = None if timeout_sec is None or timeout_sec < 0 else \
            time.monotonic() + timeout_sec
        with self._changed:
            self._waiters += 1
            self._start_locked()
        try:
            while True:
                seen = self._changes
                if self._stopped or not context.running(self.runtime):
                    return False
                if predicate():
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                with self._changed:
                    self._changed.wait_for(lambda: self._changes != seen or self._stopped, left)
        finally:
            with self._changed:
                self._waiters -= 1

    def _start_locked(self) -> None:
        if self._thread is None and not self._stopped:
            # read here, before the caller's first look: no change falls between the two
            last = self.runtime.registry.generation()
            self._thread = threading.Thread(target=self._run, args=(last,), name=THREAD_NAME,
                                            daemon=True)
            self._thread.start()

    def _run(self, last: int) -> None:
        registry = self.runtime.registry
        while True:
            with self._changed:
                self._handlers = [h for h in self._handlers if h.alive]
                if not self._stopped and (self._handlers or self._waiters):
                    self._changed.wait(POLL_SEC)  # stop() notifies
                if self._stopped or not (self._handlers or self._waiters):
                    self._thread = None  # the next watch or wait starts a new one
                    return
            generation = registry.generation()
            with self._changed:  # listed after the read: a handler missing here looked later
                handlers = list(self._handlers)
            if generation != last:
                last = generation
                for handler in handlers:
                    try:
                        handler.observe()
                    except Exception:  # noqa: BLE001  destroyed meanwhile
                        pass
                with self._changed:
                    self._changes += 1
                    self._changed.notify_all()
            for handler in handlers:
                handler.deliver()

    def stop(self) -> None:
        """Stop and join the thread before agnoshm unmaps the registry (at shutdown)."""
        with self._changed:
            self._stopped = True
            thread = self._thread
            self._changed.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()


def get_watcher(runtime) -> Watcher:
    """The matched thread's state for ``runtime`` (a new one after a re-init)."""
    global _watcher
    with _lock:
        if _watcher is not None and _watcher.runtime is runtime:
            return _watcher
        old, _watcher = _watcher, Watcher(runtime)
        watcher = _watcher
    if old is not None:
        old.stop()
    context.on_shutdown(watcher.stop)  # joined before agnoshm closes the registry
    return watcher


def _forget_after_fork() -> None:
    global _lock, _watcher
    _lock = threading.Lock()
    _watcher = None


os.register_at_fork(after_in_child=_forget_after_fork)
