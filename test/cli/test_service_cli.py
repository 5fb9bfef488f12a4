"""``agnoshm service`` list/info/call against a live server in another process, and the
service topics ``agnoshm topic list`` hides."""

from __future__ import annotations

import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # for `import cli_workers`, here and in spawned children
    sys.path.append(_HERE)

import cli_workers as cw  # noqa: E402
import service_cli_workers as scw  # noqa: E402

from agnoshm.cli.main import main  # noqa: E402


@pytest.fixture
def adder(isolated_domain):
    with cw.Worker(scw.adder, "/add_two_ints") as worker:
        yield worker


def _cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _run(*args):
    result = cw.run_cli(*args)
    return result.returncode, result.stdout, result.stderr


def test_list_prints_the_services_with_their_types(adder, capsys):
    code, out, _ = _cli(capsys, "service", "list")
    assert (code, out) == (0, "/add_two_ints\n")
    code, out, _ = _cli(capsys, "service", "list", "-t")
    assert (code, out) == (0, f"/add_two_ints [{scw.ADD}]\n")


def test_info_names_type_hash_server_and_clients(adder, capsys):
    import agnoshm

    code, out, _ = _cli(capsys, "service", "info", "add_two_ints")  # relative: from the root
    assert code == 0
    lines = out.splitlines()
    assert lines[:5] == ["Service: /add_two_ints", f"Type: {scw.ADD}",
                         f"Type hash: {agnoshm.get_service(scw.ADD).type_hash}",
                         "Service count: 1", "Client count: 1"]
    assert lines[5].startswith(f"  Server: /adder, pid {adder.pid} (")
    assert lines[6:] == [line.replace("Server: /adder", "Client: /asker") for line in lines[5:6]]
    code, out, err = _cli(capsys, "service", "info", "/add_two_int")
    assert code == 1
    assert "unknown service '/add_two_int'" in err and "did you mean /add_two_ints" in err


def test_call_sends_a_yaml_request_and_prints_the_response(adder):
    code, out, err = _run("service", "call", "/add_two_ints", scw.ADD, "{a: 2, b: 40}")
    assert code == 0, err
    assert out.startswith(f"requester: making request: {scw.ADD}_Request({{'a': 2, 'b': 40}})")
    assert "\nresponse (" in out and out.rstrip().endswith("sum: 42")
    code, out, err = _run("service", "call", "/add_two_ints", "{a: -5, b: 1}")  # type: registry's
    assert code == 0, err
    assert out.rstrip().endswith("sum: -4")
    assert adder.call("calls") == ("calls", 2)
    code, out, err = _run("service", "call", "/add_two_ints", scw.ADD, "[1, 2]")
    assert code == 2 and "VALUES must be a YAML mapping" in err and "Traceback" not in err


def test_call_without_a_server_is_a_clear_error(isolated_domain):
    code, out, err = _run("service", "call", "/nobody", scw.ADD, "{a: 1}", "--timeout", "0.2")
    assert code == 2, err
    assert "no server of service /nobody" in err and "start the server" in err
    assert "Traceback" not in err
    with cw.Worker(scw.adder, "/add_two_ints"):  # a domain with services, but not this one
        code, out, err = _run("service", "call", "/nobody", "{a: 1}")
        assert code == 1 and "unknown service '/nobody'" in err and "Traceback" not in err


def test_topic_list_hides_the_service_topics_unless_asked(adder, capsys):
    code, out, _ = _cli(capsys, "topic", "list")
    assert (code, out) == (0, "")
    code, out, _ = _cli(capsys, "topic", "list", "--include-hidden-topics", "-t")
    assert code == 0
    assert out.splitlines() == [f"/rq/add_two_intsRequest [{scw.ADD}_Call]",
                                f"/rr/add_two_intsReply [{scw.ADD}_Reply]"]
