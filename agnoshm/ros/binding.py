"""agnoshm's side of each rclpy node, and the hooks that end it.

A :class:`NodeBinding` holds the agnoshm endpoints created on one rclpy node.
They are destroyed (never the rclpy node itself) by:

- ``node.destroy_node()``: rclpy sends no notification, so an instance
  attribute wraps the node's ``destroy_node`` (:func:`_hook_destroy_node`);
- ``rclpy.shutdown()`` / ``rclpy.try_shutdown()`` of the node's context: a
  ``Context.on_shutdown`` callback, registered once per context;
- a context shut down by rclpy's signal handler (Ctrl-C, SIGTERM): that runs
  ``rcl_shutdown`` from C++ (``shutdown_contexts()`` in
  ``src/rclpy/signal_handler.cpp``) and never the ``on_shutdown`` callbacks,
  and a later ``try_shutdown()`` finds the context already down and skips them
  too; the dispatch thread's sweep notices it (:meth:`NodeBinding.context_shut_down`);
- ``agnoshm.shutdown()``: every binding is registered with agnoshm's context.

The module state is reset in a forked child.  rclpy is imported only by
:func:`import_rclpy`.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import weakref

from agnoshm import context
from agnoshm.errors import InvalidHandleError
from agnoshm.publisher import Publisher

_logger = logging.getLogger("agnoshm.ros")

NO_RCLPY = ("agnoshm.ros needs ROS 2's Python client library (rclpy), which is not "
            "importable here: source your ROS 2 setup first (e.g. `source "
            "/opt/ros/jazzy/setup.bash`), or use agnoshm.Node, which needs no ROS")

_lock = threading.RLock()  # guards the module state below; never held while calling rclpy
_bindings: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # rclpy node -> NodeBinding
_hooked_contexts: "weakref.WeakSet" = weakref.WeakSet()


def import_rclpy():
    """Import and return rclpy (with ``rclpy.node`` and ``rclpy.executors`` loaded).

    :raises ImportError: naming the fix (source ROS 2) when rclpy is missing.
    """
    try:
        import rclpy
        import rclpy.executors
        import rclpy.node
    except ImportError as err:
        raise ImportError(NO_RCLPY) from err
    return rclpy


class NodeBinding:
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
        self._torn_down = threading.Event()
        self._tearing_down_in: threading.Thread | None = None

    @property
    def node(self):
        """The rclpy node, or None once it was garbage collected."""
        return self._node_ref()

    def get_fully_qualified_name(self) -> str:
        return self.name

    @property
    def endpoints(self) -> list:
        with self._lock:
            return list(self._endpoints)

    def add(self, endpoint) -> None:
        """Record a new endpoint; destroy it and raise if the node was destroyed meanwhile."""
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
        """Whether the rclpy node was collected or destroyed (its handle is invalid)."""
        node = self.node
        if node is None:
            return True
        try:
            with node.handle:
                return False
        except RuntimeError:  # rclpy.exceptions.InvalidHandle
            return True

    def context_shut_down(self) -> bool:
        """Whether the node's rclpy context was shut down, asked without its lock.

        ``Context.ok()`` takes the context's lock, which ``rclpy.shutdown()``
        holds while it runs the ``on_shutdown`` callbacks, and ours joins the
        dispatch thread that calls this: the C handle (``Context.handle``, the
        ``_rclpy.Context`` whose ``ok()`` is ``rcl_context_is_valid``) needs none.
        """
        handle = getattr(self.context, "handle", None)
        if handle is None or not hasattr(handle, "ok"):
            return False
        try:
            with handle:
                return not handle.ok()
        except RuntimeError:  # InvalidHandle: Context.destroy() was called
            return True

    def destroy_node(self, *, wait: bool = True) -> None:
        """Destroy this node's agnoshm endpoints (subscriptions first); idempotent.

        :param wait: if another thread is tearing them down, wait until it is
            done, so that rclpy's ``destroy_node()`` (run next by the hook) does
            not destroy guard conditions at the same time.  The dispatch thread
            passes False: the thread tearing down may be joining it.
        """
        me = threading.current_thread()
        with self._lock:
            if self.destroyed:  # done, or under way
                busy, endpoints = self._tearing_down_in, None
            else:
                self.destroyed, self._tearing_down_in = True, me
                endpoints, self._endpoints = self._endpoints, []
        if endpoints is None:
            if wait and busy is not None and busy is not me:
                self._torn_down.wait()
            return
        try:
            endpoints.sort(key=lambda e: isinstance(e, Publisher))
            for endpoint in endpoints:
                try:
                    endpoint.destroy()
                except Exception:  # keep tearing down the others
                    _logger.exception("destroying %r failed", endpoint)
        finally:
            self._tearing_down_in = None
            self._torn_down.set()

    def __repr__(self) -> str:
        return f"<agnoshm.ros binding of rclpy node {self.name}>"


def binding_for(node, rclpy) -> NodeBinding:
    """The live binding of ``node`` for the running agnoshm runtime, made (and hooked) on
    first use."""
    runtime = context.get_runtime()
    with _lock:
        binding = _bindings.get(node)
        if binding is not None and not binding.destroyed and binding.runtime is runtime:
            return binding
        binding = _bindings[node] = NodeBinding(node, rclpy, runtime)
        context.register_node(binding)  # agnoshm.shutdown() tears it down
        hook_context = binding.context not in _hooked_contexts
        if hook_context:
            _hooked_contexts.add(binding.context)
    _hook_destroy_node(node)
    if hook_context:  # outside _lock: on_shutdown calls back at once on a shut-down context
        # A partial, not a bound method: rclpy keeps methods only through a WeakMethod.
        binding.context.on_shutdown(functools.partial(_on_rclpy_shutdown,
                                                      weakref.ref(binding.context)))
    return binding


def binding_of(node) -> NodeBinding | None:
    """The binding of ``node`` (its agnoshm endpoints), if any was made."""
    with _lock:
        return _bindings.get(node)


def destroy_endpoints(node) -> None:
    """Destroy every agnoshm endpoint created on ``node`` (``destroy_node`` does this too)."""
    with _lock:
        binding = _bindings.get(node)
    if binding is not None:
        binding.destroy_node()


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
    """``Context.on_shutdown`` callback: tear down the endpoints of that context's nodes.

    rclpy runs it holding the context's non-reentrant lock, so it never calls
    ``context.ok()``.  rclpy's ``_call_on_shutdown_callbacks`` calls every
    non-method entry once to "dereference" it and then calls what that returned
    if it is not None: this must return None.
    """
    shut = context_ref()
    with _lock:
        bindings = [b for b in list(_bindings.values()) if b.context is shut]
        _hooked_contexts.discard(shut)
    for binding in bindings:
        binding.destroy_node()
    return None


def _forget_after_fork() -> None:
    global _lock, _bindings, _hooked_contexts
    _lock = threading.RLock()
    _bindings = weakref.WeakKeyDictionary()
    _hooked_contexts = weakref.WeakSet()


os.register_at_fork(after_in_child=_forget_after_fork)
