"""An rclpy executor that gives every callback group of its nodes a thread of its own
(issue 18 item 3; agnoshm's own is :mod:`agnoshm.executors.callback_isolated`).

Each group's thread runs an rclpy executor of its own (``_GroupExecutor``) whose
nodes are views (:class:`_GroupView`) listing only that group's entities, so rclpy's
wait loop (``Executor.wait_for_ready_callbacks``) waits on and runs those alone, one
at a time: subscriptions, timers, services, clients, waitables and guard conditions,
among them the guards through which agnoshm subscriptions made with
``agnoshm.ros.create_subscription`` are dispatched.  The thread that spins runs no
callbacks: it starts a configured thread for every group with entities (groups created
later too: rclpy wakes the node's executor on every ``create_*``), runs the tasks made
with ``create_task``, and raises what a callback raised.

rclpy's callback groups have no name: :func:`name_callback_group` gives one, so that a
thread configuration (:mod:`agnoshm.executors.thread_config`) keyed
``<node fully qualified name>/<group name>`` can address it; a node's default group is
``default``.

The two executor classes subclass rclpy's ``Executor``, so they are made on first use
(:func:`executor_classes`, from the mixins :class:`_Isolated` and :class:`_GroupLoop`):
importing this module imports no rclpy.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import weakref
from pathlib import Path
from typing import Callable, Mapping

from agnoshm.executors.thread_config import (
    GroupThread,
    ThreadConfigError,
    keyed_groups,
    load_thread_config,
    template,
    unknown_groups,
)
from agnoshm.ros.binding import binding_of, import_rclpy

_logger = logging.getLogger("agnoshm.ros")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_names: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # rclpy callback group -> name
_KINDS = ("subscriptions", "timers", "clients", "services", "guards", "waitables")


def name_callback_group(group, name: str):
    """Name an rclpy callback group, so a thread configuration can address its thread as
    ``<node fully qualified name>/<name>``; returns ``group``.

    :raises ThreadConfigError: if ``name`` is not a ROS name token, or the group already has
        another name.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ThreadConfigError(f"callback group name {name!r} must be letters, digits and "
                                "underscores, not starting with a digit (say 'camera')")
    known = _names.get(group)
    if known is not None and known != name:
        raise ThreadConfigError(f"this callback group is named {known!r} already; a group "
                                "has one name (create another group for other callbacks)")
    _names[group] = name
    return group


def __getattr__(name):
    if name == "CallbackIsolatedExecutor":
        return executor_classes()[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def executor_classes() -> tuple[type, type]:
    """``(CallbackIsolatedExecutor, _GroupExecutor)``, subclasses of rclpy's ``Executor``.

    :raises ImportError: naming the fix (source ROS 2) when rclpy is missing.
    """
    import_rclpy()
    from rclpy.executors import Executor

    def make(name, mixin):
        return type(name, (mixin, Executor), {"__doc__": mixin.__doc__, "__module__": __name__})

    return make("CallbackIsolatedExecutor", _Isolated), make("_GroupExecutor", _GroupLoop)


class _Isolated:
    """An rclpy executor that runs each callback group's callbacks in a thread of its own.

    A group's entities run only in its thread, one at a time (a reentrant group too),
    so a slow callback delays only its own group.  ``thread_config`` sets each thread's
    scheduling by key ``<node fully qualified name>/<group name>``.

    The group threads run callbacks while a ``spin*`` call runs (``spin_once`` returns
    once one callback ran, or on timeout); between spins a thread holds back what it
    found ready.  Tasks (``create_task``) run in the spinning thread.

    :param thread_config: a YAML file's path, or the same mapping, or None.
    :param context: the rclpy context, or None for the default one.
    :raises ThreadConfigError: if ``thread_config`` is malformed.
    """

    def __init__(self, thread_config: str | Path | Mapping | None = None, *, context=None):
        self._config = load_thread_config(thread_config)  # before rclpy makes guard conditions
        # (before rclpy's __init__, which calls wake() at once on a context shut down)
        self._board = _Board(self._notify_spinner)
        self._changed = False  # set by wake(): the spinning thread looks at its groups again
        self._retired: list = []  # workers of groups gone, maybe still in a callback
        self._warned = False
        super().__init__(context=context)
        self._context.on_shutdown(self._board.context_ended)
        weakref.finalize(self, self._board.stop)

    # rclpy's Executor API ---------------------------------------------------------------------
    def add_node(self, node) -> bool:
        added = super().add_node(node)
        self._board.nodes = tuple(self.get_nodes())
        self.wake()
        return added

    def remove_node(self, node) -> None:
        super().remove_node(node)
        self._board.nodes = tuple(self.get_nodes())
        self.wake()

    def wake(self) -> None:
        """Entities or nodes changed: the spinning thread and every group thread look again."""
        self._notify_spinner()
        for worker in list(self._board.workers.values()):
            _trigger(worker.executor)
        self._board.nudge()

    def spin(self) -> None:
        self._serve(lambda: False, None, once=False)

    def spin_once(self, timeout_sec: float | None = None) -> None:
        self._serve(lambda: False, timeout_sec, once=True)

    def spin_until_future_complete(self, future, timeout_sec: float | None = None) -> None:
        future.add_done_callback(lambda _: self._notify_spinner())
        self._serve(future.done, timeout_sec, once=False)

    def spin_once_until_future_complete(self, future, timeout_sec=None) -> None:
        future.add_done_callback(lambda _: self._notify_spinner())
        self._serve(future.done, timeout_sec, once=True)

    def _spin_once_until_future_complete(self, future, timeout_sec=None) -> None:
        self._serve(future.done, timeout_sec, once=True)

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        """Stop the group threads and wait for them (at most ``timeout_sec``), then shut down.

        :return: False if a group thread was still in a callback when the time ran out.
        """
        deadline = _deadline(timeout_sec)
        self._board.stop()
        me = threading.current_thread()
        joined = True
        for worker in list(self._board.workers.values()) + self._retired:
            if worker.thread is me or worker.thread.ident is None:
                continue  # shut down from one of its callbacks: it ends after it
            worker.thread.join(_left(deadline))
            joined = joined and not worker.thread.is_alive()
        self._board.nodes = ()
        return super().shutdown(_left(deadline)) and joined

    # the spinning thread ---------------------------------------------------------------------
    def _notify_spinner(self) -> None:
        self._changed = True
        _trigger(self)

    def _serve(self, stop: Callable[[], bool], timeout_sec, once: bool) -> None:
        """Let the group threads run until ``stop()``, the deadline, shutdown, or (``once``)
        one callback; run this executor's tasks meanwhile and raise what a callback raised."""
        from rclpy.executors import (ConditionReachedException, ShutdownException,
                                     TimeoutException, TimeoutObject)

        if isinstance(timeout_sec, TimeoutObject):
            timeout_sec = timeout_sec.timeout
        deadline = _deadline(timeout_sec)
        board = self._board
        ran_before = board.activate(report=once)
        try:
            while self._context.ok() and not (self._is_shutdown or board.stopped):
                self._changed = False
                self._refresh()
                board.raise_failure()
                if stop() or (once and board.ran != ran_before):
                    return
                try:
                    # No nodes: rclpy waits on this executor's guard and tasks alone.
                    task, _, _ = self.wait_for_ready_callbacks(_left(deadline), [],
                                                               self._interrupted)
                except ConditionReachedException:
                    continue
                except (TimeoutException, ShutdownException):
                    return
                task()
                task.result()  # raises what the task raised, as rclpy's executors do
                if once:
                    return
        finally:
            board.deactivate()

    def _interrupted(self) -> bool:
        return self._changed

    def _refresh(self) -> None:
        """Start a configured thread for every new group, retire those of groups gone."""
        groups = self._groups()
        if not self._warned and self._config:
            self._warned = True
            warning = unknown_groups(self._config, groups)
            if warning:
                _logger.warning(warning)
        board = self._board
        workers = dict(board.workers)
        current = {}
        for key, group, _members, named in groups:
            worker = workers.get(group)
            if worker is None or not worker.thread.is_alive():
                worker = _Worker(board, group, key, self._config.get(key) if named else None,
                                 self._context)
                current[group] = worker
                board.workers = {**workers, **current}  # before configuring: shutdown sees it
                worker.start()
            current[group] = worker
        for group, worker in workers.items():
            if group not in current:
                worker.retire()
                self._retired.append(worker)
        board.workers = current
        self._retired = [w for w in self._retired if w.thread.is_alive()]

    def _groups(self) -> list[tuple[str, object, str, bool]]:
        """``(key, group, members, named)`` for every group with entities, node by node."""
        def members_of(node) -> dict:
            members: dict = {}
            for kind in _KINDS:
                for entity in list(getattr(node, kind)):
                    group = entity.callback_group
                    if group is not None:
                        members.setdefault(group, {}).setdefault(kind, []).append(entity)
            return {group: _describe(node, kinds) for group, kinds in members.items()}
        return keyed_groups(self._board.nodes, members_of, _names.get)

    # introspection -----------------------------------------------------------------------------
    def threads(self) -> dict[str, int]:
        """The native thread id (``threading.get_native_id()``) of each group's thread."""
        return {w.key: w.thread.native_id for w in list(self._board.workers.values())
                if not w.stopped and w.thread.is_alive() and w.thread.native_id is not None}

    def thread_config_template(self) -> str:
        """A YAML thread configuration listing this executor's callback groups, to fill in."""
        return template([(key, members, named) for key, _, members, named in self._groups()],
                        "name it with agnoshm.ros.name_callback_group(group, ...)")


def _describe(node, kinds: dict) -> str:
    """``subscription /chatter, timer 0.1 s, 7 services`` for a template's comment."""
    parts = []
    for kind, entities in kinds.items():
        if kind == "guards":  # agnoshm subscriptions' guards by their topic
            topics = {id(getattr(sub, "_guard", None)): sub.topic_name
                      for sub in getattr(binding_of(node), "endpoints", ())}
            parts += [f"agnoshm subscription {topics[id(e)]}" for e in entities if id(e) in topics]
            entities = [e for e in entities if id(e) not in topics]
            if not entities:
                continue
        if kind == "subscriptions":
            parts += [f"subscription {e.topic_name}" for e in entities]
        elif kind == "timers":
            parts += [f"timer {e.timer_period_ns / 1e9:g} s" for e in entities]
        else:
            parts.append(f"{len(entities)} {kind}" if len(entities) > 1 else f"1 {kind[:-1]}")
    return ", ".join(parts)


class _Board:
    """What the spinning thread shares with the group threads (they never hold the executor,
    so an executor dropped without ``shutdown()`` is collected and its threads end)."""

    def __init__(self, notify_spinner):
        self.lock = threading.Lock()
        self.parked = threading.Condition(self.lock)  # group threads between spins
        self.nodes: tuple = ()  # the executor's rclpy nodes; replaced, never mutated
        self.workers: dict = {}  # callback group -> _Worker; replaced, never mutated
        self.active = False  # a spin call runs
        self.report = False  # tell the spinning thread of every callback (spin_once)
        self.ran = 0
        self.failures: list = []
        self.stopped = False
        self.ended = False  # the rclpy context was shut down
        self._notify = weakref.WeakMethod(notify_spinner)

    def activate(self, report: bool) -> int:
        with self.lock:
            self.active, self.report = True, report
            self.parked.notify_all()
            return self.ran

    def deactivate(self) -> None:
        with self.lock:
            self.active = False

    def admit(self, worker: "_Worker") -> bool:
        """Wait while no spin runs; False if the thread is to end."""
        with self.lock:
            while not (self.active or self._leaving(worker)):
                self.parked.wait()
            return not self._leaving(worker)

    def _leaving(self, worker: "_Worker") -> bool:
        return worker.stopped or self.stopped or self.ended

    def ran_one(self, error: BaseException | None) -> None:
        with self.lock:
            self.ran += 1
            if error is not None:
                self.failures.append(error)
            tell = self.report or error is not None
        if tell:
            self.notify_spinner()

    def notify_spinner(self) -> None:
        notify = self._notify()
        if notify is not None:
            notify()

    def raise_failure(self) -> None:
        with self.lock:
            if not self.failures:
                return
            error = self.failures.pop(0)
        raise error

    def nudge(self) -> None:
        """Parked threads look again (whether they are to end)."""
        with self.lock:
            self.parked.notify_all()

    def context_ended(self) -> None:
        """``Context.on_shutdown``: parked threads end (running ones see it in rclpy's wait)."""
        self.ended = True
        self.nudge()

    def stop(self) -> None:
        """End every group thread (after its current callback)."""
        with self.lock:
            self.stopped = True
            self.parked.notify_all()
        for worker in list(self.workers.values()):
            _trigger(worker.executor)


class _GroupView:
    """An rclpy node as one group's executor sees it: only that group's entities."""

    __slots__ = ("node", "group")

    def __init__(self, node, group):
        self.node, self.group = node, group

    def _mine(self, entities) -> list:
        return [e for e in entities if e.callback_group is self.group]

    subscriptions = property(lambda self: self._mine(self.node.subscriptions))
    timers = property(lambda self: self._mine(self.node.timers))
    clients = property(lambda self: self._mine(self.node.clients))
    services = property(lambda self: self._mine(self.node.services))
    guards = property(lambda self: self._mine(self.node.guards))
    waitables = property(lambda self: self._mine(self.node.waitables))


class _GroupLoop:
    """rclpy's wait loop over one callback group's entities (its thread calls it)."""

    def __init__(self, board: _Board, group, context):
        super().__init__(context=context)
        self._board = board
        self._group = group
        self._views: dict = {}  # node -> _GroupView: the same view each time (rclpy compares)

    def get_nodes(self) -> list:
        nodes = self._board.nodes
        views = {node: self._views.get(node) or _GroupView(node, self._group) for node in nodes}
        self._views = views
        return list(views.values())


class _Worker(GroupThread):
    """One callback group's thread and its executor."""

    def __init__(self, board: _Board, group, key: str, settings, context):
        super().__init__(key, settings, _serve, board)
        self.board = board
        self.executor = executor_classes()[1](board, group, context)

    def leaving(self) -> bool:
        return self.stopped or self.board.stopped or self.board.ended

    def retire(self) -> None:
        """End the thread after its current callback (its group has no entities any more)."""
        self.stopped = True
        self.board.nudge()
        _trigger(self.executor)


def _serve(board: _Board, worker: _Worker) -> None:
    """A group's thread: rclpy's single-threaded loop over the group's entities."""
    from rclpy.executors import (ConditionReachedException, ExternalShutdownException,
                                 ShutdownException, TimeoutException)

    worker.configured.wait()
    executor = worker.executor
    try:
        while not worker.leaving():
            try:
                task, _, _ = executor.wait_for_ready_callbacks(None, None, worker.leaving)
            except (ConditionReachedException, ShutdownException, ExternalShutdownException):
                return
            except TimeoutException:
                continue
            if not board.admit(worker):  # hold what is ready until a spin runs
                task.cancel()  # never started: close its coroutine
                return
            task()
            board.ran_one(task.exception())
    except Exception as err:  # not a callback's (those are in the task): hand it on
        _logger.exception("callback group thread %s failed", worker.key)
        board.ran_one(err)
    finally:
        executor.shutdown(timeout_sec=0)  # its guard conditions; it never ran elsewhere
        board.notify_spinner()


def _trigger(executor) -> None:
    """rclpy's ``Executor.wake`` (its guard condition), quiet if ``shutdown`` (maybe in
    another thread) destroyed the guard meanwhile."""
    from rclpy.exceptions import InvalidHandle

    guard = executor._guard
    if guard is not None:
        try:
            guard.trigger()
        except InvalidHandle:
            pass


def _deadline(timeout_sec: float | None) -> float | None:
    if timeout_sec is None or timeout_sec < 0:
        return None
    return time.monotonic() + timeout_sec


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())
