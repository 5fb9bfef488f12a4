"""Executors that run subscription callbacks, timers and tasks, shaped like rclpy's.

An executor waits on this process's doorbell (one futex word rung by every
publisher of a topic this process subscribes to, and by :meth:`Executor.wake`),
so one wake-up serves all of its subscriptions.  It reads the doorbell, checks
readiness, and sleeps only while the doorbell is unchanged: no ring is missed.

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

import inspect
import logging
import os
import threading
import time
import weakref
from collections import deque

from agnoshm import context
from agnoshm.errors import InvalidHandleError, NotInitializedError
from agnoshm.subscription import Subscription
from agnoshm.task import Future, Task
from agnoshm.timer import Timer

_logger = logging.getLogger("agnoshm.executor")

TAKE_BATCH = 16  # messages a subscription takes at once (never more than its depth)
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
        if context._runtime is runtime and not runtime.closed:
            return True
        ticket.inside = False
        return False

    def leave(self, ticket: _Pass) -> None:
        ticket.inside = False
        if self.closing:
            with self._cond:
                self._cond.notify_all()

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


# --- executors -----------------------------------------------------------------------------

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
        with self._spinning():
            self._run(timeout_sec, None, True)

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
        with self._spinning():
            self._run(timeout_sec, future.done, True)

    def spin_until(self, predicate, timeout_sec: float | None = None) -> bool:
        """Run callbacks until ``predicate()`` is true or ``timeout_sec`` passes; return it.

        ``predicate`` is checked after every callback and on every wake-up.
        """
        self._spin(predicate, timeout_sec)
        return bool(predicate())

    def _spin(self, condition, timeout_sec: float | None) -> None:
        deadline = _deadline(timeout_sec)
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

    def _next_ready(self) -> tuple:
        """``(entity, None)`` for the next executable ready entity, else ``(None, seconds
        until the next timer or None)``."""
        entities = self._entities()
        if len(entities) == 1 and not entities[0][1]:  # one subscription: the hot path
            sub = entities[0][0]
            if sub.has_data() and not sub._executor_event and sub.callback_group.can_execute(sub):
                return sub, None
            return None, None
        ready, wait = self._ready(True)
        return (ready[0], None) if ready else (None, wait)

    def _ready(self, first_only: bool) -> tuple[list, float | None]:
        """Executable ready entities, and the seconds until the next timer that is not due
        yet (None: none).  The scan starts one entity further each time (round-robin), so
        a timer that is always due cannot starve subscriptions, nor the reverse."""
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


class SingleThreadedExecutor(Executor):
    """Runs every callback in the thread that spins it."""

    def __init__(self):
        super().__init__()
        self._pass = _gate.new_pass()

    def _run(self, timeout_sec, condition, once: bool) -> bool:
        runtime = context.require_runtime()
        doorbell = runtime.doorbell
        deadline = _deadline(timeout_sec)
        gate = _gate
        ticket = self._pass
        tasks = self._tasks
        ran = False
        while not self._is_shutdown:
            if tasks:
                tasks.popleft()()
                ran = True
                if once or (condition is not None and condition()):
                    return True
                continue
            if not gate.enter(ticket, runtime):
                return ran
            try:
                seen = doorbell.value()
                entity, wait = self._next_ready()
                if entity is None:
                    if condition is not None and condition():
                        return ran
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return ran
                        if wait is None or left < wait:
                            wait = left
                    if context._runtime is not runtime:  # closing: its ring may be behind us
                        return ran
                    if tasks:  # scheduled after the check above: its ring may precede ``seen``
                        continue
                    doorbell.wait(seen, wait)
                    continue
                group = entity.callback_group
                if not group.beginning_execution(entity):
                    continue
                if isinstance(entity, Timer):
                    entity._advance()
                    msg = None
                else:
                    msg = _take(entity)
                    if msg is None:
                        group.ending_execution(entity)
                        continue
            finally:
                gate.leave(ticket)
            try:
                result = entity.callback() if msg is None else entity.callback(msg)
            except Exception as exc:
                _log_failure(entity, exc)
                result = None
            except BaseException:  # KeyboardInterrupt, SystemExit: leave the group usable
                group.ending_execution(entity)
                raise
            msg = None  # release the message before waiting again
            if result is None:
                group.ending_execution(entity)
            else:
                self._finish(entity, group, result)
            ran = True
            if once or (condition is not None and condition()):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return True
        return ran


class MultiThreadedExecutor(Executor):
    """Runs callbacks in a pool of ``num_threads`` threads, honouring callback groups.

    A mutually exclusive group runs one callback at a time; a reentrant group
    runs as many as there are threads, the same callback too.

    While :meth:`spin` (or ``spin_until...``) runs, the workers take turns as
    *leader* (leader/followers): the leader sleeps on the doorbell, claims one
    ready callback or task, takes its message, hands the lead to an idle
    worker and runs the callback itself.  So a message costs one wake-up; a
    dispatching thread handing it to a worker would add a second wake-up and
    a GIL hand-off (about 50 us on a 2-vCPU VM, far more under load).  The
    spinning thread runs no callbacks: it waits for callbacks to finish and
    for :meth:`wake`, and checks its condition, deadline and shutdown.
    ``spin_once`` starts what is ready from the spinning thread, as before.

    :param num_threads: worker threads; None: the CPUs this process may run on.
    """

    def __init__(self, num_threads: int | None = None):
        super().__init__()
        if num_threads is None:
            num_threads = len(os.sched_getaffinity(0))
        if num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, not {num_threads}")
        self._num_threads = num_threads
        self._crew = _Crew()
        self._pass = _gate.new_pass()
        weakref.finalize(self, self._crew.stop)

    @property
    def num_threads(self) -> int:
        return self._num_threads

    def wake(self) -> None:
        super().wake()  # a leader asleep on the doorbell looks again
        crew = self._crew
        with crew.lock:
            crew.signals += 1
            crew.spinner.notify_all()

    # the spinning thread -----------------------------------------------------------------
    def _run(self, timeout_sec, condition, once: bool) -> bool:
        runtime = context.require_runtime()
        deadline = _deadline(timeout_sec)
        crew = self._crew
        self._start_threads()
        if once:
            return self._run_once(runtime, deadline, condition)
        ran = False
        with crew.lock:
            crew.active = True
            starts = crew.starts
            if not crew.leading:
                crew.work.notify()  # an idle worker takes the lead
        try:
            while not self._is_shutdown and context._runtime is runtime and not runtime.closed:
                with crew.lock:
                    signals = crew.signals
                    if crew.starts != starts:
                        starts = crew.starts
                        ran = True
                if condition is not None and condition():
                    return ran
                left = None
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return ran
                with crew.lock:
                    if crew.signals == signals and not self._is_shutdown:
                        crew.spinner.wait(left)
        finally:
            with crew.lock:
                crew.active = False
        return ran

    def _run_once(self, runtime, deadline, condition) -> bool:
        """spin_once: claim what is ready here and hand it to the workers; return once
        something started, or when ``condition()`` holds or the deadline passes."""
        doorbell = runtime.doorbell
        gate = _gate
        ticket = self._pass
        tasks = self._tasks
        while not self._is_shutdown:
            claimed = []
            while tasks:
                try:
                    claimed.append((self._run_task, (tasks.popleft(),)))
                except IndexError:
                    break
            if not gate.enter(ticket, runtime):
                self._hand_over(claimed)
                return bool(claimed)
            try:
                seen = doorbell.value()
                ready, wait = self._ready(False)
                for entity in ready:
                    group = entity.callback_group
                    if group.beginning_execution(entity):
                        entity._executor_event = True
                        claimed.append((self._execute, (runtime, entity, group)))
                if claimed:
                    return self._hand_over(claimed)
                if condition is not None and condition():
                    return False
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    if wait is None or left < wait:
                        wait = left
                if context._runtime is not runtime:
                    return False
                if tasks:  # scheduled after the check above: its ring may precede ``seen``
                    continue
                doorbell.wait(seen, wait)
            finally:
                gate.leave(ticket)
        return False

    def _hand_over(self, claimed: list) -> bool:
        """Queue claimed work for the idle workers; False if the executor is stopped."""
        crew = self._crew
        leader_asleep = False
        with crew.lock:
            if crew.stopped:
                stopped = claimed
            else:
                stopped = []
                crew.queue.extend(claimed)
                crew.in_flight += len(claimed)
                crew.starts += 1
                crew.work.notify(len(claimed))
                leader_asleep = crew.leading
        if not stopped and leader_asleep:
            # A leader (left over from an earlier spin()) may sleep on the doorbell, and
            # it may be the only idle worker: ring, so that it steps down and helps.
            Executor.wake(self)
        for fn, args in stopped:  # shut down meanwhile: release what was claimed
            if fn == self._execute:
                _runtime, entity, group = args
                entity._executor_event = False
                group.ending_execution(entity)
        return bool(claimed) and not stopped

    def _start_threads(self) -> None:
        crew = self._crew
        if crew.threads:
            return
        with crew.lock:
            if crew.threads or crew.stopped:
                return
            me = weakref.ref(self)
            for i in range(self._num_threads):
                thread = threading.Thread(target=_work, args=(crew, me),
                                          name=f"agnoshm-executor_{i}", daemon=True)
                crew.threads.append(thread)
                thread.start()

    # the workers -------------------------------------------------------------------------
    def _lead(self, ticket: _Pass):
        """As the leader: claim one piece of work and hand the lead on; return it as
        ``(fn, args)`` for this thread to run, or None (the spin ended, or shutdown)."""
        crew = self._crew
        item = None
        try:
            item = self._claim(ticket)
        finally:
            with crew.lock:
                crew.leading = False
                if item is not None:
                    crew.in_flight += 1
                    crew.starts += 1
                    crew.work.notify()  # the next idle worker leads
                else:
                    crew.spinner.notify_all()  # the spinner checks why
        return item

    def _claim(self, ticket: _Pass):
        crew = self._crew
        tasks = self._tasks
        # Step down for queued work (spin_once's): a worker runs it before leading again.
        while crew.active and not crew.queue and not crew.stopped and not self._is_shutdown:
            runtime = context._runtime
            if runtime is None or not _gate.enter(ticket, runtime):
                return None
            try:
                doorbell = runtime.doorbell
                seen = doorbell.value()
                if tasks:
                    try:
                        return self._run_task, (tasks.popleft(),)
                    except IndexError:
                        pass
                ready, wait = self._ready(True)
                if ready:
                    entity = ready[0]
                    group = entity.callback_group
                    if group.beginning_execution(entity):
                        # Take before handing the lead on: the next leader then sees
                        # what is left, and does not compete for the GIL meanwhile.
                        try:
                            if isinstance(entity, Timer):
                                entity._advance()
                                msg = None
                            else:
                                msg = _take(entity)
                        except BaseException:
                            group.ending_execution(entity)
                            raise
                        return self._deliver, (entity, group, msg)
                    continue
                if context._runtime is not runtime:
                    return None
                if tasks:
                    continue
                doorbell.wait(seen, wait)
            finally:
                _gate.leave(ticket)
        return None

    def _tracked(self, fn, args) -> None:
        local = self._crew.local
        local.active = True
        try:
            fn(*args)
        except Exception:
            _logger.exception("executor work %r failed", fn)
        finally:
            local.active = False
            self._done_one()

    def _done_one(self) -> None:
        crew = self._crew
        with crew.lock:
            crew.in_flight -= 1
            crew.signals += 1
            crew.spinner.notify_all()

    def _run_task(self, task: Task) -> None:
        task()

    def _execute(self, runtime, entity, group) -> None:
        """In a worker, for work ``spin_once`` claimed: take (as rclpy's handler does), then
        deliver."""
        msg = None
        try:
            if self._is_shutdown:  # queued before shutdown: start nothing new
                group.ending_execution(entity)
                return
            if isinstance(entity, Timer):
                entity._advance()
            else:
                local = self._crew.local
                ticket = getattr(local, "ticket", None)
                if ticket is None:
                    ticket = local.ticket = _gate.new_pass()
                if _gate.enter(ticket, runtime):
                    try:
                        msg = _take(entity)
                    finally:
                        _gate.leave(ticket)
        finally:
            entity._executor_event = False
        self._deliver(entity, group, msg)

    def _deliver(self, entity, group, msg) -> None:
        """Run a claimed entity's callback (with its message), then release its group."""
        if msg is None and not isinstance(entity, Timer):
            group.ending_execution(entity)
            Executor.wake(self)
            return
        try:
            result = entity.callback() if msg is None else entity.callback(msg)
        except Exception as exc:
            _log_failure(entity, exc)
            result = None
        except BaseException:
            group.ending_execution(entity)
            raise
        msg = None
        self._finish(entity, group, result)
        Executor.wake(self)  # its group is free: the leader looks again

    def _wait_idle(self, timeout_sec: float | None) -> bool:
        crew = self._crew
        mine = 1 if getattr(crew.local, "active", False) else 0  # called from a callback
        with crew.lock:
            idle = crew.spinner.wait_for(lambda: crew.in_flight <= mine,
                                         None if _deadline(timeout_sec) is None else timeout_sec)
        crew.stop()
        if idle and not mine:
            for thread in crew.threads:
                if thread is not threading.current_thread():
                    thread.join(_CLOSE_TIMEOUT)
        return idle


class _Crew:
    """What a :class:`MultiThreadedExecutor` shares with its worker threads.

    The threads hold the crew and only a weak reference to the executor, so an
    executor dropped without ``shutdown()`` is collected and its threads end.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.work = threading.Condition(self.lock)  # idle workers wait here
        self.spinner = threading.Condition(self.lock)  # the spinning thread waits here
        self.queue: deque = deque()  # (fn, args) that spin_once claimed, not yet started
        self.threads: list[threading.Thread] = []
        self.local = threading.local()  # per worker: ticket, active
        self.active = False  # spin() runs: a worker may lead
        self.leading = False  # a worker leads: it waits on the doorbell and claims work
        self.in_flight = 0  # claimed work not finished yet
        self.starts = 0  # bumped whenever claimed work starts
        self.signals = 0  # bumped on wake() and when work finishes
        self.stopped = False

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            self.work.notify_all()
            self.spinner.notify_all()
        runtime = context._runtime
        if runtime is not None and not runtime.closed:
            runtime.doorbell.ring()  # a leader asleep on the doorbell


def _work(crew: _Crew, executor_ref) -> None:
    """A worker thread: run queued work, lead while the executor spins, else wait."""
    crew.local.ticket = ticket = _gate.new_pass()
    while True:
        with crew.lock:
            while True:
                if crew.queue:
                    item = crew.queue.popleft()
                    break
                if crew.stopped:
                    return
                if crew.active and not crew.leading:
                    crew.leading = True
                    item = None
                    break
                crew.work.wait()
        executor = executor_ref()
        if executor is None:
            return
        if item is None:
            try:
                item = executor._lead(ticket)
            except Exception:
                _logger.exception("agnoshm executor worker failed while waiting for work")
        if item is not None:
            executor._tracked(*item)
        del executor, item


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
    """Take ``sub``'s next message as a view: from its inbox, refilled with up to
    ``TAKE_BATCH`` messages (at most its depth); None if there is none."""
    inbox = sub._inbox
    if not inbox:
        port = sub._port
        if port is None:
            return None
        try:
            leases = port.take(min(port.depth, TAKE_BATCH))
        except InvalidHandleError:  # destroyed meanwhile
            return None
        if not leases:
            return None
        inbox.extend(leases)
    try:
        lease = inbox.popleft()
    except IndexError:  # another worker took the last one
        return None
    return sub.msg_type.received(lease)


def _log_failure(entity, exc: BaseException) -> None:
    if isinstance(entity, Subscription):
        what = f"subscription on {entity.topic_name}"
    else:
        what = f"timer {entity.callback!r}"
    _logger.error("callback of %s raised %s: %s; the executor carries on", what,
                  type(exc).__name__, exc, exc_info=exc)


# --- module-level functions (rclpy.spin and friends) -------------------------------------------

_global_executor: Executor | None = None
_global_lock = threading.Lock()


def get_global_executor() -> Executor:
    """Return the executor the module-level spin functions use (a SingleThreadedExecutor)."""
    global _global_executor
    with _global_lock:
        if _global_executor is None or _global_executor._is_shutdown:
            _global_executor = SingleThreadedExecutor()
        return _global_executor


def spin_once(node, *, executor: Executor | None = None, timeout_sec: float | None = None) -> None:
    """Run at most one callback of ``node`` (rclpy.spin_once)."""
    executor = get_global_executor() if executor is None else executor
    try:
        executor.add_node(node)
        executor.spin_once(timeout_sec)
    finally:
        executor.remove_node(node)


def spin(node, executor: Executor | None = None) -> None:
    """Run ``node``'s callbacks until it is destroyed or agnoshm shuts down (rclpy.spin)."""
    executor = get_global_executor() if executor is None else executor
    try:
        executor.add_node(node)
        executor._spin(lambda: node._destroyed, None)
    finally:
        executor.remove_node(node)


def spin_until_future_complete(node, future, executor: Executor | None = None,
                               timeout_sec: float | None = None) -> None:
    """Run ``node``'s callbacks until ``future`` is done (rclpy.spin_until_future_complete)."""
    executor = get_global_executor() if executor is None else executor
    try:
        executor.add_node(node)
        executor.spin_until_future_complete(future, timeout_sec)
    finally:
        executor.remove_node(node)
