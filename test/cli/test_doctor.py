"""``agnoshm doctor``: every check runs, stale objects and foreign registries are reported."""

from __future__ import annotations

import os
import re
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # for `import cli_workers`, here and in spawned children
    sys.path.append(_HERE)

import cli_workers as cw  # noqa: E402

from agnoshm import _libc  # noqa: E402
from agnoshm.cli.main import main  # noqa: E402
from agnoshm.registry import layout as L  # noqa: E402


@pytest.fixture
def stale_pool():
    pid = cw.finished_pid()
    path = f"/dev/shm/agnocast@{pid}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, 1 << 20)
    os.close(fd)
    yield pid, path
    if os.path.exists(path):
        os.unlink(path)


def _doctor(capsys):
    code = main(["doctor"])
    out, err = capsys.readouterr()
    return code, out, err


def test_doctor_runs_every_check_and_reports_a_stale_pool(isolated_domain, stale_pool, capsys):
    pid, path = stale_pool
    code, out, err = _doctor(capsys)
    assert err == ""
    for name in ("configuration", "platform", "memfd_create", "MAP_FIXED_NOREPLACE",
                 "address range", "/dev/shm", "shm_open", "mq limits", "mq_open", "registry",
                 "permissions"):
        assert re.search(rf"^  (ok|WARN|FAIL)\s+{re.escape(name)}\s", out, re.M), name
    assert re.search(rf"^  WARN\s+stale pool\s+{re.escape(path)}: process {pid} is gone", out, re.M)
    assert "fix: agnoshm clean" in out
    assert f"none for ROS domain {isolated_domain} yet" in out
    assert code == (1 if re.search(r"^  FAIL", out, re.M) else 0)
    assert re.search(r"\d+ checks? ok, \d+ warnings?, \d+ failures?$", out.strip())
    assert os.path.exists(path)  # doctor only reports
    probe = f"agnoshm-doctor@{os.getpid()}"  # its test objects, named after this process
    assert not os.path.exists(f"/dev/shm/{probe}")
    with pytest.raises(FileNotFoundError):
        _libc.mq_open(f"/{probe}".encode(), os.O_RDONLY | os.O_NONBLOCK, 0, None)


def test_doctor_describes_the_live_registry(isolated_domain, capsys):
    specs = [("/chatter", "std_msgs/msg/String", 10, "volatile")]
    with cw.Worker(cw.talker, "talker", specs):
        code, out, _ = _doctor(capsys)
    line = next(l for l in out.splitlines() if re.match(r"^  \S+\s+registry\s", l))
    assert line.split()[0] == "ok"
    assert f"agnoshm-registry-domain{isolated_domain}: layout version {L.LAYOUT_VERSION}, 1 live process, 1 topic" in line


def test_doctor_fails_on_a_registry_of_another_layout_version(isolated_domain, capsys):
    from agnoshm.registry import layout as L

    path = f"/dev/shm/agnoshm-registry-domain{isolated_domain}"
    header = L.Header(magic=L.MAGIC, layout_version=7, domain_id=isolated_domain)
    with open(path, "xb") as f:
        f.write(bytes(header).ljust(L.PAGE, b"\0"))
    try:
        code, out, _ = _doctor(capsys)
        assert code == 1
        assert re.search(r"^  FAIL\s+registry\s+.*has registry layout version 7", out, re.M)
        assert re.search(r"^  WARN\s+registry\s+.*layout version 7", out, re.M)  # from the survey
    finally:
        os.unlink(path)


def test_doctor_reports_a_bad_setting_without_a_traceback(isolated_domain, monkeypatch, capsys):
    monkeypatch.setenv("AGNOSHM_BACKEND", "tape")
    code, out, err = _doctor(capsys)
    assert code == 1
    assert re.search(r"^  FAIL\s+configuration\s+backend must be 'shm' or 'memfd', not 'tape'",
                     out, re.M)
    assert "Traceback" not in out + err


def test_doctor_warns_when_this_configuration_differs_from_the_registrys(isolated_domain, capsys,
                                                                        monkeypatch):
    specs = [("/chatter", "std_msgs/msg/String", 10, "volatile")]
    with cw.Worker(cw.talker, "talker", specs):  # creates the registry with the defaults
        monkeypatch.setenv("AGNOSHM_MAX_SUBSCRIPTIONS_PER_TOPIC", "1024")
        monkeypatch.setenv("AGNOSHM_MAX_TOPICS", "64")
        code, out, _ = _doctor(capsys)
    line = next(l for l in out.splitlines() if re.match(r"^  \S+\s+registry config\s", l))
    assert line.split()[0] == "WARN"
    assert "other max_topics, max_subscriptions_per_topic than this configuration" in line
    assert "fix: use one configuration in every process of the domain" in out


def test_doctor_names_a_dead_member_in_plain_words(isolated_domain, capsys):
    from agnoshm.cli import clean

    registry = f"/dev/shm/agnoshm-registry-domain{isolated_domain}"
    pid = cw.kill_the_last_member()  # nobody reaps it
    try:
        _code, text, _ = _doctor(capsys)
        assert ", 0 live processes, 1 topic," in text
        assert re.search(rf"^  WARN\s+dead members\s+pid {pid} \(.+\) is registered but no "
                         r"longer running$", text, re.M), text
    finally:
        item = next(i for i in clean.survey().stale if i.path == registry)
        assert clean.remove(item)  # reaps the dead member, its pool and queue, then the registry


def test_plural_spells_processes():
    from agnoshm.cli.snapshot import plural

    assert [plural(n, "live process") for n in (0, 1, 2)] == [
        "0 live processes", "1 live process", "2 live processes"]
    assert plural(3, "message") == "3 messages" and plural(1, "message") == "1 message"
