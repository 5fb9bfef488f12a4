"""The process's agnoshm context: ``init()``, ``ok()``, ``shutdown()``.

One :class:`~agnoshm.transport.runtime.Runtime` per process, created by
``init()`` or by the first ``Node``.  ``shutdown()`` (also run at exit)
leaves the registry and removes everything this process created.  A child
made by ``fork()`` starts without a runtime and creates its own.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref

from agnoshm.config import Config, load_config
from agnoshm.errors import NotInitializedError

_lock = threading.RLock()
_runtime = None
_shutdown_callbacks: list = []
_nodes: "weakref.WeakSet" = weakref.WeakSet()


def register_node(node) -> None:
    """Remember ``node`` so that :func:`shutdown` destroys it (its publishers linger)."""
    _nodes.add(node)


def init(*, config: Config | None = None, **overrides):
    """Start agnoshm in this process (idempotent); return the runtime.

    :param config: a full configuration; default :func:`agnoshm.config.load_config`.
    :param overrides: single settings, e.g. ``backend="memfd"``.
    """
    global _runtime
    from agnoshm.transport.runtime import Runtime

    with _lock:
        if _runtime is not None and not _runtime.closed:
            return _runtime
        if config is None:
            config = load_config(**overrides)
        _runtime = Runtime(config)
        return _runtime


def get_runtime():
    """Return the running runtime, starting it with the default configuration if needed."""
    runtime = _runtime
    if runtime is not None and not runtime.closed:
        return runtime
    return init()


def ok() -> bool:
    """Return True while agnoshm runs in this process."""
    return _runtime is not None and not _runtime.closed


def on_shutdown(callback) -> None:
    """Call ``callback()`` at :func:`shutdown` (executors use it to wake up)."""
    _shutdown_callbacks.append(callback)


def shutdown() -> None:
    """Stop agnoshm in this process: destroy every node, leave the registry, remove our objects."""
    global _runtime
    for node in list(_nodes):
        try:
            node.destroy_node()
        except Exception:
            pass
    with _lock:
        runtime, _runtime = _runtime, None
        callbacks = list(_shutdown_callbacks)
        _shutdown_callbacks.clear()
    for callback in callbacks:
        try:
            callback()
        except Exception:
            pass
    if runtime is not None:
        try:
            runtime.doorbell.ring()  # wake executors blocked in this process
        except Exception:
            pass
        runtime.close()


def require_runtime():
    runtime = _runtime
    if runtime is None or runtime.closed:
        raise NotInitializedError("agnoshm is shut down in this process: call agnoshm.init() first")
    return runtime


def _forget_after_fork() -> None:
    global _runtime, _lock
    if _runtime is not None:
        _runtime.abandon_after_fork()
    _runtime = None
    _lock = threading.RLock()
    _shutdown_callbacks.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(shutdown)
