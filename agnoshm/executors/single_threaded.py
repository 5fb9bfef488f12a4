"""The executor that runs every callback in the thread that spins it."""

from __future__ import annotations

import time

from agnoshm import context
from agnoshm.executors.base import Executor, _deadline, _log_failure, _take
from agnoshm.executors.gate import _gate
from agnoshm.timer import Timer

_STOP = object()  # _pick: return from _run


class SingleThreadedExecutor(Executor):
    """Runs every callback in the thread that spins it."""

    def __init__(self):
        super().__init__()
        self._pass = _gate.new_pass()

    def _run(self, timeout_sec, condition, once: bool) -> bool:
        runtime = context.require_runtime()
        deadline = _deadline(timeout_sec)
        tasks = self._tasks
        ran = False
        burst = None  # the lone subscription, when messages it took are left to deliver
        while not self._is_shutdown:
            if tasks:
                tasks.popleft()()
                ran = True
                if once or (condition is not None and condition()):
                    return True
                continue
            if burst is not None:
                # Taken already: no doorbell, readiness scan or shared memory until the
                # inbox is empty (at most TAKE_BATCH messages).
                picked = _claim_taken(burst)
                burst = None
            else:
                picked = self._pick(runtime, deadline, condition)
                if picked is _STOP:
                    return ran
            if picked is None:
                continue
            entity, group, msg = picked
            try:
                result = entity.callback() if msg is None else entity.callback(msg)
            except Exception as exc:
                _log_failure(entity, exc)
                result = None
            except BaseException:  # KeyboardInterrupt, SystemExit: leave the group usable
                group.ending_execution(entity)
                raise
            if msg is not None:
                msg = None  # release the message before waiting again
                if entity is self._lone and entity._inbox:
                    burst = entity
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

    def _pick(self, runtime, deadline, condition):
        """Claim the next ready entity and take its message, or sleep until one may be ready.

        Return ``(entity, group, message or None)``, None to look again, or
        :data:`_STOP` when ``_run`` must return (condition met, deadline passed,
        agnoshm closing).
        """
        ticket = self._pass
        if not _gate.enter(ticket, runtime):
            return _STOP
        try:
            seen = runtime.doorbell.value()
            entity, wait = self._next_ready()
            if entity is None:
                return None if self._sleep(runtime, seen, wait, deadline, condition) else _STOP
            group = entity.callback_group
            if not group.beginning_execution(entity):
                return None
            if isinstance(entity, Timer):
                entity._advance()
                return entity, group, None
            msg = _take(entity)
            if msg is None:
                group.ending_execution(entity)
                return None
            return entity, group, msg
        finally:
            _gate.leave(ticket)


def _claim_taken(sub):
    """``(sub, group, message)`` for the next message ``sub`` already took, or None."""
    group = sub.callback_group
    if not sub._inbox or not group.beginning_execution(sub):
        return None
    msg = _take(sub)
    if msg is None:
        group.ending_execution(sub)
        return None
    return sub, group, msg
