"""The executors' implementation, one concept per module; import them from :mod:`agnoshm.executor`.

- :mod:`~agnoshm.executors.gate`: keeps executor threads out of shared memory at shutdown.
- :mod:`~agnoshm.executors.base`: :class:`Executor`: nodes, tasks, readiness, the spin family.
- :mod:`~agnoshm.executors.single_threaded`: :class:`SingleThreadedExecutor`.
- :mod:`~agnoshm.executors.multi_threaded`: :class:`MultiThreadedExecutor` (leader/followers).
- :mod:`~agnoshm.executors.crew`: its worker threads and the state they share.
- :mod:`~agnoshm.executors.global_executor`: the global executor and ``spin``, ``spin_once``,
  ``spin_until_future_complete``.
"""
