"""The agnoshm endpoints of rclpy nodes: publisher, polling and callback subscriptions.

A :class:`RosSubscription` owns one rclpy guard condition
(``node.create_guard_condition(callback, callback_group)``, Humble and Jazzy).
rclpy's executors run its callback as they run a timer's: the callback group is
honoured, and an ``async def`` callback is awaited (``await_or_execute``).  The
callback takes one message, runs the user callback with it, and triggers the
guard again if data is left, so other members of a mutually exclusive group get
their turns.  A user callback that raises leaves the re-trigger done; rclpy
stores the exception in the handler's task, and ``spin_once`` raises it
(a ``MultiThreadedExecutor`` raises it from a later ``spin_once``).

A subscription on a node already added to an executor that is not an
``rclpy.executors.Executor`` but has ``create_task`` (rclpy's C++
``EventsExecutor``, which refuses nodes with guard conditions) gets no guard:
it is signalled with ``executor.create_task(callback)``.
"""

from __future__ import annotations

import inspect
import itertools
import time

from agnoshm.errors import InvalidHandleError
from agnoshm.publisher import Publisher
from agnoshm.ros import dispatch
from agnoshm.subscription import PollingSubscription, Subscription


def wants_message_info(callback) -> bool:
    """True for ``cb(msg, info)``, False for ``cb(msg)``: Jazzy rclpy's rule (one argument
    is tried first; ``Subscription.callback`` setter in ``rclpy/subscription.py``).

    Unlike rclpy, a callable without a signature (some builtins, e.g. ``print``)
    counts as ``cb(msg)``, and a bad one raises ``TypeError`` (rclpy: ``RuntimeError``).

    :raises TypeError: for a callback taking neither one nor two arguments.
    """
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):  # no signature (some builtins): assume cb(msg)
        return False
    for arity, with_info in ((1, False), (2, True)):
        try:
            signature.bind(*[object()] * arity)
            return with_info
        except TypeError:
            pass
    raise TypeError(f"callback {callback!r} must take one argument (msg) or two (msg, info)")


class _OnRclpyNode:
    """Teardown shared by the endpoints of an rclpy node (its ``_node`` is a ``NodeBinding``)."""

    def destroy(self) -> None:
        """Leave the registry (publishers after lingering for live subscribers); idempotent."""
        _forget_port_if_shut_down(self)
        super().destroy()
        self._node.forget(self)


class RosPublisher(_OnRclpyNode, Publisher):
    """A zero-copy publisher on an rclpy node.

    .. warning:: Users should not create one with this constructor, instead they
       should call :func:`agnoshm.ros.create_publisher`.
    """


class RosPollingSubscription(_OnRclpyNode, PollingSubscription):
    """A polling subscription on an rclpy node (``take()`` returns a view or None).

    .. warning:: Users should not create one with this constructor, instead they
       should call :func:`agnoshm.ros.create_polling_subscription`.
    """


class RosSubscription(_OnRclpyNode, Subscription):
    """A zero-copy subscription whose callback an rclpy executor runs.

    .. warning:: Users should not create one with this constructor, instead they
       should call :func:`agnoshm.ros.create_subscription`.
    """

    def __init__(self, binding, port, msg_type, topic_name: str, callback, qos_profile,
                 callback_group, with_info: bool):
        super().__init__(binding, port, msg_type, topic_name, callback, qos_profile, callback_group)
        self._guard = None  # None in EventsExecutor (task) mode
        self._with_info = with_info
        self._pending = False  # a trigger (or task) is outstanding
        self._closed = False
        self._received = itertools.count(1)  # next() is atomic: callbacks may run concurrently
        self._task_executor = None

    def _ready_callback(self):
        """What the executor calls: a coroutine function for ``async def`` callbacks."""
        return self._on_ready_async if inspect.iscoroutinefunction(self.callback) else self._on_ready

    def attach_guard(self, node, callback_group) -> None:
        """Create this subscription's guard condition on ``node`` (rclpy node)."""
        self._guard = node.create_guard_condition(self._ready_callback(), callback_group)
        self.callback_group = self._guard.callback_group

    # called by the background thread ---------------------------------------------------
    def _poke(self) -> None:
        """Signal the executor if there is data and no signal outstanding."""
        if self._pending or self._closed or not self.has_data():
            return
        self._pending = True
        if not self._signal() and not self._closed:
            _orphaned(self)

    def _sweep(self) -> None:
        """Notice a context, guard or node that went away without this subscription being told."""
        binding = self._node
        if binding.context_shut_down():  # e.g. Ctrl-C: rclpy ran no on_shutdown callback
            binding.destroy_node(wait=False)
            return
        guard = self._guard
        if guard is not None:
            try:
                with guard.handle:
                    return
            except RuntimeError:  # InvalidHandle: the node was destroyed
                _orphaned(self)
                return
        node = binding.node
        if node is None:
            _orphaned(self)
        elif self._pending and node.executor is not self._task_executor:
            self._pending = False  # its task went with the old executor: schedule anew

    # called by either ----------------------------------------------------------------------
    def _signal(self) -> bool:
        """Trigger the guard (or schedule a task); False if the guard or node is gone."""
        guard = self._guard
        try:
            if guard is not None:
                guard.trigger()
                return True
            node = self._node.node
            if node is None:
                return False
            executor = node.executor
            if executor is None:  # not spun yet: the next ring or sweep signals again
                self._pending = False
                return True
            self._task_executor = executor
            executor.create_task(self._ready_callback())
            return True
        except RuntimeError:  # InvalidHandle and RCLError are RuntimeErrors: destroyed meanwhile
            self._pending = False
            return False

    # called by the executor -------------------------------------------------------------
    def _take_view(self):
        self._pending = False
        if self._port is None:
            return None
        try:
            return self.take()
        except InvalidHandleError:  # destroyed between the check and the take
            return None

    def _again(self) -> None:
        if not self._closed and not self._pending and self.has_data():
            self._pending = True
            self._signal()

    def _arguments(self, msg) -> tuple:
        received = next(self._received)
        if not self._with_info:
            return (msg,)
        wall, mono = time.time_ns(), time.monotonic_ns()
        return msg, {"source_timestamp": wall - (mono - msg.timestamp_ns),
                     "received_timestamp": wall,
                     "publication_sequence_number": msg.seq,
                     "reception_sequence_number": received}

    def _on_ready(self) -> None:
        """Guard callback: deliver one message, then re-trigger while data is left."""
        msg = self._take_view()
        if msg is None:
            return
        try:
            self.callback(*self._arguments(msg))
        finally:
            del msg  # release the message before signalling again
            self._again()

    async def _on_ready_async(self) -> None:
        """Guard callback for ``async def`` callbacks (awaited by the executor)."""
        msg = self._take_view()
        if msg is None:
            return
        try:
            await self.callback(*self._arguments(msg))
        finally:
            del msg
            self._again()

    # teardown ---------------------------------------------------------------------------------
    def destroy(self) -> None:
        """Stop dispatching, destroy the guard condition and leave the registry; idempotent."""
        if not self._closed:
            self._closed = True
            dispatcher = dispatch.current()
            if dispatcher is not None:
                dispatcher.remove(self)
            guard, self._guard = self._guard, None
            if guard is not None:
                _destroy_guard(self._node.node, guard)
        super().destroy()


def _destroy_guard(node, guard) -> None:
    """``node.destroy_guard_condition(guard)``, or ``guard.destroy()`` when the node no
    longer lists it (``destroy_node()`` got there first; destroying twice is a no-op)."""
    try:
        if node is None or not node.destroy_guard_condition(guard):
            guard.destroy()
    except RuntimeError:  # InvalidHandle
        pass
    except ValueError:  # rclpy's destroy_node() removed it from node._guards meanwhile
        pass


def _forget_port_if_shut_down(endpoint) -> None:
    """After ``agnoshm.shutdown()`` the registry is gone: drop the port, touch nothing."""
    port = endpoint._port
    if port is not None and port.runtime.closed:
        endpoint._port = None


def _orphaned(sub: RosSubscription) -> None:
    """The background thread found ``sub``'s guard or node gone: tear down what is left."""
    binding = sub._node
    if binding.node_is_gone():
        binding.destroy_node(wait=False)  # (on the dispatch thread: never wait)
    else:
        sub.destroy()
