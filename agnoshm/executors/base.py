"""Executors that run subscription callbacks, timers and tasks, shaped like rclpy's.

An executor waits on this process's doorbell (one futex word rung by every
publisher of a topic this process subscribes to, and by :meth:`Executor.wake`),
so one wake-up serves all of its subscriptions.  It reads the doorbell, checks
readiness, and sleeps only while the doorbell is unchanged: no ring is missed
(the wake-up loop of :mod:`agnoshm.transport.waiting`, see :meth:`Executor._waiter`).

Dispatch follows rclpy (``rclpy/executors.py``).  An entity (subscription or
timer) is executable when it is ready, no dispatch of it is pending
(``_executor_event``) and its callback group ``can_execute`` it.  The executor
claims the group (``beginning_execution``), takes (a message, or the timer's
period), clears ``_executor_event``, runs the callback and releases the group
(``ending_execution``).  A coroutine callback (``async def``) holds its group
until the :class:`Task` driving it finishes.  Ready entities take turns
(round-robin), one callback each, so a busy subscription or an always-due
timer starves nothing.  A subscription takes up to :data:`TAKE_BATCH`
messages at once (DESIGN.md data flow, step 3) and delivers them one per
callback, in order; taken messages stay referenced until delivered or until
the subscription is destroyed.  A callback that raises is logged with its
topic, and the executor carries on.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
import weakref
from collections import deque

from agnoshm import context
from agnoshm.errors import NotInitializedError
from agnoshm.executors.gate import _gate
from agnoshm.subscription import Subscription
from agnoshm.task import Future, Task
from agnoshm.transport.waiting import wait_for_work

_logger = logging.getLogger("agnoshm.executor")

#: What a look returns to go round its caller's loop at once (a task came, a claim was lost).
_AGAIN = object()


class Executor:
    """Runs the callbacks of the nodes added to it (like ``rclpy.executors.Executor``).

    Use :class:`SingleThreadedExecutor` or :class:`MultiThreadedExecutor`.
    """

    def __init__(self):
        self._nodes: list = []  # replaced, never mutated: readers need no lock
        self._nodes_lock = threading.Lock()
        self._tasks: deque = deque()
        self._is_shutdown = False
        self._spin_lock = threading.Lock()
        self._spin_owner = None  # ident of the thread spinning now
        self._snapshot = None
        self._turn = 0

    # nodes and tasks ---------------------------------------------------------------------
    def add_node(self, node) -> bool:
        """Add ``node`` whose callbacks this executor runs; return False if it was there."""
        with self._nodes_lock:
            if node in self._nodes:
                return False
            self._nodes = self._nodes + [node]
        node._executor = self
        self.wake()
        return True

    def remove_node(self, node) -> None:
        """Stop running ``node``'s callbacks."""
        with self._nodes_lock:
            if node not in self._nodes:
                return
            self._nodes = [n for n in self._nodes if n is not node]
        if node._executor is self:
            node._executor = None
        self.wake()

    def get_nodes(self) -> list:
        return list(self._nodes)

    def create_task(self, callback, *args, **kwargs) -> Task:
        """Run ``callback(*args, **kwargs)`` (a function or ``async def``) on the next spin.

        Tasks belong to no callback group.  Thread-safe.
        """
        task = Task(callback, args, kwargs, executor=self)
        self._schedule(task)
        return task

    def _schedule(self, task: Task) -> None:
        self._tasks.append(task)
        self.wake()

    def wake(self) -> None:
        """Make a waiting spin look again (rings this process's doorbell; thread-safe)."""
        runtime = context._runtime
        if runtime is not None and not runtime.closed:
            runtime.doorbell.ring()

    def _wake_on_done(self, _future) -> None:
        self.wake()

    # spinning ------------------------------------------------------------------------------
    def spin(self) -> None:
        """Run callbacks until this executor or agnoshm is shut down."""
        self._spin(None, None)

    def spin_once(self, timeout_sec: float | None = None) -> None:
        """Run one callback or task (multi-threaded: start them), waiting up to ``timeout_sec``.

        :param timeout_sec: seconds to wait; None or negative waits forever, 0 does not wait.
        :raises NotInitializedError: if agnoshm is shut down in this process.
        """
        context.raise_if_stopped_by_signal()
        with self._spinning():
            self._run(timeout_sec, None, True)
        context.raise_if_stopped_by_signal()

    def spin_until_future_complete(self, future, timeout_sec: float | None = None) -> None:
        """Run callbacks until ``future`` (agnoshm or ``concurrent.futures``) is done.

        :param timeout_sec: give up after this long (None or negative: never).
        """
        if isinstance(future, Task) and future._executor is None:
            future._executor = weakref.ref(self)
            self._schedule(future)
        if isinstance(future, Future):
            future._add_waker(self._wake_on_done)
        else:
            future.add_done_callback(self._wake_on_done)
        self._spin(future.done, timeout_sec)

    def spin_once_until_future_complete(self, future, timeout_sec: float | None = None) -> None:
        """Run one callback, or return when ``future`` is done or ``timeout_sec`` passes."""
        if isinstance(future, Future):
            future._add_waker(self._wake_on_done)
        else:
            future.add_done_callback(self._wake_on_done)
        context.raise_if_stopped_by_signal()
        with self._spinning():
            self._run(timeout_sec, future.done, True)
        context.raise_if_stopped_by_signal()

    def spin_until(self, predicate, timeout_sec: float | None = None) -> bool:
        """Run callbacks until ``predicate()`` is true or ``timeout_sec`` passes; return it.

        ``predicate`` is checked after every callback and on every wake-up.
        """
        self._spin(predicate, timeout_sec)
        return bool(predicate())

    def _spin(self, condition, timeout_sec: float | None) -> None:
        """The spin family's loop.

        :raises ExternalShutdownException: if a signal stopped agnoshm (see
            :mod:`agnoshm.signals`); ``agnoshm.shutdown()`` and :meth:`shutdown` end it quietly.
        """
        deadline = _deadline(timeout_sec)
        context.raise_if_stopped_by_signal()
        with self._spinning():
            while not self._is_shutdown and context.ok():
                if condition is not None and condition():
                    return
                left = None
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                try:
                    self._run(left, condition, False)
                except NotInitializedError:
                    return
        if not self._is_shutdown:
            context.raise_if_stopped_by_signal()

    def _spinning(self) -> "_Spinning":
        if not self._spin_lock.acquire(blocking=False):
            raise RuntimeError("this executor is already spinning (in another thread or in a "
                               "callback it runs); spin it from one thread only")
        self._spin_owner = threading.get_ident()
        return _Spinning(self)

    def _run(self, timeout_sec, condition, once: bool) -> bool:
        """Run (or start) callbacks; return after one if ``once``, else when ``condition()``
        holds, the deadline passes or the executor stops.  Return True if any ran."""
        raise NotImplementedError()

    # readiness -----------------------------------------------------------------------------
    def _entities(self) -> list:
        """``(entity, is_timer)`` for the timers and callback subscriptions of our nodes
        (rebuilt only when they change)."""
        nodes = self._nodes
        snapshot = self._snapshot
        if snapshot is not None and snapshot[0] is nodes:
            for node, subs, timers in snapshot[1]:
                if node.subscriptions != subs or node.timers != timers:
                    break
            else:
                return snapshot[2]
        per_node = [(n, list(n.subscriptions), list(n.timers)) for n in nodes]
        entities = [(t, True) for _, _, ts in per_node for t in ts]
        entities += [(s, False) for _, ss, _ in per_node for s in ss if isinstance(s, Subscription)]
        self._snapshot = (nodes, per_node, entities)
        return entities

    def _ready(self, first_only: bool,
               entities: list | None = None) -> tuple[list, float | None]:
        """Executable ready entities, and the seconds until the next timer that is not due
        yet (None: none).  The scan starts one entity further each time (round-robin), so
        a timer that is always due cannot starve subscriptions, nor the reverse.

        :param entities: :meth:`_entities`, if the caller has it already."""
        if entities is None:
            entities = self._entities()
        count = len(entities)
        ready = []
        wait = None
        start = self._turn % count if count > 1 else 0
        for i in range(count):
            k = start + i
            if k >= count:
                k -= count
            entity, is_timer = entities[k]
            if is_timer:
                left = entity.time_until_next_call()
                if left is None:
                    continue
                if left > 0:
                    if wait is None or left < wait:
                        wait = left
                    continue
            elif not entity.has_data():
                continue
            if not entity._executor_event and entity.callback_group.can_execute(entity):
                ready.append(entity)
                if first_only:
                    self._turn = k + 1
                    return ready, None
        self._turn = start + 1
        return ready, wait

    def _waiter(self, runtime, ticket, look, deadline: float | None, condition):
        """A no-argument callable: the next work ``look`` finds (the doorbell's wake-up loop,
        :func:`~agnoshm.transport.waiting.wait_for_work`, inside the gate with ``ticket``),
        or None when the spin must return: ``condition()`` holds, the deadline passed, the
        executor is shut down or agnoshm is closing."""
        doorbell, stop, enter, leave = self._wait_parts(runtime, ticket, condition)
        # A partial, by position: it runs no frame of its own.
        return functools.partial(wait_for_work, doorbell, look, deadline, stop, enter, leave)

    def _wait_parts(self, runtime, ticket, condition) -> tuple:
        """``(doorbell, stop, enter, leave)`` for :func:`~agnoshm.transport.waiting.wait_for_work`
        (see :meth:`_waiter`)."""
        def stop() -> bool:
            return (self._is_shutdown or (condition is not None and condition())
                    or not context.running(runtime))  # closing: its ring may be behind us

        enter, leave = _gate.entry(ticket, runtime)
        return runtime.doorbell, stop, enter, leave

    # running callbacks -----------------------------------------------------------------------
    def _finish(self, entity, group, result) -> None:
        """Release ``entity``'s group, or hand it to a task if the callback was a coroutine."""
        if result is not None and inspect.isawaitable(result):
            task = Task(result, executor=self)
            task._add_waker(lambda t: self._finish_task(entity, group, t))
            task()
        else:
            group.ending_execution(entity)

    def _finish_task(self, entity, group, task: Task) -> None:
        exception = task.exception()
        if exception is not None:
            _log_failure(entity, exception)
        group.ending_execution(entity)
        self.wake()

    # shutdown ------------------------------------------------------------------------------
    def shutdown(self, timeout_sec: float | None = None) -> bool:
        """Stop running callbacks; wait up to ``timeout_sec`` (None: forever) for the running
        ones; return True if none is running any more.  A spin returns."""
        self._is_shutdown = True
        self.wake()
        idle = self._wait_idle(timeout_sec)
        with self._nodes_lock:
            nodes, self._nodes = self._nodes, []
        for node in nodes:
            if node._executor is self:
                node._executor = None
        return idle

    def _wait_idle(self, timeout_sec: float | None) -> bool:
        """Wait for the spinning thread to stop (callbacks run only while it spins)."""
        if self._spin_owner == threading.get_ident():
            return True  # called from a callback: it cannot wait for itself
        timeout = -1 if _deadline(timeout_sec) is None else timeout_sec
        if not self._spin_lock.acquire(timeout=timeout):
            return False
        self._spin_lock.release()
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


class _Spinning:
    """Releases an executor's spin lock at the end of a ``with``."""

    __slots__ = ("_executor",)

    def __init__(self, executor: Executor):
        self._executor = executor

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._executor._spin_owner = None
        self._executor._spin_lock.release()


def _deadline(timeout_sec: float | None) -> float | None:
    if timeout_sec is None or timeout_sec < 0:
        return None
    return time.monotonic() + timeout_sec


def _take(sub):
    """Take ``sub``'s next message as a view (see ``PollingSubscription``); None if none.
    Executors call it right after ``has_data()`` was true."""
    return sub._next_view(True)


def _log_failure(entity, exc: BaseException) -> None:
    if isinstance(entity, Subscription):
        what = f"subscription on {entity.topic_name}"
    else:
        what = f"timer {entity.callback!r}"
    _logger.error("callback of %s raised %s: %s; the executor carries on", what,
                  type(exc).__name__, exc, exc_info=exc)
