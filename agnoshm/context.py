"""The process's agnoshm context: ``init()``, ``ok()``, ``shutdown()``.

One :class:`~agnoshm.transport.runtime.Runtime` per process, created by
``init()`` or by the first ``Node``.  ``shutdown()`` (also run at exit)
leaves the registry and removes everything this process created.  A child
made by ``fork()`` starts without a runtime and creates its own.  SIGINT and
SIGTERM stop agnoshm as they stop rclpy (:mod:`agnoshm.signals`); starting and
shutting down hold them until done.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import weakref

from agnoshm import signals
from agnoshm.config import Config, load_config
from agnoshm.errors import NotInitializedError
from agnoshm.msg import arrays
from agnoshm.signals import SignalHandlerOptions

_lock = threading.RLock()
_runtime = None
_shutdown_callbacks: list = []
_nodes: "weakref.WeakSet" = weakref.WeakSet()
_stopped_by: int | None = None  # the signal that stopped agnoshm (see agnoshm.signals)


def register_node(node) -> None:
    """Remember ``node`` so that :func:`shutdown` destroys it (its publishers linger)."""
    _nodes.add(node)


def init(*, config: Config | None = None,
         signal_handler_options: SignalHandlerOptions | None = None, **overrides):
    """Start agnoshm in this process (idempotent); return the runtime.

    :param config: a full configuration; default :func:`agnoshm.config.load_config`.
    :param signal_handler_options: which of SIGINT and SIGTERM stop agnoshm (rclpy's
        values; None: both, as rclpy's default context; ``NO`` keeps the program's own).
    :param overrides: single settings, e.g. ``backend="memfd"``.
    """
    global _runtime, _stopped_by
    from agnoshm.transport.runtime import Runtime

    with _lock:
        if _runtime is not None and not _runtime.closed:
            return _runtime
        if config is None:
            config = load_config(**overrides)
        with signals.held():  # a Ctrl-C now would leave a half-made runtime behind
            _runtime = Runtime(config)
            arrays.set_native(_runtime.native)  # the views' C buffers where it runs C
            _stopped_by = None
            if signal_handler_options is None:
                signal_handler_options = SignalHandlerOptions.ALL
            signals.install_signal_handlers(signal_handler_options)
        return _runtime


def get_runtime():
    """Return the running runtime, starting it with the default configuration if needed."""
    runtime = _runtime
    if runtime is not None and not runtime.closed:
        return runtime
    return init()


def ok() -> bool:
    """Return True while agnoshm runs in this process (False once a signal stopped it)."""
    return _runtime is not None and not _runtime.closed and _stopped_by is None


def running(runtime) -> bool:
    """True while ``runtime`` is the live runtime and no signal stopped it (executors'
    check before they touch shared memory or sleep)."""
    return _runtime is runtime and not runtime.closed and _stopped_by is None


def stopped_by_signal() -> int | None:
    """The signal that stopped agnoshm (its executors' spins raise), or None."""
    return _stopped_by


def raise_if_stopped_by_signal() -> None:
    """Raise :class:`~agnoshm.signals.ExternalShutdownException` if a signal stopped agnoshm
    (what a spin, or an ``agnoshm.aio`` wait, does then)."""
    signum = _stopped_by
    if signum is not None:
        raise signals.ExternalShutdownException(
            f"agnoshm was stopped by signal {signum} ({signal.Signals(signum).name}); "
            "catch ExternalShutdownException (and KeyboardInterrupt) around the spin, or "
            "init(signal_handler_options=SignalHandlerOptions.NO) to handle signals yourself")


def _stop_by_signal(signum: int) -> None:
    """From the signal handler (main thread, between two bytecodes): stop, wake executors.

    Nothing is torn down here: the interrupted code may be inside the registry.
    """
    global _stopped_by
    runtime = _runtime
    if runtime is None or runtime.closed:
        return
    _stopped_by = signum
    try:
        runtime.doorbell.ring()  # a futex wake: executors asleep on the doorbell look again
    except Exception:  # noqa: BLE001  closed meanwhile
        pass


def on_shutdown(callback) -> None:
    """Call ``callback()`` at :func:`shutdown` (executors use it to wake up)."""
    _shutdown_callbacks.append(callback)


def shutdown() -> None:
    """Stop agnoshm in this process: destroy every node, leave the registry, remove our objects.

    SIGINT and SIGTERM are held until it is done, then delivered (with the program's own
    handlers back in place).
    """
    with signals.held():
        _shutdown()


def _shutdown() -> None:
    global _runtime, _stopped_by
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
    _stopped_by = None
    signals.uninstall_signal_handlers()


def require_runtime():
    runtime = _runtime
    if runtime is None or runtime.closed:
        raise NotInitializedError("agnoshm is shut down in this process: call agnoshm.init() first")
    return runtime


def _forget_after_fork() -> None:
    global _runtime, _lock, _stopped_by
    if _runtime is not None:
        _runtime.abandon_after_fork()
    _runtime = None
    _stopped_by = None
    _lock = threading.RLock()
    _shutdown_callbacks.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(shutdown)
