"""The executor that runs every callback in the thread that spins it."""

from __future__ import annotations

import time

from agnoshm import context
from agnoshm.executors.base import Executor, _deadline, _log_failure, _take
from agnoshm.executors.gate import _gate
from agnoshm.timer import Timer


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
