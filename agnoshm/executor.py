"""Executors that run subscription callbacks, timers and tasks, shaped like rclpy's.

This is the public import path; the implementation lives in :mod:`agnoshm.executors`
(how dispatch works: :mod:`agnoshm.executors.base`).
"""

from agnoshm.executors.base import Executor
from agnoshm.executors.callback_isolated import CallbackIsolatedExecutor
from agnoshm.executors.global_executor import (
    get_global_executor,
    spin,
    spin_once,
    spin_until_future_complete,
)
from agnoshm.executors.multi_threaded import MultiThreadedExecutor
from agnoshm.executors.single_threaded import SingleThreadedExecutor
from agnoshm.subscription import TAKE_BATCH
from agnoshm.task import Future, Task

__all__ = [
    "TAKE_BATCH", "CallbackIsolatedExecutor", "Executor", "Future", "MultiThreadedExecutor",
    "SingleThreadedExecutor", "Task", "get_global_executor", "spin", "spin_once",
    "spin_until_future_complete",
]
