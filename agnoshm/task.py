"""Futures and tasks of executors, shaped like ``rclpy.task``.

A :class:`Task` runs a function or drives a coroutine for an executor; it is
a :class:`Future` of its result.  A coroutine callback awaits futures; the
executor resumes its task when the awaited future completes.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agnoshm.executors.base import Executor

_logger = logging.getLogger("agnoshm.executor")

class Future:
    """The result of work that finishes later (like ``rclpy.task.Future``).

    Thread-safe.  ``await`` it inside a task or coroutine callback run by an
    executor.  Done callbacks run in the thread that completes the future, or,
    if the future belongs to an executor, as tasks of that executor.  The first
    ``set_result``/``set_exception``/``cancel`` wins; later ones are ignored.
    """

    def __init__(self, *, executor: Executor | None = None):
        self._lock = threading.Lock()
        self._done = False
        self._cancelled = False
        self._result = None
        self._exception: BaseException | None = None
        self._callbacks: list = []  # (callback, inline)
        self._executor = None if executor is None else weakref.ref(executor)

    def done(self) -> bool:
        """Return True once the future has a result, an exception, or was cancelled."""
        return self._done

    def cancelled(self) -> bool:
        return self._cancelled

    def result(self):
        """Return the result (None while not done); raise the exception if one was set."""
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        return self._exception

    def set_result(self, result) -> None:
        self._complete(result, None, False)

    def set_exception(self, exception: BaseException) -> None:
        self._complete(None, exception, False)

    def cancel(self) -> bool:
        """Cancel the future; return False if it was already done."""
        return self._complete(None, None, True)

    def add_done_callback(self, callback) -> None:
        """Call ``callback(future)`` when done (at once if it is done already)."""
        self._add(callback, False)

    def _add_waker(self, callback) -> None:
        """Like add_done_callback, but always run inline (executors wake themselves with it)."""
        self._add(callback, True)

    def _add(self, callback, inline: bool) -> None:
        with self._lock:
            if not self._done:
                self._callbacks.append((callback, inline))
                return
        self._invoke(callback, inline)

    def _complete(self, result, exception, cancelled: bool) -> bool:
        with self._lock:
            if self._done:
                return False
            self._result, self._exception, self._cancelled = result, exception, cancelled
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
        for callback, inline in callbacks:
            self._invoke(callback, inline)
        return True

    def _invoke(self, callback, inline: bool) -> None:
        executor = None if inline or self._executor is None else self._executor()
        if executor is not None:
            executor.create_task(callback, self)
            return
        try:
            callback(self)
        except Exception:
            _logger.exception("done callback %r of %r raised", callback, self)

    def __await__(self):
        while not self._done:
            yield self  # the task driving the awaiting coroutine resumes when we are done
        return self.result()


class Task(Future):
    """A function or coroutine that an executor runs; a :class:`Future` of its result.

    .. warning:: Users should not create a task with this constructor, instead
       they should call :meth:`Executor.create_task`.
    """

    def __init__(self, handler, args=(), kwargs=None, executor: Executor | None = None):
        super().__init__(executor=executor)
        self._handler = handler
        self._args = args
        self._kwargs = kwargs or {}
        self._coroutine = None
        if inspect.iscoroutine(handler):
            self._coroutine, self._handler = handler, None
        elif inspect.isawaitable(handler):  # e.g. a Future a callback returned
            self._coroutine, self._handler = handler.__await__(), None
        self._step_lock = threading.Lock()
        self._executing = False

    def executing(self) -> bool:
        """Return True while a thread is running a step of this task."""
        return self._executing

    def __call__(self) -> None:
        """Run the task until it finishes or awaits an unfinished future (no-op if done or running)."""
        if self._done or not self._step_lock.acquire(blocking=False):
            return
        awaited = None
        try:
            if self._done:
                return
            self._executing = True
            if self._coroutine is None:
                result = self._handler(*self._args, **self._kwargs)
                if result is None or not inspect.isawaitable(result):
                    self.set_result(result)
                    return
                self._coroutine = result if inspect.iscoroutine(result) else result.__await__()
            awaited = self._coroutine.send(None)
        except StopIteration as stop:
            self.set_result(stop.value)
        except Exception as exc:
            self.set_exception(exc)
        finally:
            self._executing = False
            self._step_lock.release()
        if self._cancelled:
            self._close()
        elif not self._done:
            if isinstance(awaited, Future):
                awaited._add_waker(self._resume)
            else:  # a bare yield: run again on the next turn
                self._resume()

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        if self._step_lock.acquire(blocking=False):
            try:
                self._close()
            finally:
                self._step_lock.release()
        return True

    def _close(self) -> None:
        coroutine, self._coroutine = self._coroutine, None
        if coroutine is not None and hasattr(coroutine, "close"):
            coroutine.close()

    def _resume(self, _future=None) -> None:
        executor = None if self._executor is None else self._executor()
        if executor is not None and not self._done:
            executor._schedule(self)
