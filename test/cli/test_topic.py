"""``agnoshm topic`` list/info/echo/hz/bw against live publishers in other processes."""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import select
import signal
import sys
import time

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # for `import cli_workers`, here and in spawned children
    sys.path.append(_HERE)

import cli_workers as cw  # noqa: E402

from agnoshm.cli.main import main  # noqa: E402
from agnoshm.subscription import TAKE_BATCH  # noqa: E402

SPECS = [("/chatter", "std_msgs/msg/String", 10, "volatile"),
         ("/image", "sensor_msgs/msg/Image", 3, "transient_local")]


@pytest.fixture
def talker(isolated_domain):
    with cw.Worker(cw.talker, "talker", SPECS) as worker:
        yield worker


def _cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_every_topic_with_types_and_counts(talker, capsys):
    code, out, _ = _cli(capsys, "topic", "list")
    assert code == 0
    assert out.splitlines() == ["/chatter", "/image"]
    code, out, _ = _cli(capsys, "topic", "list", "-t")
    assert out.splitlines() == ["/chatter [std_msgs/msg/String]", "/image [sensor_msgs/msg/Image]"]
    code, out, _ = _cli(capsys, "topic", "list", "-v")
    assert " * /image [sensor_msgs/msg/Image] 1 publisher" in out
    assert out.index("Published topics:") < out.index("Subscribed topics:")


def test_info_shows_type_qos_endpoints_pool_and_live_messages(talker, capsys):
    talker.call("publish", "/image", [cw.image(i) for i in range(5)])
    with cw.Worker(cw.listener, "listener", [("/chatter", "std_msgs/msg/String", 7)]):
        code, out, _ = _cli(capsys, "topic", "info", "/image", "-v")
        assert code == 0
        assert "Type: sensor_msgs/msg/Image" in out
        assert "Type hash: RIHS01_" in out
        assert "Publisher: /talker" in out
        assert f"pid {talker.pid}" in out
        assert f"/dev/shm/agnocast@{talker.pid} at 0x" in out
        assert "QoS: KEEP_LAST depth 3, TRANSIENT_LOCAL, RELIABLE" in out
        assert "Published: 5" in out
        assert "Live messages: 3 (seq 3..5" in out  # depth 3 keeps the newest three
        assert out.count("    seq ") == 3
        code, out, _ = _cli(capsys, "topic", "info", "chatter")  # relative: from the root
        assert "Subscription count: 1" in out
        assert "Subscription: /listener" in out
        assert "QoS: KEEP_LAST depth 7, VOLATILE, RELIABLE" in out


def test_echo_prints_typed_messages_like_ros2_topic_echo(talker):
    process = cw.start_cli("topic", "echo", "/chatter", "--count", "2")
    cw.wait_subscribed(process, "/chatter", "/_agnoshm_echo")
    talker.call("publish", "/chatter", [{"data": "hello world"}, {"data": "it's: 2"}])
    code, out, err = cw.finish(process)
    assert code == 0, err
    assert out == "data: hello world\n---\ndata: 'it''s: 2'\n---\n"
    assert "\x1b" not in out + err  # not a terminal: plain output


def test_echo_once_abbreviates_arrays_and_selects_fields(talker):
    # TRANSIENT_LOCAL publishers: echo takes their retained messages at once
    talker.call("publish", "/image", [cw.image(1, 36)])
    code, out, err = _run("topic", "echo", "/image", "--once")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:5] == ["header:", "  stamp:", "    sec: 1", "    nanosec: 7", "  frame_id: cam1"]
    assert "encoding: rgb8" in lines
    assert f"data: [{', '.join(str(1 + k) for k in range(16))}, '...']  # 36 items" in lines
    assert lines[-1] == "---"
    code, out, err = _run("topic", "echo", "/image", "--once", "--field", "header.frame_id")
    assert (code, out) == (0, "cam1\n---\n"), err
    code, out, _ = _run("topic", "echo", "/image", "--once", "--field", "data", "--full-length")
    assert out == f"[{', '.join(str(1 + k) for k in range(36))}]\n---\n"
    code, out, _ = _run("topic", "echo", "/image", "--once", "--no-arr", "--field", "data")
    assert out == "<array of 36 uint8>\n---\n"
    code, out, err = _run("topic", "echo", "/image", "--once", "--field", "header.nope")
    assert code == 2 and "has no field 'nope' (fields: stamp, frame_id)" in err
    assert "Traceback" not in err


def _run(*args):
    result = cw.run_cli(*args)
    return result.returncode, result.stdout, result.stderr


def _pipe_size() -> int:
    read_end, write_end = os.pipe()
    try:
        return fcntl.fcntl(read_end, fcntl.F_GETPIPE_SZ)
    finally:
        os.close(read_end)
        os.close(write_end)


def _read_until(process, text: bytes) -> bytes:
    """Read the started command's stdout until ``text`` came, and no further (watchdog)."""
    got = b""
    deadline = time.monotonic() + cw.TIMEOUT
    while text not in got:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError(f"timed out waiting for {text!r}; read {got[-200:]!r}")
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"the command ended first: {got[-200:]!r} {cw.finish(process)}")
        got += chunk
    return got


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_echo_stopped_mid_batch_still_prints_the_messages_it_took(isolated_domain, signum):
    """A take holds a batch back in the subscription's inbox: echo stopped while it prints
    one prints the rest of the batch (what it took), then exits."""
    specs = [("/backlog", "std_msgs/msg/String", TAKE_BATCH, "transient_local")]
    size = _pipe_size() // 2  # the batch is 8 pipes' worth: unread, echo stops early in it
    with cw.Worker(cw.talker, "backlog_talker", specs) as worker:
        worker.call("publish", "/backlog",
                    [{"data": f"m{i:02d} " + "x" * size} for i in range(TAKE_BATCH)])
        process = cw.start_cli("topic", "echo", "/backlog", "--full-length")
        try:  # TRANSIENT_LOCAL: echo's first take holds all of them; it printed the first
            first = _read_until(process, b"\n---\n").decode()
            process.send_signal(signum)  # while the rest waits in its inbox or on the pipe
        finally:
            code, rest, err = cw.finish(process)
    out = first + rest
    assert code == 0, err
    printed = re.findall(r"^data: m(\d\d) x+$", out, re.M)
    assert printed[0] == "00" and printed[-1] == f"{TAKE_BATCH - 1:02d}", out[-200:]
    assert printed == sorted(set(printed)), printed  # in order, each once
    assert out.endswith("\n---\n")


def test_echo_of_an_unresolvable_type_offers_raw_bytes(isolated_domain):
    specs = [("/custom", cw.CUSTOM_TYPE, 2, "transient_local")]
    with cw.Worker(cw.talker, "custom_talker", specs) as worker:
        worker.call("publish", "/custom", [{"a": 0x01020304, "b": "xyz"}])
        code, out, err = _run("topic", "echo", "/custom", "--once")
        assert code == 2
        assert f"cannot resolve {cw.CUSTOM_TYPE}" in err and "--raw" in err
        assert "Traceback" not in err
        code, out, err = _run("topic", "echo", "/custom", "--once", "--raw")
        assert code == 0, err
        assert "# root struct: 32 bytes" in out  # int32, padding, then a 24-byte string
        assert "  00000000  04 03 02 01" in out  # little-endian int32 a
        assert out.endswith("---\n")


def test_hz_and_bw_report_from_publish_times_and_sizes(talker):
    hz = cw.start_cli("topic", "hz", "/chatter", "--count", "5")
    bw = cw.start_cli("topic", "bw", "/chatter", "--count", "5")
    cw.wait_subscribed(hz, "/chatter", "/_agnoshm_hz")
    cw.wait_subscribed(bw, "/chatter", "/_agnoshm_bw")
    talker.call("publish", "/chatter", [{"data": "x" * 7} for _ in range(5)])
    code, out, err = cw.finish(hz)
    assert code == 0, err
    last = out.strip().splitlines()[-2:]
    assert last[0].startswith("average rate: ")
    assert last[1].startswith("\tmin: ") and last[1].endswith("window: 5")
    code, out, err = cw.finish(bw)
    assert code == 0, err
    last = out.strip().splitlines()[-2:]
    assert last[0].endswith("/s from 5 messages")
    # a String is a 24-byte struct plus its 7 characters and NUL in the pool
    assert last[1] == "\tMessage size mean: 32 B min: 32 B max: 32 B"


def test_unknown_topic_is_a_clear_error(talker, capsys):
    code, out, err = _cli(capsys, "topic", "info", "/chater")
    assert code == 1
    assert "unknown topic '/chater' in ROS domain" in err and "did you mean /chatter" in err
    code, out, err = _run("topic", "echo", "/nothing")
    assert code == 1 and "unknown topic '/nothing'" in err and "Traceback" not in err


def test_no_registry_is_reported_and_none_is_created(isolated_domain, capsys):
    path = f"/dev/shm/agnoshm-registry-domain{isolated_domain}"
    for args in (["topic", "list"], ["topic", "info", "/x"], ["node", "list"]):
        code, out, err = _cli(capsys, *args)
        assert code == 1
        assert f"no agnoshm processes in ROS domain {isolated_domain}" in err
        assert not os.path.exists(path)


def test_a_registry_of_another_layout_version_is_refused(isolated_domain, capsys):
    from agnoshm.registry import layout as L

    path = f"/dev/shm/agnoshm-registry-domain{isolated_domain}"
    header = L.Header(magic=L.MAGIC, layout_version=L.LAYOUT_VERSION + 98, domain_id=isolated_domain)
    with open(path, "xb") as f:
        f.write(bytes(header).ljust(L.PAGE, b"\0"))
    try:
        code, out, err = _cli(capsys, "topic", "list")
        assert code == 1
        assert f"layout version {L.LAYOUT_VERSION + 98}" in err and "Traceback" not in err
    finally:
        os.unlink(path)


def test_ros2_agnoshm_command_runs_the_verbs_without_ros2cli(isolated_domain, capsys):
    from agnoshm.cli.ros2cli import AgnoshmCommand  # imports without ROS 2

    command = AgnoshmCommand()
    parser = argparse.ArgumentParser(prog="ros2 agnoshm")
    command.add_arguments(parser, "ros2 agnoshm")  # as ros2cli calls it
    args = parser.parse_args(["topic", "list"])
    assert command.main(parser=parser, args=args) == 1
    assert "ros2 agnoshm topic: error: no agnoshm processes" in capsys.readouterr().err
    assert command.main(parser=parser, args=parser.parse_args([])) == 0
    assert "topic" in capsys.readouterr().out


def test_ros2cli_extension_subclasses_ros2clis_base_when_present(monkeypatch):
    import importlib
    import types

    base = type("CommandExtension", (), {"NAME": None})
    fake = types.ModuleType("ros2cli.command")
    fake.CommandExtension = base
    monkeypatch.setitem(sys.modules, "ros2cli", types.ModuleType("ros2cli"))
    monkeypatch.setitem(sys.modules, "ros2cli.command", fake)
    import agnoshm.cli.ros2cli as module

    try:
        reloaded = importlib.reload(module)
        assert issubclass(reloaded.AgnoshmCommand, base)
    finally:
        monkeypatch.undo()
        importlib.reload(module)
