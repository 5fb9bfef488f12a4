"""``agnoshm clean``: what dead processes left goes, live processes' objects stay."""

from __future__ import annotations

import ctypes
import os
import re
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # for `import cli_workers`, here and in spawned children
    sys.path.append(_HERE)

import cli_workers as cw  # noqa: E402

from agnoshm import _libc  # noqa: E402
from agnoshm.cli import clean  # noqa: E402
from agnoshm.cli.main import main  # noqa: E402
from agnoshm.names import queue_name  # noqa: E402


def _queue_exists(pid: int) -> bool:
    return clean.queue_exists(pid) is True


@pytest.fixture
def leftovers():
    """A pool and an announcement queue of a process that has exited."""
    pid = cw.finished_pid()
    path = f"/dev/shm/agnocast@{pid}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, 1 << 20)
    os.close(fd)
    attr = _libc.mq_attr(mq_flags=0, mq_maxmsg=8, mq_msgsize=64)
    mqd = _libc.mq_open(queue_name(pid).encode(), os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600,
                        ctypes.byref(attr))
    _libc.mq_close(mqd)
    yield pid, path
    if os.path.exists(path):
        os.unlink(path)
    try:
        _libc.mq_unlink(queue_name(pid).encode())
    except FileNotFoundError:
        pass


def _cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_shows_the_leftovers_and_removes_nothing(isolated_domain, leftovers, capsys):
    pid, path = leftovers
    specs = [("/chatter", "std_msgs/msg/String", 10, "volatile")]
    with cw.Worker(cw.talker, "talker", specs) as live:
        code, out, err = _cli(capsys, "clean", "--dry-run")
        assert code == 0, err
        assert f"would remove pool {path} (process {pid} is gone" in out
        assert f"would remove queue /dev/mqueue/new_publisher@{pid} (process {pid} is gone)" in out
        assert f"agnocast@{live.pid}" not in out
        assert "run without --dry-run to remove them" in out
        # counts include other programs' objects: check the wording, not the number
        assert re.search(r"^(1 object|\d+ objects) would be removed;", out, re.M), out
        assert re.search(r"^kept (1 live \S+ object|\d+ live \S+ objects)$", out, re.M), out
        assert "(s)" not in out
        assert os.path.exists(path) and _queue_exists(pid)
        assert os.path.exists(f"/dev/shm/agnocast@{live.pid}")


def test_clean_removes_dead_objects_and_keeps_a_live_pool(isolated_domain, leftovers, capsys):
    pid, path = leftovers
    specs = [("/chatter", "std_msgs/msg/String", 10, "volatile")]
    with cw.Worker(cw.talker, "talker", specs) as live, \
            cw.Worker(cw.listener, "listener", [("/chatter", "std_msgs/msg/String", 10)]) as ear:
        code, out, err = _cli(capsys, "clean", "--pid", str(pid), "--pid", str(live.pid))
        assert code == 0, err
        assert f"removed pool {path} (process {pid} is gone" in out
        assert f"removed queue /dev/mqueue/new_publisher@{pid}" in out
        assert f"/dev/shm/agnocast@{live.pid} (process {live.pid} runs)" in out
        assert not os.path.exists(path) and not _queue_exists(pid)
        assert os.path.exists(f"/dev/shm/agnocast@{live.pid}") and _queue_exists(live.pid)
        # the live processes carry on as before
        assert live.call("wait_subscriptions", "/chatter", 1) == ("subscribed",)
        live.call("publish", "/chatter", [{"data": "still here"}])
        assert [m[2] for m in ear.call("collect", "/chatter", 1)[1]] == [{"data": "still here"}]
        code, out, _ = _cli(capsys, "clean", "--pid", str(pid))
        assert "nothing to clean" in out


def test_queues_are_found_from_pools_when_mqueue_is_not_mounted(leftovers, monkeypatch):
    pid, path = leftovers
    monkeypatch.setattr(clean, "mqueue_mounted", lambda: False)
    found = clean.survey({pid})
    assert [(i.kind, i.name) for i in found.stale] == [("pool", f"/agnocast@{pid}"),
                                                       ("queue", queue_name(pid))]


def test_a_registry_whose_processes_all_died_is_removed(isolated_domain, capsys):
    registry = f"/dev/shm/agnoshm-registry-domain{isolated_domain}"
    pid = cw.kill_the_last_member()  # nobody reaps it
    assert os.path.exists(registry) and os.path.exists(f"/dev/shm/agnocast@{pid}")
    code, text, _ = _cli(capsys, "clean", "--dry-run")
    assert f"would remove registry {registry} (its only process is gone" in text
    assert os.path.exists(registry)
    item = next(i for i in clean.survey().stale if i.path == registry)
    assert clean.remove(item)  # reaps the dead member first, as its domain would
    assert not os.path.exists(registry)
    assert not os.path.exists(f"/dev/shm/agnocast@{pid}") and not _queue_exists(pid)


def test_a_live_registry_is_never_removed(isolated_domain, capsys):
    registry = f"/dev/shm/agnoshm-registry-domain{isolated_domain}"
    specs = [("/chatter", "std_msgs/msg/String", 10, "volatile")]
    with cw.Worker(cw.talker, "talker", specs):
        found = clean.survey()
        assert registry not in [i.path for i in found.stale]
        item = next(i for i in found.live if i.path == registry)
        assert item.reason == "1 live process"
        assert not clean.remove(clean.Leftover("registry", item.name, None, "forced"))
        assert os.path.exists(registry)


def test_the_test_fixtures_remove_a_killed_childs_leftovers_in_their_own_domain_only(
        monkeypatch):
    """test/conftest.py's claimed_domains and run_domain, after their leak check: what a
    killed child left in the test's domain goes (agnoshm clean's code); another run's
    domain, with the same kind of leftovers, is not touched."""
    from domains import claim_domain, domain_leftovers, remove_leftovers

    mine, other = claim_domain(), claim_domain()
    try:
        pids = {}
        for claim in (mine, other):
            monkeypatch.setenv("ROS_DOMAIN_ID", str(claim.domain))
            pids[claim.domain] = cw.kill_the_last_member()  # nobody reaps it
        for claim in (mine, other):
            pid = pids[claim.domain]
            assert domain_leftovers(claim.domain) == [
                f"/dev/shm/agnoshm-registry-domain{claim.domain}",
                f"/dev/shm/agnocast@{pid} (dead)", f"queue {queue_name(pid)} (dead)"]
        assert remove_leftovers(mine.domain) == []
        pid = pids[mine.domain]
        assert not os.path.exists(f"/dev/shm/agnoshm-registry-domain{mine.domain}")
        assert not os.path.exists(f"/dev/shm/agnocast@{pid}") and not _queue_exists(pid)
        assert len(domain_leftovers(other.domain)) == 3  # the other domain's are all there
    finally:
        for claim in (mine, other):
            remove_leftovers(claim.domain)
            claim.release()
