"""The executor that runs callbacks in a pool of worker threads (leader/followers).

Its workers and what they share live in :mod:`agnoshm.executors.crew`.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref

from agnoshm import context
from agnoshm.executors.base import _AGAIN, Executor, _deadline, _log_failure, _take
from agnoshm.executors.crew import _Crew, _work
from agnoshm.executors.gate import _CLOSE_TIMEOUT, _gate, _Pass
from agnoshm.task import Task
from agnoshm.timer import Timer

_logger = logging.getLogger("agnoshm.executor")


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
            while not self._is_shutdown and context.running(runtime):
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
        if self._is_shutdown:
            return False
        look = functools.partial(self._look_all, runtime)
        claimed = self._waiter(runtime, self._pass, look, deadline, condition)()
        return claimed is not None and self._hand_over(claimed)

    def _look_all(self, runtime) -> tuple:
        """spin_once's look: claim every queued task and executable ready entity; return
        ``(claimed, None)``, or ``(None, seconds until the next timer)`` if there is none."""
        tasks = self._tasks
        claimed = []
        while tasks:
            try:
                claimed.append((self._run_task, (tasks.popleft(),)))
            except IndexError:
                break
        ready, wait = self._ready(False)
        for entity in ready:
            group = entity.callback_group
            if group.beginning_execution(entity):
                entity._executor_event = True
                claimed.append((self._execute, (runtime, entity, group)))
        return (claimed or None), wait

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
        while True:
            runtime = context._runtime
            if runtime is None:
                return None
            item = self._waiter(runtime, ticket, self._look_one, None, self._steps_down)()
            if item is not _AGAIN:
                return item

    def _steps_down(self) -> bool:
        """The leader leaves the lead: the spin ended, or spin_once queued work (a worker
        runs it before leading again)."""
        crew = self._crew
        return not crew.active or bool(crew.queue) or crew.stopped or self._is_shutdown

    def _look_one(self) -> tuple:
        """The leader's look: claim one task or ready entity and take its message; return
        ``((fn, args), None)``, ``(_AGAIN, None)`` if the claim was lost, or ``(None, seconds
        until the next timer)``."""
        if self._steps_down():
            return None, None  # the loop's stop() says so too
        tasks = self._tasks
        if tasks:
            try:
                return (self._run_task, (tasks.popleft(),)), None
            except IndexError:
                pass
        ready, wait = self._ready(True)
        if not ready:
            return None, wait
        entity = ready[0]
        group = entity.callback_group
        if not group.beginning_execution(entity):
            return _AGAIN, None
        # Take before handing the lead on: the next leader then sees what is left, and
        # does not compete for the GIL meanwhile.
        try:
            if isinstance(entity, Timer):
                entity._advance()
                msg = None
            else:
                msg = _take(entity)
        except BaseException:
            group.ending_execution(entity)
            raise
        return (self._deliver, (entity, group, msg)), None

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
