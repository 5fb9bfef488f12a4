"""Zero-copy agnoshm endpoints on rclpy nodes, with callbacks run by rclpy's executors.

How a message reaches a callback (ROS2_NOTES.md §1.5, docs/ros.md):

1. Each subscription owns one guard condition, made with
   ``node.create_guard_condition(callback, callback_group)``.  rclpy's
   executors run it like a timer: callback groups, single- and multi-threaded
   executors and ``async def`` callbacks all behave as for rclpy's own
   entities.
2. One background thread per process (``agnoshm-ros-dispatch``) sleeps on the
   process's doorbell (a futex wait that releases the GIL); publishers ring it
   once per message for every subscribing process.  Awake, it triggers the
   guard of each subscription that has data and no trigger outstanding.
3. The guard callback takes one message, runs the user callback with it
   (``cb(msg)``, or ``cb(msg, info)`` when the callback takes two arguments, as
   rclpy does), and triggers its guard again if more data is left, so other
   members of a mutually exclusive group get their turns.

Teardown: ``node.destroy_node()`` (a hook installed on the node destroys the
agnoshm endpoints first), ``sub.destroy()`` / ``pub.destroy()``,
``rclpy.shutdown()`` (``Context.on_shutdown``) and ``agnoshm.shutdown()``.
Order per subscription: detach from the thread (joined when it was the last
one), destroy the guard (``InvalidHandle`` means ``destroy_node`` got there
first), then leave the registry.

rclpy's ``EventsExecutor`` refuses guard conditions: a subscription created on
a node already added to one dispatches with ``executor.create_task`` instead.

rclpy is imported only inside the functions that need it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
import time
import weakref

from agnoshm import context
from agnoshm.errors import InvalidHandleError, InvalidQoSError
from agnoshm.msg import resolve_type
from agnoshm.node import Node
from agnoshm.publisher import Publisher
from agnoshm.qos import resolve_qos
from agnoshm.subscription import PollingSubscription, Subscription
from agnoshm.topic_name import expand_topic_name, validate_full_topic_name

_logger = logging.getLogger("agnoshm.ros")

#: Seconds between the background thread's checks for nodes destroyed behind its
#: back (e.g. ``rclpy.node.Node.destroy_node(node)`` called on the class).
SWEEP_PERIOD = 1.0

_NO_RCLPY = ("agnoshm.ros needs ROS 2's Python client library (rclpy), which is not "
             "importable here: source your ROS 2 setup first (e.g. `source "
             "/opt/ros/jazzy/setup.bash`), or use agnoshm.Node, which needs no ROS")

_lock = threading.RLock()  # guards the module state below; never held while calling rclpy
_bindings: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # rclpy node -> _NodeBinding
_hooked_contexts: "weakref.WeakSet" = weakref.WeakSet()
_dispatcher: "_Dispatcher | None" = None


# -- public API -------------------------------------------------------------------------------

def create_publisher(node, msg_type, topic: str, qos_profile) -> Publisher:
    """Create a zero-copy publisher on an rclpy node (or an ``agnoshm.Node``).

    :param node: an ``rclpy.node.Node``; its name, namespace and remappings apply.
    :param msg_type: an rclpy message class, ``"pkg/msg/Name"`` or an agnoshm type.
    :param topic: topic name, resolved with ``node.resolve_topic_name`` (remaps apply).
    :param qos_profile: an int depth or a ``QoSProfile`` (rclpy's or agnoshm's).
    :raises ImportError: if rclpy is not importable (source ROS 2).
    :raises TypeError: if ``node`` is not an rclpy or agnoshm node.
    :raises InvalidQoSError: for a QoS setting agnoshm cannot honour.
    """
    if isinstance(node, Node):
        return node.create_publisher(msg_type, topic, qos_profile)
    binding, msg_type, topic_name, depth, durability = _prepare(node, msg_type, topic, qos_profile)
    port = binding.runtime.create_publisher_port(topic_name, msg_type.type_name, msg_type.type_hash,
                                                 depth, durability, binding.name)
    publisher = RosPublisher(binding, port, msg_type, topic_name, qos_profile)
    binding.add(publisher)
    return publisher


def create_subscription(node, msg_type, topic: str, callback, qos_profile, *,
                        callback_group=None) -> "RosSubscription":
    """Create a zero-copy subscription whose callback runs in the node's rclpy executor.

    ``callback(msg)`` receives a read-only view of the message in the
    publisher's pool (``msg.to_ros()`` copies it into an rclpy message); a
    callback taking two arguments gets ``(msg, info)`` as in rclpy (Jazzy), with
    ``info`` a dict of ``source_timestamp``, ``received_timestamp`` (ns,
    system clock), ``publication_sequence_number`` (the topic-wide sequence
    number) and ``reception_sequence_number``.  ``async def`` callbacks are
    awaited by the executor.

    :param callback_group: an rclpy callback group; default the node's default group.
    :raises ImportError: if rclpy is not importable (source ROS 2).
    :raises TypeError: if ``node`` is not a node or ``callback`` is not callable
        with one or two arguments.
    :raises InvalidQoSError: for a QoS setting agnoshm cannot honour.
    """
    if isinstance(node, Node):
        return node.create_subscription(msg_type, topic, callback, qos_profile,
                                        callback_group=callback_group)
    if not callable(callback):
        raise TypeError(f"callback must be callable, not {type(callback).__name__}")
    with_info = _wants_message_info(callback)
    binding, msg_type, topic_name, depth, durability = _prepare(node, msg_type, topic, qos_profile)
    rclpy_executors = binding.rclpy.executors
    executor = node.executor
    use_tasks = executor is not None and not isinstance(executor, rclpy_executors.Executor) \
        and hasattr(executor, "create_task")
    port = binding.runtime.create_subscriber_port(topic_name, msg_type.type_name,
                                                  msg_type.type_hash, depth, durability, binding.name)
    try:
        sub = RosSubscription(binding, port, msg_type, topic_name, callback, qos_profile,
                              callback_group, with_info)
        if not use_tasks:  # (an EventsExecutor refuses guards: it gets tasks instead)
            ready = sub._on_ready_async if inspect.iscoroutinefunction(callback) else sub._on_ready
            sub._guard = node.create_guard_condition(ready, callback_group)
            sub.callback_group = sub._guard.callback_group
    except BaseException:
        port.destroy()
        raise
    binding.add(sub)
    _get_dispatcher(binding.runtime).add(sub)
    return sub


def create_polling_subscription(node, msg_type, topic: str, qos_profile) -> PollingSubscription:
    """Create a subscription read with ``take()`` (a view, or None); it never runs callbacks.

    :raises ImportError: if rclpy is not importable (source ROS 2).
    :raises TypeError: if ``node`` is not an rclpy or agnoshm node.
    """
    if isinstance(node, Node):
        return node.create_polling_subscription(msg_type, topic, qos_profile)
    binding, msg_type, topic_name, depth, durability = _prepare(node, msg_type, topic, qos_profile)
    port = binding.runtime.create_subscriber_port(topic_name, msg_type.type_name,
                                                  msg_type.type_hash, depth, durability, binding.name)
    sub = RosPollingSubscription(binding, port, msg_type, topic_name, qos_profile)
    binding.add(sub)
    return sub


def destroy_endpoints(node) -> None:
    """Destroy every agnoshm endpoint created on ``node`` (``destroy_node`` does this too)."""
    with _lock:
        binding = _bindings.get(node)
    if binding is not None:
        binding.destroy_node()


# -- endpoints --------------------------------------------------------------------------------

class RosPublisher(Publisher):
    """A zero-copy publisher on an rclpy node.

    .. warning:: Users should not create one with this constructor, instead they
       should call :func:`agnoshm.ros.create_publisher`.
    """

    def destroy(self) -> None:
        """Leave the registry (after lingering for live subscribers); idempotent."""
        _forget_port_if_shut_down(self)
        super().destroy()
        self._node.forget(self)


class RosPollingSubscription(PollingSubscription):
    """A polling subscription on an rclpy node (``take()`` returns a view or None).

    .. warning:: Users should not create one with this constructor, instead they
       should call :func:`agnoshm.ros.create_polling_subscription`.
    """

    def destroy(self) -> None:
        _forget_port_if_shut_down(self)
        super().destroy()
        self._node.forget(self)


class RosSubscription(Subscription):
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
        self._received = 0
        self._task_executor = None

    # called by the background thread ---------------------------------------------------
    def _poke(self) -> None:
        """Signal the executor if there is data and no signal outstanding."""
        if self._pending or self._closed or not self.has_data():
            return
        self._pending = True
        if not self._signal() and not self._closed:
            _orphaned(self)

    def _sweep(self) -> None:
        """Notice a guard or node destroyed without this subscription being told."""
        guard = self._guard
        if guard is not None:
            try:
                with guard.handle:
                    return
            except RuntimeError:  # InvalidHandle: the node was destroyed
                _orphaned(self)
                return
        node = self._node.node
        if node is None:
            _orphaned(self)
        elif self._pending and node.executor is not self._task_executor:
            self._pending = False  # its task went with the old executor: schedule anew

    # called by the executor -------------------------------------------------------------
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
            callback = self._on_ready_async if inspect.iscoroutinefunction(self.callback) \
                else self._on_ready
            executor.create_task(callback)
            return True
        except RuntimeError:  # InvalidHandle (a RuntimeError): destroyed meanwhile
            self._pending = False
            return False

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
        self._received += 1
        if not self._with_info:
            return (msg,)
        wall, mono = time.time_ns(), time.monotonic_ns()
        return msg, {"source_timestamp": wall - (mono - msg.timestamp_ns),
                     "received_timestamp": wall,
                     "publication_sequence_number": msg.seq,
                     "reception_sequence_number": self._received}

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
            dispatcher = _dispatcher
            if dispatcher is not None:
                dispatcher.remove(self)
            guard, self._guard = self._guard, None
            if guard is not None:
                node = self._node.node
                try:
                    if node is None or not node.destroy_guard_condition(guard):
                        guard.destroy()
                except RuntimeError:  # InvalidHandle: destroy_node() destroyed it already
                    pass
        _forget_port_if_shut_down(self)
        super().destroy()
        self._node.forget(self)


def _forget_port_if_shut_down(endpoint) -> None:
    """After ``agnoshm.shutdown()`` the registry is gone: drop the port, touch nothing."""
    port = endpoint._port
    if port is not None and port.runtime.closed:
        endpoint._port = None


def _orphaned(sub: RosSubscription) -> None:
    """The background thread found ``sub``'s guard or node gone: tear down what is left."""
    binding = sub._node
    if binding.node_is_gone():
        binding.destroy_node()
    else:
        sub.destroy()


# -- per-node state ----------------------------------------------------------------------------

class _NodeBinding:
    """agnoshm's side of one rclpy node: its endpoints and how to tear them down.

    It is the endpoints' ``_node`` and is registered with agnoshm's context, so
    ``agnoshm.shutdown()`` calls its :meth:`destroy_node`, which destroys the
    agnoshm endpoints only, never the rclpy node.
    """

    def __init__(self, node, rclpy, runtime):
        self._node_ref = weakref.ref(node)
        self.rclpy = rclpy
        self.runtime = self._runtime = runtime  # _runtime: as agnoshm.Node has it
        self.name = node.get_fully_qualified_name()
        self.context = node.context
        self.destroyed = False
        self._endpoints: list = []
        self._lock = threading.Lock()

    @property
    def node(self):
        return self._node_ref()

    def get_fully_qualified_name(self) -> str:
        return self.name

    @property
    def endpoints(self) -> list:
        with self._lock:
            return list(self._endpoints)

    def add(self, endpoint) -> None:
        with self._lock:
            if not self.destroyed:
                self._endpoints.append(endpoint)
                return
        endpoint.destroy()
        raise InvalidHandleError(f"node {self.name} was destroyed; create a new node")

    def forget(self, endpoint) -> None:
        with self._lock:
            if endpoint in self._endpoints:
                self._endpoints.remove(endpoint)

    def _destroy_endpoint(self, endpoint) -> bool:
        """``with endpoint:`` exit: destroy it (as ``Node.destroy_publisher`` would)."""
        known = endpoint in self.endpoints
        endpoint.destroy()
        return known

    def node_is_gone(self) -> bool:
        node = self.node
        if node is None:
            return True
        try:
            with node.handle:
                return False
        except RuntimeError:  # InvalidHandle
            return True

    def destroy_node(self) -> None:
        """Destroy this node's agnoshm endpoints (subscriptions first); idempotent."""
        with self._lock:
            if self.destroyed:
                return
            self.destroyed = True
            endpoints, self._endpoints = self._endpoints, []
        endpoints.sort(key=lambda e: isinstance(e, Publisher))
        for endpoint in endpoints:
            try:
                endpoint.destroy()
            except Exception:  # keep tearing down the others
                _logger.exception("destroying %r failed", endpoint)

    def __repr__(self) -> str:
        return f"<agnoshm.ros binding of rclpy node {self.name}>"


def _import_rclpy():
    try:
        import rclpy
        import rclpy.executors
        import rclpy.node
    except ImportError as err:
        raise ImportError(_NO_RCLPY) from err
    return rclpy


def _prepare(node, msg_type, topic, qos_profile):
    """Check everything and bind the node; return (binding, type, topic, depth, durability)."""
    rclpy = _import_rclpy()
    if not isinstance(node, rclpy.node.Node):
        raise TypeError(f"expected an rclpy.node.Node or an agnoshm.Node, got "
                        f"{type(node).__module__}.{type(node).__qualname__}")
    if not node.context.ok():
        raise InvalidHandleError(f"the rclpy context of node {node.get_fully_qualified_name()} "
                                 "was shut down: call rclpy.init() and create a new node")
    check_ros_qos(qos_profile)
    depth, durability = resolve_qos(qos_profile)
    msg_type = resolve_type(msg_type)
    topic_name = resolve_topic_name(node, topic)
    return _binding_for(node, rclpy), msg_type, topic_name, depth, durability


def resolve_topic_name(node, topic: str) -> str:
    """Expand and remap ``topic`` as rclpy does for ``node`` (``-r from:=to`` applies).

    :raises InvalidTopicNameError: for a name breaking ROS 2 rules (with a caret under it).
    """
    expand_topic_name(topic, node.get_name(), node.get_namespace())  # agnoshm's clear errors
    return validate_full_topic_name(node.resolve_topic_name(topic))


def _binding_for(node, rclpy) -> _NodeBinding:
    runtime = context.get_runtime()
    with _lock:
        binding = _bindings.get(node)
        if binding is not None and not binding.destroyed and binding.runtime is runtime:
            return binding
        binding = _bindings[node] = _NodeBinding(node, rclpy, runtime)
        context.register_node(binding)  # agnoshm.shutdown() tears it down
        hook_context = binding.context not in _hooked_contexts
        if hook_context:
            _hooked_contexts.add(binding.context)
    _hook_destroy_node(node)
    if hook_context:  # outside _lock: on_shutdown may call back at once, holding its lock
        binding.context.on_shutdown(functools.partial(_on_rclpy_shutdown,
                                                      weakref.ref(binding.context)))
    return binding


def _hook_destroy_node(node) -> None:
    """Make ``node.destroy_node()`` destroy the agnoshm endpoints first.

    rclpy gives no notification of node destruction; an instance attribute
    wraps whatever ``destroy_node`` the node has (a subclass's override too).
    It holds the node weakly, so it creates no reference cycle.
    """
    previous = getattr(node, "__dict__", {}).get("destroy_node")
    if getattr(previous, "_agnoshm_hook", False):
        return
    node_ref = weakref.ref(node)

    def destroy_node(*args, **kwargs):
        target = node_ref()
        if target is None:
            return None
        destroy_endpoints(target)
        if previous is not None:
            return previous(*args, **kwargs)
        return type(target).destroy_node(target, *args, **kwargs)

    destroy_node._agnoshm_hook = True
    destroy_node.__doc__ = type(node).destroy_node.__doc__
    try:
        node.destroy_node = destroy_node
    except AttributeError:  # a node class without instance attributes: the sweep notices
        pass


def _on_rclpy_shutdown(context_ref) -> None:
    """``Context.on_shutdown`` callback: runs holding the context's lock, so it never
    calls ``context.ok()``; it tears down the endpoints of that context's nodes."""
    shut = context_ref()
    with _lock:
        bindings = [b for b in list(_bindings.values()) if b.context is shut]
        _hooked_contexts.discard(shut)
    for binding in bindings:
        binding.destroy_node()


# -- QoS and callbacks ----------------------------------------------------------------------------

_INFINITE_NS = 9_223_372_036_000_000_000  # about RMW_DURATION_INFINITE: "not set"
_LIVELINESS_OK = {0, 1, 5}  # SYSTEM_DEFAULT, AUTOMATIC, BEST_AVAILABLE (Jazzy)


def check_ros_qos(qos) -> None:
    """Refuse rclpy QoS settings agnoshm cannot honour (beyond history/depth/durability,
    which :func:`agnoshm.qos.resolve_qos` checks).

    :raises InvalidQoSError: for a deadline, lifespan or liveliness lease, or manual liveliness.
    """
    if isinstance(qos, int):
        return
    for field, what in (("deadline", "deadline events"), ("lifespan", "message expiry"),
                        ("liveliness_lease_duration", "liveliness leases")):
        value = getattr(qos, field, None)
        ns = getattr(value, "nanoseconds", value)
        if isinstance(ns, int) and 0 < ns < _INFINITE_NS:
            raise InvalidQoSError(f"{field} {value!r} cannot be honoured: agnoshm has no {what}; "
                                  f"leave {field} at its default")
    liveliness = getattr(qos, "liveliness", None)
    if liveliness is not None and int(liveliness) not in _LIVELINESS_OK:
        name = getattr(liveliness, "name", liveliness)
        raise InvalidQoSError(f"liveliness {name} cannot be honoured: agnoshm detects dead "
                              "processes itself and has no assert_liveliness(); use AUTOMATIC")


def _wants_message_info(callback) -> bool:
    """True for ``cb(msg, info)``, False for ``cb(msg)`` (rclpy's rule: one argument first)."""
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


# -- the background thread -----------------------------------------------------------------------

class _Dispatcher:
    """One thread per process: wait on the doorbell, signal subscriptions that have data."""

    def __init__(self, runtime):
        self.runtime = runtime
        self._subs: tuple = ()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def add(self, sub: RosSubscription) -> None:
        with self._lock:
            self._subs += (sub,)
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                                name="agnoshm-ros-dispatch", daemon=True)
                self._thread.start()
        sub._poke()  # TRANSIENT_LOCAL: data may be there already

    def remove(self, sub: RosSubscription) -> None:
        """Stop signalling ``sub``; the last one out stops (and joins) the thread."""
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)
            if self._subs:
                return
            detached = self._detach_locked()
        self._join(*detached)

    def stop(self) -> None:
        """Stop and join the thread (agnoshm shutdown); it restarts on the next add."""
        with self._lock:
            self._subs = ()
            detached = self._detach_locked()
        self._join(*detached)

    def _detach_locked(self):
        thread, stop = self._thread, self._stop
        self._thread = self._stop = None
        return thread, stop

    def _join(self, thread, stop) -> None:
        if thread is None:
            return
        stop.set()
        if not self.runtime.closed:
            self.runtime.doorbell.ring()
        if thread is not threading.current_thread():  # not from the thread itself (sweep)
            thread.join()

    def _run(self, stop: threading.Event) -> None:
        doorbell = self.runtime.doorbell
        next_sweep = time.monotonic() + SWEEP_PERIOD
        while not stop.is_set():
            seen = doorbell.value()
            for sub in self._subs:
                try:
                    sub._poke()
                except Exception:
                    _logger.exception("signalling subscription on %s failed", sub.topic_name)
            if time.monotonic() >= next_sweep:
                for sub in self._subs:
                    try:
                        sub._sweep()
                    except Exception:
                        _logger.exception("checking subscription on %s failed", sub.topic_name)
                next_sweep = time.monotonic() + SWEEP_PERIOD
            if stop.is_set():
                return
            doorbell.wait(seen, max(0.0, next_sweep - time.monotonic()))


def _get_dispatcher(runtime) -> _Dispatcher:
    global _dispatcher
    with _lock:
        if _dispatcher is not None and _dispatcher.runtime is runtime:
            return _dispatcher
        old, _dispatcher = _dispatcher, _Dispatcher(runtime)
        dispatcher = _dispatcher
    if old is not None:
        old.stop()
    context.on_shutdown(dispatcher.stop)  # joined before agnoshm closes the doorbell
    return dispatcher


def _forget_after_fork() -> None:
    global _lock, _bindings, _hooked_contexts, _dispatcher
    _lock = threading.RLock()
    _bindings = weakref.WeakKeyDictionary()
    _hooked_contexts = weakref.WeakSet()
    _dispatcher = None


os.register_at_fork(after_in_child=_forget_after_fork)
