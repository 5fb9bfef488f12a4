#!/usr/bin/env python3
"""Prove the test suite hermetic: two full runs at once, beside other agnoshm objects.

    python scripts/hermetic_check.py [pytest arguments, default: -q -x -p no:randomly]
    python scripts/hermetic_check.py --run 'SHELL COMMAND' --run 'SHELL COMMAND'

The first form runs this Python's pytest twice; the second runs the given commands (CI runs
its Python 3.10 and 3.12 suites so).

While both runs go, a ``talker`` publishes in ROS domain 0 and a dead
process's pool and registry (killed with SIGKILL, in a domain nobody uses)
lie in /dev/shm, as on a machine shared with other agnoshm users. Both runs
must pass. Afterwards it checks that the mqueue mount did not change (the
suite must not mount /dev/mqueue), stops the talker, removes the planted
objects, and prints each run's summary line. Exit 0 if both runs passed.
Run it from the repository's root with the Python that has agnoshm and its
test extra installed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

PLANT_DOMAIN = "232323"  # outside the tests' claimed ranges (test/domains.py)
PLANT = """
import os, sys, agnoshm
node = agnoshm.Node("planted")
node.create_publisher(agnoshm.Bytes, "/planted", 1)
print(os.getpid(), flush=True)
sys.stdin.read()
"""


def _mqueue_mounted() -> bool:
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == "/dev/mqueue" for line in f)


def _plant_dead_pool() -> int:
    """A process that made its pool and registry, killed with SIGKILL: nobody reaps it."""
    env = dict(os.environ, ROS_DOMAIN_ID=PLANT_DOMAIN)
    child = subprocess.Popen([sys.executable, "-c", PLANT], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    pid = int(child.stdout.readline())
    child.kill()
    child.wait()
    assert os.path.exists(f"/dev/shm/agnocast@{pid}"), "the planted pool is missing"
    return pid


def _remove_planted(pid: int) -> None:
    subprocess.run([sys.executable, "-m", "agnoshm", "clean", "--pid", str(pid)],
                   capture_output=True)
    try:
        os.unlink(f"/dev/shm/agnoshm-registry-domain{PLANT_DOMAIN}")  # its only process is dead
    except FileNotFoundError:
        pass


def _commands(argv: list[str]) -> list[list[str]]:
    """The runs: ``--run CMD`` as often as given, else this Python's pytest twice."""
    runs = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--run"]
    if runs:
        return [["bash", "-c", command] for command in runs]
    args = argv or ["-q", "-x", "-p", "no:randomly"]
    return [[sys.executable, "-m", "pytest", *args]] * 2


def main(argv: list[str]) -> int:
    commands = _commands(argv)
    mounted = _mqueue_mounted()
    planted = _plant_dead_pool()
    talker = subprocess.Popen([sys.executable, "-m", "agnoshm.demo.talker", "--rate", "5"],
                              env=dict(os.environ, ROS_DOMAIN_ID="0"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs: list[subprocess.Popen] = []
    outputs = [tempfile.NamedTemporaryFile("w+", prefix=f"hermetic-run{i}-", suffix=".log",
                                           delete=False) for i in range(1, len(commands) + 1)]
    try:
        runs += [subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
                 for command, out in zip(commands, outputs)]
        codes = [run.wait() for run in runs]
        talker_ran = talker.poll() is None
    finally:
        for run in runs:  # interrupted (Ctrl-C, a CI timeout): the runs end with this script
            if run.poll() is None:
                run.send_signal(signal.SIGINT)
        for run in runs:
            try:
                run.wait(timeout=120)
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait()
        talker.send_signal(signal.SIGINT)
        try:
            talker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            talker.kill()
            talker.wait()
        _remove_planted(planted)
    ok = True
    for i, (out, code) in enumerate(zip(outputs, codes), 1):
        out.seek(0)
        lines = out.read().strip().splitlines()
        if code != 0:  # what failed, as pytest summed it up
            start = next((n for n, line in enumerate(lines) if "short test summary" in line),
                         max(0, len(lines) - 60))
            print(f"--- run {i} ({' '.join(commands[i - 1])}):", *lines[start:], sep="\n")
        print(f"run {i}: exit {code}: {lines[-1] if lines else '(no output)'}  [{out.name}]")
        ok &= code == 0
    if not talker_ran:
        print("the domain-0 talker stopped during the runs: the check is void")
        ok = False
    if _mqueue_mounted() != mounted:
        print("the runs changed whether /dev/mqueue is mounted: the suite must not mount it")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
