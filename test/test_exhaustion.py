"""Exhaustion (DESIGN.md invariant 6): the process that hits a limit gets a clear
agnoshm error, every other process carries on, and things recover once space returns.

* a full pool: a stalled subscriber pins a publisher's 4 MiB messages until its
  32 MiB pool is full;
* a full /dev/shm: a 40 MiB tmpfs mounted over /dev/shm in a private mount
  namespace (unshare(1)), so the machine's /dev/shm is never filled, is filled up
  by a file; the publisher's first message needs pool pages that cannot be
  committed; space returns when the file is removed;
* all message queues used: a process whose announcement queue cannot be created,
  by ``RLIMIT_MSGQUEUE`` (which binds root too) or by ``fs.mqueue.queues_max``
  (which root bypasses with CAP_SYS_RESOURCE, so that child runs without it, in a
  private IPC namespace whose ``queues_max`` is 0: the machine's sysctl is never
  touched).

* a full registry: topics, publishers or subscriptions (process slots are in
  test/registry/test_limits.py, subscribers holding every entry in
  test/test_bad_input.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

import agnoshm
import exhaustion_workers
import workers
from sources import child_cwd, child_env
from workers import TIMEOUT

TEST_DIR = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20


def _env(**extra) -> dict:
    return child_env(TEST_DIR, PYTHONDONTWRITEBYTECODE="1", **extra)


def _check_pool_scenario(report: dict, limit_words: list[str]) -> None:
    assert report["before"] == 5
    # the process that hit the limit: a typed error that names the cause and the fix
    assert report["error"] == "PoolExhaustedError", report
    assert "AgnoshmError" in report["mro"] and "MemoryError" in report["mro"]
    for word in limit_words:
        assert word in report["message"], report["message"]
    # everyone else carries on meanwhile
    assert report["during"] == 5
    assert report.get("problems_during", []) == []
    # space returns: the same publisher publishes again, and it arrives
    assert report["recovered"] is None, report["recovered"]
    assert report["after_release"] == [report["published"], exhaustion_workers.HOARD_SIZE, True]
    assert report["after"] == 5
    assert report["exitcodes"] == [0, 0, 0]
    assert report["problems"] == [] and report["live_slots"] == 1  # the driver's own
    assert report["left"] == []


def test_a_full_pool_fails_only_its_owner_and_recovers_when_messages_are_released(
        isolated_domain, monkeypatch):
    monkeypatch.setenv("AGNOSHM_POOL_SIZE", "32M")
    monkeypatch.setenv("AGNOSHM_LINGER_SEC", "0")
    report = exhaustion_workers.pool_scenario("pool", walk_during=True)
    _check_pool_scenario(report, ["AGNOSHM_POOL_SIZE", "drop references to received messages"])
    assert 1 <= report["published"] <= 32 * MiB // exhaustion_workers.HOARD_SIZE


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _remove_queues_of_the_dead(pids_file: str) -> None:
    """The pools die with the private tmpfs; queues live in the machine's /dev/mqueue."""
    try:
        with open(pids_file) as f:
            pids = [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return
    finally:
        if os.path.exists(pids_file):
            os.unlink(pids_file)
    for pid in pids:  # a crash can leave orphans waiting on events that nobody sets
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        workers.wait_until(lambda: not _alive(pid), what=f"process {pid} to go")
        subprocess.run([sys.executable, "-m", "agnoshm", "clean", "--pid", str(pid)],
                       env=_env(), cwd=child_cwd(), capture_output=True, timeout=TIMEOUT)


def _run_over_small_dev_shm(tmp_path, *args: str) -> dict:
    """Run exhaustion_workers.main(*args) in a private mount namespace over a 40 MiB tmpfs."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs unshare(1) and mount(8) to put a small tmpfs over /dev/shm")
    pids_file = str(tmp_path / "pids")
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs -o size=40m agnoshm-test /dev/shm || exit 77; exec "$@"', "sh",
               sys.executable, "-c", "import exhaustion_workers; exhaustion_workers.main()", *args]
    env = _env(AGNOSHM_POOL_SIZE="256M", AGNOSHM_LINGER_SEC="0", AGNOSHM_TEST_PIDS_FILE=pids_file)
    try:
        result = subprocess.run(command, env=env, cwd=child_cwd(), capture_output=True,
                                text=True, timeout=4 * TIMEOUT)
    finally:
        _remove_queues_of_the_dead(pids_file)
    if result.returncode == 77 or "unshare failed" in result.stderr:
        pytest.skip(f"cannot mount a private tmpfs over /dev/shm here: {result.stderr.strip()}")
    assert result.returncode == 0, f"exit status {result.returncode}: {result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_full_dev_shm_fails_only_the_process_that_needs_more_and_recovers(isolated_domain,
                                                                            tmp_path):
    report = _run_over_small_dev_shm(tmp_path, "dev_shm")
    _check_pool_scenario(report, ["/dev/shm", "agnoshm clean"])
    assert report["published"] == 0  # its very first message needed pages


def test_a_full_dev_shm_lets_a_process_walk_the_registry(isolated_domain, tmp_path):
    report = _run_over_small_dev_shm(tmp_path, "dev_shm", "walk")
    _check_pool_scenario(report, ["/dev/shm", "agnoshm clean"])


# -- registry ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["topics", "publishers", "subscriptions"])
def test_a_full_registry_fails_only_the_process_that_asks_for_more_and_recovers(
        isolated_domain, monkeypatch, kind):
    """The bystander pair uses 2 topics, 2 publishers and 2 subscriptions of 4."""
    monkeypatch.setenv(f"AGNOSHM_MAX_{kind.upper()}", "4")
    with _echo() as (bystander, _echo_process):
        registry = agnoshm.context.get_runtime().registry
        assert bystander.round_trips(3) == 3
        ctx = workers.context()
        out, go_on, done = ctx.Queue(), ctx.Event(), ctx.Event()
        child = ctx.Process(target=exhaustion_workers.crowd, args=(kind, out, go_on, done))
        child.start()
        try:
            _, made, error, mro, message = out.get(timeout=TIMEOUT)
            assert (made, error) == (2, "LimitReachedError"), message
            assert "AgnoshmError" in mro
            assert f"4 {kind}" in message and f"AGNOSHM_MAX_{kind.upper()}" in message
            assert registry.check_consistency() == []
            assert bystander.round_trips(3) == 3  # the others carry on
            go_on.set()  # room returns: the process frees one and asks again
            assert out.get(timeout=TIMEOUT) == ("again", None)
            assert bystander.round_trips(3) == 3
        finally:
            done.set()
            child.join(TIMEOUT)
        assert child.exitcode == 0
        assert registry.check_consistency() == []


# -- message queues ------------------------------------------------------------------------------


def _join_out_of_queues(limit: str) -> dict:
    """Start a process that cannot create its announcement queue; return its report."""
    if limit == "rlimit":
        ctx = workers.context()
        out = ctx.Queue()
        child = ctx.Process(target=exhaustion_workers.join_with_rlimit, args=(out,))
        child.start()
        report = out.get(timeout=TIMEOUT)
        child.join(TIMEOUT)
        assert child.exitcode == 0
        return report
    for tool in ("unshare", "setpriv"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}(1) for a private IPC namespace without CAP_SYS_RESOURCE")
    # A new IPC namespace has its own queues (and its own queues_max, set to 0 here);
    # setpriv drops CAP_SYS_RESOURCE, which would bypass queues_max, from the bounding
    # and inheritable sets, so the exec'd python runs without it.
    command = ["unshare", "--ipc", "sh", "-c",
               'echo 0 > /proc/sys/fs/mqueue/queues_max || exit 77; exec "$@"', "sh",
               "setpriv", "--bounding-set", "-sys_resource", "--inh-caps", "-sys_resource",
               sys.executable, "-c",
               "import exhaustion_workers; exhaustion_workers.try_to_join_main()"]
    result = subprocess.run(command, env=_env(), cwd=child_cwd(), capture_output=True, text=True,
                            timeout=TIMEOUT)
    if result.returncode == 77 or "unshare failed" in result.stderr:
        pytest.skip(f"cannot make a private IPC namespace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def _echo():
    """A bystander process answering /ping on /pong, and this process's side of it."""
    ctx = workers.context()
    ready, stop = ctx.Event(), ctx.Event()
    child = ctx.Process(target=exhaustion_workers.echo, args=(ready, stop))
    child.start()
    try:
        assert ready.wait(TIMEOUT)
        node = agnoshm.Node("bystander")
        yield exhaustion_workers.Bystander(node), child
        node.destroy_node()
    finally:
        stop.set()
        child.join(TIMEOUT)
    assert child.exitcode == 0


@pytest.fixture
def echo_process(isolated_domain):
    with _echo() as pair:
        yield pair


@pytest.mark.parametrize("limit", ["rlimit", "queues_max"])
def test_a_process_out_of_message_queues_leaves_nothing_and_the_others_carry_on(
        echo_process, limit):
    bystander, echo = echo_process
    registry = agnoshm.context.get_runtime().registry
    assert bystander.round_trips(3) == 3
    report = _join_out_of_queues(limit)
    assert report["error"] is not None, "the process joined although it could not make a queue"
    assert f"/new_publisher@{report['pid']}" in report["message"], report  # failed for the queue
    assert report["left"] == [], "a failed start left its pool or queue"
    registry.reap_dead()
    assert len(registry.live_slots()) == 2, "a failed start kept its registry slot"
    assert registry.check_consistency() == []
    assert bystander.round_trips(3) == 3
    # the limit lifted (a process with the default limits): a newcomer joins and receives
    ctx = workers.context()
    ready, out, done = ctx.Event(), ctx.Queue(), ctx.Event()
    newcomer = ctx.Process(target=exhaustion_workers.listener, args=(ready, out, done))
    newcomer.start()
    try:
        assert ready.wait(TIMEOUT)
        workers.wait_until(lambda: bystander.pub.get_subscription_count() == 2,
                           what="the newcomer's subscription")
        assert bystander.round_trips(1) == 1
        kind, header, valid = out.get(timeout=TIMEOUT)
        assert (kind, tuple(header), valid) == ("newcomer got", (7, bystander.counter - 1), True)
    finally:
        done.set()
        newcomer.join(TIMEOUT)
    assert newcomer.exitcode == 0
    assert registry.check_consistency() == []


@pytest.mark.parametrize("limit", ["rlimit", "queues_max"])
def test_a_process_out_of_message_queues_gets_an_agnoshm_error_naming_the_limit_and_the_fix(
        isolated_domain, limit):
    agnoshm.init()  # the domain exists; the child is the one that fails
    report = _join_out_of_queues(limit)
    assert report["error"] == "LimitReachedError", report
    assert "AgnoshmError" in report["mro"]
    message = report["message"]
    assert f"/new_publisher@{report['pid']}" in message
    assert "RLIMIT_MSGQUEUE" in message and "queues_max" in message
    assert "ulimit -q" in message  # the fix for the per-user limit
