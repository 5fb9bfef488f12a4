"""The worker crew of a MultiThreadedExecutor: shared state and the worker thread loop.

A worker holds the crew and only a weak reference to its executor; it runs the
executor's ``_lead`` and ``_tracked`` (see
:class:`agnoshm.executors.multi_threaded.MultiThreadedExecutor`).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from agnoshm import context
from agnoshm.executors.gate import _gate

_logger = logging.getLogger("agnoshm.executor")


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
