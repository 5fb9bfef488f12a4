"""Timers run by an executor, on CLOCK_MONOTONIC."""

from __future__ import annotations

import time


class Timer:
    """Calls ``callback()`` every ``timer_period_sec`` while its node is spun.

    .. warning:: Users should not create a timer with this constructor, instead
       they should call :meth:`agnoshm.Node.create_timer`.
    """

    _executor_event = False  # an executor has dispatched it and not yet advanced it

    def __init__(self, callback, timer_period_sec: float, callback_group=None):
        if timer_period_sec <= 0:
            raise ValueError(f"timer period must be positive, not {timer_period_sec!r}")
        self.callback = callback
        self.callback_group = callback_group
        self.timer_period_ns = int(timer_period_sec * 1e9)
        self._next_call_ns = time.monotonic_ns() + self.timer_period_ns
        self._canceled = False

    @property
    def is_canceled(self) -> bool:
        return self._canceled

    def cancel(self) -> None:
        self._canceled = True

    def reset(self) -> None:
        self._canceled = False
        self._next_call_ns = time.monotonic_ns() + self.timer_period_ns

    def time_until_next_call(self) -> float | None:
        """Seconds until the timer is due (<= 0 when ready), None when canceled."""
        if self._canceled:
            return None
        return (self._next_call_ns - time.monotonic_ns()) / 1e9

    def is_ready(self) -> bool:
        return not self._canceled and time.monotonic_ns() >= self._next_call_ns

    def call(self) -> None:
        """Advance to the next period (skipping missed ones) and run the callback."""
        self._advance()
        self.callback()

    def _advance(self) -> None:
        """Move the due time to the next period after now (an executor's "take")."""
        now = time.monotonic_ns()
        missed = max(0, (now - self._next_call_ns) // self.timer_period_ns)
        self._next_call_ns += (missed + 1) * self.timer_period_ns

    def destroy(self) -> None:
        self._canceled = True
