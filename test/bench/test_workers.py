"""``agnoshm.bench.Worker``: a worker that fails leaves nothing of the domain behind."""

from __future__ import annotations

import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # for `import bench_workers`, here and in spawned children
    sys.path.append(_HERE)

import bench_workers  # noqa: E402

from agnoshm.bench import BenchError, Worker  # noqa: E402
from agnoshm.cli.clean import queue_exists  # noqa: E402


def test_a_worker_whose_setup_fails_after_joining_the_domain_leaves_nothing(isolated_domain):
    worker = Worker("setup", bench_workers.JoinsThenFails)
    try:
        with pytest.raises(BenchError, match="setup failed after joining the domain"):
            worker.started()
    finally:
        worker.close()  # at once, as the bench does after a failure (SIGTERM if still alive)
    pid = worker.process.pid
    assert not os.path.exists(f"/dev/shm/agnocast@{pid}")
    assert queue_exists(pid) is False
    assert not os.path.exists(f"/dev/shm/agnoshm-registry-domain{isolated_domain}")
