"""The executor that gives every callback group a thread of its own (Agnocast's
callback-isolated executor), each configurable by :mod:`~agnoshm.executors.thread_config`.

A group's thread spins a :class:`_GroupExecutor`: the single-threaded loop
restricted to that group's subscriptions and timers, so they run there only,
one at a time.  The thread that calls ``spin`` runs no callbacks: it starts
a thread for every group that has entities (also groups created later:
``Node.create_*`` wakes it), applies the group's settings to the new thread
before it runs anything, runs the executor's tasks, and stops the threads
when the spin ends (they wait for the next spin) or the group goes away.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from pathlib import Path
from typing import Mapping

from agnoshm import context
from agnoshm.errors import NotInitializedError
from agnoshm.executors.thread_config import (
    GroupThread,
    ThreadConfigError,
    keyed_groups,
    load_thread_config,
    template,
    unknown_groups,
)
from agnoshm.executors.base import Executor, _deadline
from agnoshm.executors.gate import _gate
from agnoshm.executors.single_threaded import SingleThreadedExecutor
from agnoshm.subscription import Subscription

_logger = logging.getLogger("agnoshm.executor")


class CallbackIsolatedExecutor(Executor):
    """Runs each callback group's callbacks in a thread of its own.

    A group's subscriptions and timers run only in its thread, one at a time
    (a reentrant group too), so a slow callback delays only its own group.
    ``thread_config`` sets each thread's scheduling by group key
    ``<node fully qualified name>/<group name>`` (the name given with
    ``MutuallyExclusiveCallbackGroup(name=...)``; a node's default group is
    ``default``); :meth:`thread_config_template` writes one to fill in.

    ``spin_once`` lets the group threads run until one callback has run (or
    ``timeout_sec`` passes); tasks run in the spinning thread.

    :param thread_config: a YAML file's path, or the same mapping, or None.
    :raises ThreadConfigError: if ``thread_config`` is malformed.
    """

    def __init__(self, thread_config: str | Path | Mapping | None = None):
        super().__init__()
        self._config = load_thread_config(thread_config)
        self._board = _Board()
        self._workers: dict = {}  # callback group -> _Worker; only the spinning thread changes it
        self._retired: list = []  # workers of groups gone, maybe still in a callback
        self._pass = _gate.new_pass()
        self._warned = False
        weakref.finalize(self, self._board.stop)

    def wake(self) -> None:
        # The signal first, the ring after: a spinning thread woken by the ring must find
        # the signal (the wake-up loop's rule), or it sleeps again with nothing to wake it.
        self._board.signal()
        super().wake()  # group threads asleep on the doorbell look again

    # the spinning thread -----------------------------------------------------------------
    def _run(self, timeout_sec, condition, once: bool) -> bool:
        runtime = context.require_runtime()
        deadline = _deadline(timeout_sec)
        board = self._board
        ran = False
        # Group threads report each callback only when someone waits for one.
        ran_before = board.activate(report=once or condition is not None)
        try:
            while not self._is_shutdown and context.running(runtime):
                signals = board.signals
                self._refresh()
                while self._tasks:
                    self._tasks.popleft()()
                    ran = True
                ran = ran or board.ran != ran_before
                if once and ran:
                    return True
                if condition is not None and condition():
                    return ran
                if deadline is not None and deadline <= time.monotonic():
                    return ran
                self._wait(runtime, signals, deadline, condition)
            return ran or board.ran != ran_before
        finally:
            board.deactivate()
            Executor.wake(self)  # group threads leave their loop and wait for the next spin

    def _wait(self, runtime, signals: int, deadline: float | None, condition) -> None:
        """Sleep until :meth:`wake`, a group thread ends or reports, or the deadline."""
        board = self._board
        if any(w.thread.is_alive() for w in self._workers.values()):
            # A signal or shutdown rings the doorbell; the group threads notice and end.
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            with board.lock:
                if board.signals == signals and not self._is_shutdown:
                    board.spinner.wait(left)
            return
        # No group thread yet: watch the doorbell ourselves (wake() rings it too).
        def look():
            return (True if board.signals != signals or self._tasks else None), None
        self._waiter(runtime, self._pass, look, deadline, condition)()

    def _refresh(self) -> None:
        """Start a configured thread for every new group, retire those of groups gone."""
        groups = self._groups()
        if not self._warned and self._config:
            self._warned = True
            warning = unknown_groups(self._config, groups)
            if warning:
                _logger.warning(warning)
        current = {}
        for key, group, _members, named in groups:
            worker = self._workers.get(group)
            if worker is None or not worker.thread.is_alive():
                settings = self._config.get(key) if named else None
                worker = _Worker(self._board, group, key, settings, self._nodes)
                self._workers[group] = worker  # before configuring: shutdown must see it
                worker.start()
            worker.executor._nodes = self._nodes
            current[group] = worker
        for group, worker in self._workers.items():
            if group not in current:
                worker.retire()
                self._retired.append(worker)
        self._workers = current
        self._retired = [w for w in self._retired if w.thread.is_alive()]

    def _groups(self) -> list[tuple[str, object, str, bool]]:
        """``(key, group, members, named)`` for every group with entities, node by node."""
        def members_of(node) -> dict:
            members: dict = {}
            for timer in list(node.timers):
                members.setdefault(timer.callback_group, []).append(
                    f"timer {timer.timer_period_ns / 1e9:g} s")
            for sub in list(node.subscriptions):
                if isinstance(sub, Subscription):
                    members.setdefault(sub.callback_group, []).append(
                        f"subscription {sub.topic_name}")
            return {group: ", ".join(what) for group, what in members.items()}
        return keyed_groups(self._nodes, members_of, lambda group: group.name)

    # introspection -------------------------------------------------------------------------
    def threads(self) -> dict[str, int]:
        """The native thread id (``threading.get_native_id()``) of each group's thread."""
        return {w.key: w.thread.native_id for w in list(self._workers.values())
                if not w.stopped and w.thread.is_alive() and w.thread.native_id is not None}

    def thread_config_template(self) -> str:
        """A YAML thread configuration listing this executor's callback groups, to fill in."""
        return template([(key, members, named)
                                       for key, _, members, named in self._groups()])

    # shutdown ------------------------------------------------------------------------------
    def shutdown(self, timeout_sec: float | None = None) -> bool:
        self._board.stop()
        return super().shutdown(timeout_sec)

    def _wait_idle(self, timeout_sec: float | None) -> bool:
        deadline = _deadline(timeout_sec)
        me = threading.current_thread()
        idle = True
        for worker in list(self._workers.values()) + self._retired:
            if worker.thread is me or worker.thread.ident is None:
                continue  # called from one of its callbacks
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            worker.thread.join(left)
            idle = idle and not worker.thread.is_alive()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return super()._wait_idle(left) and idle


class _Board:
    """What the spinning thread shares with the group threads (they never hold the executor,
    so an executor dropped without ``shutdown()`` is collected and its threads end)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.parked = threading.Condition(self.lock)  # group threads between spins
        self.spinner = threading.Condition(self.lock)  # the spinning thread
        self.active = False
        self.epoch = 0  # bumped by every spin: a thread serves one spin at a time
        self.report = False  # count callbacks for the spinning thread (spin_once, conditions)
        self.ran = 0
        self.signals = 0
        self.stopped = False

    def activate(self, report: bool) -> int:
        with self.lock:
            self.active = True
            self.epoch += 1
            self.report = report
            self.parked.notify_all()
            return self.ran

    def deactivate(self) -> None:
        with self.lock:
            self.active = False

    def signal(self) -> None:
        with self.lock:
            self.signals += 1
            self.spinner.notify_all()

    def ran_one(self) -> None:
        with self.lock:
            self.ran += 1
            self.signals += 1
            self.spinner.notify_all()

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            self.signals += 1
            self.parked.notify_all()
            self.spinner.notify_all()
        runtime = context._runtime
        if runtime is not None and not runtime.closed:
            runtime.doorbell.ring()


class _GroupExecutor(SingleThreadedExecutor):
    """The single-threaded loop over one callback group's entities."""

    def __init__(self, group, nodes: list):
        super().__init__()
        self._group = group
        self._nodes = nodes  # the owner's list; replaced, never mutated
        self._all = None
        self._mine: list = []

    def _entities(self) -> list:
        entities = super()._entities()
        if entities is not self._all:
            self._all = entities
            self._mine = [(e, t) for e, t in entities if e.callback_group is self._group]
        return self._mine


class _Worker(GroupThread):
    """One callback group's thread and its executor."""

    def __init__(self, board: _Board, group, key: str, settings, nodes: list):
        super().__init__(key, settings, _serve, board)
        self.board = board
        self.executor = _GroupExecutor(group, nodes)

    def retire(self) -> None:
        """End the thread after its current callback (its group has no entities any more)."""
        self.stopped = True
        with self.board.lock:
            self.board.parked.notify_all()
        Executor.wake(self.executor)


def _serve(board: _Board, worker: _Worker) -> None:
    """A group's thread: serve each spin of the executor until stopped or agnoshm ends."""
    worker.configured.wait()
    executor = worker.executor
    try:
        with executor._spinning():
            while True:
                with board.lock:
                    while not (board.active or worker.stopped or board.stopped):
                        board.parked.wait()
                    if worker.stopped or board.stopped:
                        return
                    epoch, report = board.epoch, board.report
                if not context.ok():
                    return

                def done():
                    return (worker.stopped or board.stopped or not board.active
                            or board.epoch != epoch)

                try:
                    ran = executor._run(None, done, report)
                except NotInitializedError:
                    return
                if ran and report:
                    board.ran_one()
                elif not ran and not done() and not context.ok():
                    return
    except Exception:
        _logger.exception("callback group thread %s failed", worker.key)
    finally:
        board.signal()  # the spinning thread notices a thread ended
