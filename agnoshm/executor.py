"""Executors that run subscription callbacks and timers, shaped like rclpy's.

An executor waits on this process's doorbell (one futex word rung by every
publisher of a topic this process subscribes to), so one wake-up serves all
of its subscriptions.  It reads the doorbell, checks readiness, and sleeps
only while the doorbell is unchanged: no ring is ever missed.
"""

from __future__ import annotations

import logging
import threading
import time

from agnoshm import context

_logger = logging.getLogger("agnoshm.executor")


class Executor:
    """Runs the callbacks of the nodes added to it."""

    def __init__(self):
        self._nodes: list = []
        self._lock = threading.Lock()
        self._next = 0
        self._shutdown = False
        context.on_shutdown(self.wake)

    def add_node(self, node) -> bool:
        with self._lock:
            if node in self._nodes:
                return False
            self._nodes.append(node)
            node._executor = self
        self.wake()
        return True

    def remove_node(self, node) -> None:
        with self._lock:
            if node in self._nodes:
                self._nodes.remove(node)
                node._executor = None
        self.wake()

    def get_nodes(self) -> list:
        return list(self._nodes)

    def wake(self) -> None:
        """Make a blocked ``spin_once`` look again."""
        runtime = context._runtime
        if runtime is not None and not runtime.closed:
            runtime.doorbell.ring()

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        self._shutdown = True
        self.wake()
        return True

    def _ready_work(self):
        """Return one ready (kind, entity) pair, round-robin over subscriptions, or the
        seconds until the next timer (None when no timer)."""
        next_timer = None
        subs = [s for n in self._nodes for s in n.subscriptions if hasattr(s, "callback")]
        if subs:
            count = len(subs)
            start = self._next % count
            for i in range(count):
                sub = subs[(start + i) % count]
                if sub.has_data():
                    self._next = start + i + 1
                    return ("sub", sub), None
        for node in self._nodes:
            for timer in node.timers:
                remaining = timer.time_until_next_call()
                if remaining is None:
                    continue
                if remaining <= 0:
                    return ("timer", timer), None
                if next_timer is None or remaining < next_timer:
                    next_timer = remaining
        return None, next_timer

    def _execute(self, work) -> None:
        kind, entity = work
        if kind == "timer":
            entity.call()
            return
        msg = entity.take()
        if msg is None:
            return
        try:
            entity.callback(msg)
        except Exception:
            _logger.exception("callback of subscription on %s raised; the executor carries on",
                              entity.topic_name)

    def spin_once(self, timeout_sec: float | None = None) -> None:
        """Run at most one ready callback, waiting up to ``timeout_sec`` (None: forever)."""
        runtime = context.require_runtime()
        doorbell = runtime.doorbell
        deadline = None if timeout_sec is None else time.monotonic() + max(0.0, timeout_sec)
        while not self._shutdown and not runtime.closed:
            seen = doorbell.value()
            work, next_timer = self._ready_work()
            if work is not None:
                self._execute(work)
                return
            wait = next_timer
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait = left if wait is None else min(wait, left)
            doorbell.wait(seen, wait)

    def spin(self) -> None:
        """Run callbacks until shutdown or until every node is removed."""
        while not self._shutdown and context.ok() and self._nodes:
            self.spin_once(None)

    def spin_until(self, predicate, timeout_sec: float | None = None) -> bool:
        """Spin until ``predicate()`` is true or ``timeout_sec`` passes; return the predicate."""
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while not predicate():
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return bool(predicate())
            else:
                left = None
            self.spin_once(left)
        return True


class SingleThreadedExecutor(Executor):
    """Runs every callback in the thread that spins it."""


_global_executor: Executor | None = None


def get_global_executor() -> Executor:
    global _global_executor
    if _global_executor is None or _global_executor._shutdown:
        _global_executor = SingleThreadedExecutor()
    return _global_executor


def spin_once(node, *, executor: Executor | None = None, timeout_sec: float | None = None) -> None:
    """Run at most one callback of ``node`` (rclpy.spin_once)."""
    executor = executor or get_global_executor()
    executor.add_node(node)
    executor.spin_once(timeout_sec)


def spin(node, executor: Executor | None = None) -> None:
    """Run ``node``'s callbacks until shutdown (rclpy.spin)."""
    executor = executor or get_global_executor()
    executor.add_node(node)
    try:
        while context.ok() and not node._destroyed:
            executor.spin_once(None)
    finally:
        executor.remove_node(node)
