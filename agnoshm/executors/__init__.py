"""The executors' implementation, one concept per module; import them from :mod:`agnoshm.executor`.

- :mod:`~agnoshm.executors.gate`: keeps executor threads out of shared memory at shutdown.
- :mod:`~agnoshm.executors.base`: :class:`Executor`: nodes, tasks, readiness, the spin family.
- :mod:`~agnoshm.executors.single_threaded`: :class:`SingleThreadedExecutor`.
- :mod:`~agnoshm.executors.multi_threaded`: :class:`MultiThreadedExecutor` (leader/followers).
- :mod:`~agnoshm.executors.crew`: its worker threads and the state they share.
- :mod:`~agnoshm.executors.callback_isolated`: :class:`CallbackIsolatedExecutor` (a thread per
  callback group), configured by :mod:`~agnoshm.executors.thread_config` (YAML, scheduling).
- :mod:`~agnoshm.executors.global_executor`: the global executor and ``spin``, ``spin_once``,
  ``spin_until_future_complete``.
"""

from agnoshm.executors.callback_isolated import CallbackIsolatedExecutor  # noqa: E402
from agnoshm.executors.thread_config import ThreadConfigError, ThreadSettingError  # noqa: E402

__all__ = ["CallbackIsolatedExecutor", "ThreadConfigError", "ThreadSettingError"]
