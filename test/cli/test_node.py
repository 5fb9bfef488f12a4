"""``agnoshm node`` list/info against live nodes in other processes."""

from __future__ import annotations

import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # for `import cli_workers`, here and in spawned children
    sys.path.append(_HERE)

import cli_workers as cw  # noqa: E402

from agnoshm.cli.main import main  # noqa: E402


@pytest.fixture
def graph(isolated_domain):
    """/talker publishes /chatter and /image; /listener subscribes to /chatter."""
    specs = [("/chatter", "std_msgs/msg/String", 10, "volatile"),
             ("/image", "sensor_msgs/msg/Image", 2, "transient_local")]
    with cw.Worker(cw.talker, "talker", specs) as talker, \
            cw.Worker(cw.listener, "listener", [("/chatter", "std_msgs/msg/String", 5)]) as listener:
        yield talker, listener


def _cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_each_node_once(graph, capsys):
    talker, listener = graph
    code, out, err = _cli(capsys, "node", "list")
    assert code == 0, err
    assert out.splitlines() == ["/listener", "/talker"]
    code, out, _ = _cli(capsys, "node", "list", "--pids")
    assert f"/talker (pid {talker.pid}," in out and f"/listener (pid {listener.pid}," in out


def test_info_lists_process_publishers_and_subscriptions(graph, capsys):
    talker, listener = graph
    talker.call("publish", "/chatter", [{"data": "a"}, {"data": "b"}])
    listener.call("collect", "/chatter", 2)
    code, out, err = _cli(capsys, "node", "info", "/talker")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "/talker"
    assert f"  Process: pid {talker.pid} " in out and "alive" in lines[1]
    assert lines[lines.index("  Publishers:") + 1:lines.index("  Subscribers:")] == [
        "    /chatter: std_msgs/msg/String (depth 10, volatile, 2 published)",
        "    /image: sensor_msgs/msg/Image (depth 2, transient_local, 0 published)"]
    code, out, _ = _cli(capsys, "node", "info", "listener")  # relative: from the root
    assert "    /chatter: std_msgs/msg/String (depth 5, volatile, 2 received)" in out


def test_hidden_cli_nodes_show_only_with_all(graph, capsys):
    talker, _ = graph
    process = cw.start_cli("topic", "echo", "/chatter", "--once")
    try:
        cw.wait_subscribed(process, "/chatter", "/_agnoshm_echo")
        code, out, _ = _cli(capsys, "node", "list")
        assert "_agnoshm" not in out
        code, out, _ = _cli(capsys, "node", "list", "--all")
        assert f"/_agnoshm_echo_{process.pid}" in out.splitlines()
    finally:
        talker.call("publish", "/chatter", [{"data": "bye"}])
        assert cw.finish(process)[0] == 0


def test_unknown_node_is_a_clear_error(graph, capsys):
    code, out, err = _cli(capsys, "node", "info", "/talkr")
    assert code == 1
    assert "unknown node '/talkr'" in err and "did you mean /talker" in err
    result = cw.run_cli("node", "info", "/nobody")
    assert result.returncode == 1 and "Traceback" not in result.stderr
