"""Fixtures of the launch-file tests: run what a launch file would start, with plain subprocess.

``run_plan(specs)`` starts the processes of ``agnoshm.demo.launching.plan(...)``
(the very commands the launch files give ``ExecuteProcess``) in the launch
order, waits for all of them, and returns each one's exit code, pid and
output. As the launch files do, a process that fails makes the others stop
(SIGINT). It runs inside ``isolated_domain`` (test/conftest.py), which fails the
test if the domain's registry or a dead process's pool is left in /dev/shm.

Note: this directory has no ``__init__.py`` and its modules import nothing
from each other: with ``pythonpath = [".", "test"]`` the names ``launch`` and
``launch.*`` must stay free for the real ROS 2 ``launch`` package.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sources import child_cwd, child_env

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
TIMEOUT = 180.0
#: seconds the others get to exit after SIGINT (a hang guard: a kill -9 leaves their objects,
#: and a loaded machine can take many seconds to import and clean up)
STOP_GRACE = 60.0


@dataclasses.dataclass
class Finished:
    name: str
    pid: int
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def _start(spec, env, out_dir: Path):
    out = open(out_dir / f"{spec.name}.out", "w+")
    err = open(out_dir / f"{spec.name}.err", "w+")
    proc = subprocess.Popen(spec.command(), stdout=out, stderr=err, env=env, cwd=child_cwd(),
                            stdin=subprocess.DEVNULL)
    return proc, out, err


@pytest.fixture
def run_plan(isolated_domain, tmp_path):
    """Return ``run(specs, agnoshm_config=None, timeout=TIMEOUT) -> {name: Finished}``."""
    from agnoshm.demo.launching import process_env

    started = []

    def run(specs, agnoshm_config=None, timeout: float = TIMEOUT) -> dict[str, Finished]:
        env = child_env(**process_env(str(agnoshm_config) if agnoshm_config else None))
        for spec in specs:
            started.append((spec, *_start(spec, env, tmp_path)))
        deadline = time.monotonic() + timeout
        stopping = None
        while any(proc.poll() is None for _, proc, _, _ in started):
            now = time.monotonic()
            failed = [proc for _, proc, _, _ in started if proc.poll() not in (None, 0)]
            if stopping is None and (failed or now > deadline):
                # as the launch files do: one process failed, shut the others down (SIGINT)
                stopping = now
                for _, proc, _, _ in started:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGINT)
            if stopping is not None and now > stopping + STOP_GRACE:
                break
            time.sleep(0.05)
        results = {}
        for spec, proc, out, err in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            out.seek(0)
            err.seek(0)
            results[spec.name] = Finished(spec.name, proc.pid, proc.returncode, out.read(), err.read())
            out.close()
            err.close()
        return results

    yield run
    for _, proc, _, _ in started:  # a failed assertion must not leave processes behind
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def assert_clean_exit(results: dict[str, Finished]) -> None:
    """Every process exited 0 and its pool is gone from /dev/shm."""
    report = "\n".join(f"--- {r.name} (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
                       for r in results.values())
    for r in results.values():
        assert r.returncode == 0, f"{r.name} exited with {r.returncode}\n{report}"
        assert not os.path.exists(f"/dev/shm/agnocast@{r.pid}"), f"{r.name} left its pool"


@pytest.fixture
def check_clean_exit():
    return assert_clean_exit
