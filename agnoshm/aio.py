"""asyncio support: await the messages of a subscription from an asyncio program.

::

    sub = node.create_polling_subscription(agnoshm.Bytes, "/chatter", 10)
    msg = await agnoshm.aio.receive(sub, timeout=1.0)   # None after 1 s
    async for msg in agnoshm.aio.messages(sub):         # ends when sub is destroyed
        ...

No busy polling: one helper thread per process ("agnoshm-aio") sleeps on the
process's doorbell while any coroutine waits, checks the waiting
subscriptions when it rings, and wakes their event loops with
``loop.call_soon_threadsafe``.  With nobody waiting it sleeps on a condition
and never wakes.  Cancelling a waiting coroutine unregisters it; destroying
the subscription ends its waits (``receive`` raises ``InvalidHandleError``,
``messages`` stops), ``agnoshm.shutdown()`` ends them all, and so does a
signal that stops agnoshm (they raise ``ExternalShutdownException``, as a spin does).

Use a polling subscription (``create_polling_subscription``); a callback
subscription works too, but then do not also spin its node.
"""

from __future__ import annotations

import asyncio
import functools
import threading

from agnoshm import context
from agnoshm.errors import InvalidHandleError, NotInitializedError
from agnoshm.executors.gate import _gate
from agnoshm.transport.waiting import wait_for_work


async def receive(subscription, timeout: float | None = None):
    """Return the next message of ``subscription``, waiting for it without blocking the loop.

    :param timeout: seconds to wait; None waits until a message comes.
    :returns: a read-only message view, or None if ``timeout`` passed first.
    :raises InvalidHandleError: if the subscription is (or gets) destroyed.
    :raises NotInitializedError: if agnoshm is shut down in this process.
    :raises ExternalShutdownException: if a signal stopped agnoshm (as a spin does).
    """
    msg = subscription.take()
    if msg is not None:
        return msg
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        if deadline is not None and loop.time() >= deadline:
            return None
        future = loop.create_future()
        waiter = _Waiter(subscription, loop, future)
        watcher = _watcher_for(subscription._node._runtime)
        watcher.add(waiter)
        timer = None
        try:
            if not waiter.ready():  # checked after registering: a ring cannot slip between
                if deadline is not None:
                    timer = loop.call_at(deadline, _set_done, future)
                await future
        finally:
            watcher.discard(waiter)
            if timer is not None:
                timer.cancel()
        msg = subscription.take()
        if msg is not None:
            return msg


def messages(subscription) -> "MessageStream":
    """Return an async iterator over the messages of ``subscription``, in order.

    The iteration ends when the subscription is destroyed or agnoshm shuts down.
    """
    return MessageStream(subscription)


class MessageStream:
    """``async for msg in MessageStream(sub)``: each message as it arrives (see :func:`messages`)."""

    def __init__(self, subscription):
        self.subscription = subscription

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await receive(self.subscription)
        except (InvalidHandleError, NotInitializedError):
            raise StopAsyncIteration from None


class _Waiter:
    """One coroutine waiting for one subscription."""

    __slots__ = ("subscription", "loop", "future")

    def __init__(self, subscription, loop, future):
        self.subscription = subscription
        self.loop = loop
        self.future = future

    def ready(self) -> bool:
        sub = self.subscription
        return sub._port is None or sub.has_data()  # destroyed: wake up to raise

    def wake(self) -> None:
        try:
            self.loop.call_soon_threadsafe(_set_done, self.future)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _set_done(future) -> None:
    if not future.done():
        future.set_result(None)


class _Watcher:
    """The helper thread of one runtime: sleeps on the doorbell while coroutines wait."""

    def __init__(self, runtime):
        self.runtime = runtime
        self._cond = threading.Condition(threading.Lock())
        self._waiters: set[_Waiter] = set()
        self.stopped = False
        self._thread = threading.Thread(target=self._run, name="agnoshm-aio", daemon=True)
        self._thread.start()

    def add(self, waiter: _Waiter) -> None:
        with self._cond:
            if self.stopped:
                raise NotInitializedError("agnoshm is shut down in this process: call agnoshm.init()")
            self._waiters.add(waiter)
            self._cond.notify()

    def discard(self, waiter: _Waiter) -> None:
        with self._cond:
            self._waiters.discard(waiter)

    def stop(self) -> None:
        """Stop the thread and wake every waiter (run by agnoshm.shutdown, before unmapping)."""
        with self._cond:
            self.stopped = True
            self._cond.notify()
        runtime = self.runtime
        if not runtime.closed:
            runtime.doorbell.ring()

    def _run(self) -> None:
        runtime = self.runtime
        ticket = _gate.new_pass()
        wait = functools.partial(wait_for_work, runtime.doorbell, self._look,
                                 stop=lambda: self.stopped or not context.running(runtime),
                                 enter=functools.partial(_gate.enter, ticket, runtime),
                                 leave=functools.partial(_gate.leave, ticket))
        while True:
            with self._cond:
                while not self._waiters and not self.stopped:
                    self._cond.wait()
                if self.stopped:
                    break
            ready = wait()
            if ready is None:  # stopped, or agnoshm is closing
                break
            with self._cond:
                self._waiters.difference_update(ready)
            for waiter in ready:
                waiter.wake()
        with self._cond:
            self.stopped = True
            waiters, self._waiters = list(self._waiters), set()
        for waiter in waiters:  # they wake up, take() and raise or end their iteration
            waiter.wake()

    def _look(self) -> tuple:
        """The wake-up loop's look: the waiters whose subscription is ready; an empty list
        once nobody waits (the thread then sleeps on the condition, not the doorbell)."""
        with self._cond:
            waiters = list(self._waiters)
        ready = [w for w in waiters if w.ready()]
        return (ready if ready or not waiters else None), None


_watcher: _Watcher | None = None
_watcher_lock = threading.Lock()


def _watcher_for(runtime) -> _Watcher:
    global _watcher
    context.raise_if_stopped_by_signal()
    if runtime.closed or context._runtime is not runtime:
        raise NotInitializedError("agnoshm is shut down in this process: call agnoshm.init()")
    with _watcher_lock:
        watcher = _watcher
        if watcher is None or watcher.runtime is not runtime or watcher.stopped:
            watcher = _watcher = _Watcher(runtime)
            context.on_shutdown(watcher.stop)
        return watcher


async def result(future, timeout: float | None = None):
    """Await an agnoshm :class:`~agnoshm.Future` (e.g. ``client.call_async(request)``) from
    asyncio; return its result, or raise its exception.

    :param timeout: seconds; None waits until it is done.
    :raises asyncio.TimeoutError: if ``timeout`` passed first (the future goes on).
    """
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finished(_future) -> None:
        try:
            loop.call_soon_threadsafe(_set_done, done)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    future._add_waker(finished)
    await asyncio.wait_for(asyncio.shield(done), timeout)
    return future.result()
