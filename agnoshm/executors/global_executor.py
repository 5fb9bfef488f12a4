"""The global executor and the module-level spin functions (``rclpy.spin`` and friends)."""

from __future__ import annotations

import threading

from agnoshm.executors.base import Executor
from agnoshm.executors.single_threaded import SingleThreadedExecutor

_global_executor: Executor | None = None
_global_lock = threading.Lock()


def get_global_executor() -> Executor:
    """Return the executor the module-level spin functions use (a SingleThreadedExecutor)."""
    global _global_executor
    with _global_lock:
        if _global_executor is None or _global_executor._is_shutdown:
            _global_executor = SingleThreadedExecutor()
        return _global_executor


def spin_once(node, *, executor: Executor | None = None, timeout_sec: float | None = None) -> None:
    """Run at most one callback of ``node`` (rclpy.spin_once)."""
    executor = get_global_executor() if executor is None else executor
    try:
        executor.add_node(node)
        executor.spin_once(timeout_sec)
    finally:
        executor.remove_node(node)


def spin(node, executor: Executor | None = None) -> None:
    """Run ``node``'s callbacks until it is destroyed or agnoshm shuts down (rclpy.spin)."""
    executor = get_global_executor() if executor is None else executor
    try:
        executor.add_node(node)
        executor._spin(lambda: node._destroyed, None)
    finally:
        executor.remove_node(node)


def spin_until_future_complete(node, future, executor: Executor | None = None,
                               timeout_sec: float | None = None) -> None:
    """Run ``node``'s callbacks until ``future`` is done (rclpy.spin_until_future_complete)."""
    executor = get_global_executor() if executor is None else executor
    try:
        executor.add_node(node)
        executor.spin_until_future_complete(future, timeout_sec)
    finally:
        executor.remove_node(node)
