"""Services and clients (issue 18, item 1) across real processes: types and hashes, calls
matched under concurrency, zero-copy responses, and every bad input a typed error."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import numpy as np
import pytest
import service_workers as sw
from ros_packages import needs
from workers import TIMEOUT, context, wait_until

import agnoshm
from agnoshm.msg.srv import get_service, request_topic, reply_topic, service_of_topic

# RIHS01 of std_srvs' services as ROS 2 Kilted installs them (ros-std-srvs 5.5.1,
# share/std_srvs/srv/*.json)
TRIGGER_HASH = "RIHS01_eeff2cd6fa5ad9d27cdf4dec64818317839b62f212a91e6b5304b634b2062c5f"
SET_BOOL_HASH = "RIHS01_abe9e4bb6b41b40e6789712c00ec8871923e089af3f667a79992a428cff2da0a"
EMPTY_HASH = "RIHS01_5888399dedec5ccc85ea6451949fd2c9f97bfdf963f9a588821639fcd31b5d19"


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        if p.is_alive():
            p.kill()
        p.join(TIMEOUT)


def start(procs, target, *args):
    p = context().Process(target=target, args=args)
    p.start()
    procs.append(p)
    return p


def running_server(procs, service, **kw):
    ctx = context()
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    blocked = ctx.Event()
    p = start(procs, sw.server, service, ready, stop, out, blocked, kw.get("node_name", "server"))
    assert ready.wait(TIMEOUT)
    assert out.get(timeout=TIMEOUT)[0] == "serving"
    return p, stop, out, blocked


# -- types ---------------------------------------------------------------------------------

def test_built_in_services_resolve_without_ros_with_rosidls_hash():
    empty = get_service("std_srvs/Empty")
    assert empty.type_name == "std_srvs/srv/Empty"
    assert empty.Request.definition.fields == ()  # rosidl's one-byte member, as any empty message
    for name in ("std_srvs/srv/Trigger", "std_srvs/srv/SetBool", "example_interfaces/srv/AddTwoInts",
                 "example_interfaces/srv/Trigger", "example_interfaces/srv/SetBool"):
        service = get_service(name)
        assert service.Request.type_name == name + "_Request"
        assert service.Response.type_name == name + "_Response"
    assert get_service("example_interfaces/srv/AddTwoInts").Request.definition.field("a")


def test_std_srvs_hashes_are_the_ones_ros_2_installs():
    assert get_service("std_srvs/srv/Trigger").type_hash == TRIGGER_HASH
    assert get_service("std_srvs/srv/SetBool").type_hash == SET_BOOL_HASH
    assert get_service("std_srvs/srv/Empty").type_hash == EMPTY_HASH


def test_user_srv_text_and_package_folder(tmp_path):
    names = agnoshm.register_srv("string name\n---\nuint64 id\n", "svc_test_pkg/srv/Lookup")
    assert names == ["svc_test_pkg/srv/Lookup"]
    lookup = get_service("svc_test_pkg/Lookup")
    assert lookup.Response.definition.field("id").type.base == "uint64"
    folder = tmp_path / "svc_test_folder"
    (folder / "srv").mkdir(parents=True)
    (folder / "msg").mkdir()
    (folder / "msg" / "Pair.msg").write_text("int32 x\nint32 y\n")
    (folder / "srv" / "Swap.srv").write_text("Pair pair\n---\nPair pair\n")
    assert agnoshm.register_srv(folder) == ["svc_test_folder/srv/Swap"]
    swap = get_service("svc_test_folder/srv/Swap")
    assert swap.Request.definition.field("pair").type.base == "svc_test_folder/msg/Pair"


def test_bad_srv_definitions_are_typed_errors():
    with pytest.raises(agnoshm.MessageDefinitionError, match="separator"):
        agnoshm.register_srv("int64 a\n", "svc_test_pkg/srv/NoSeparator")
    with pytest.raises(agnoshm.MessageDefinitionError, match="line 1"):
        agnoshm.register_srv("int64 a b c\n---\n", "svc_test_pkg/srv/BadLine")
    agnoshm.register_srv("int64 a\n---\n", "svc_test_pkg/srv/Twice")
    with pytest.raises(agnoshm.MessageDefinitionError, match="already registered differently"):
        agnoshm.register_srv("int32 a\n---\n", "svc_test_pkg/srv/Twice")
    with pytest.raises(agnoshm.TypeMismatchError, match="unknown service type.*register_srv"):
        get_service("no_such_pkg/srv/Nothing")
    with pytest.raises(agnoshm.TypeMismatchError, match="pkg/srv/Name"):
        get_service("not a name")


def test_service_topics_are_named_like_rmws_and_recognised():
    assert request_topic("/ns/add") == "/rq/ns/addRequest"
    assert reply_topic("/ns/add") == "/rr/ns/addReply"
    assert service_of_topic("/rq/ns/addRequest", "example_interfaces/srv/AddTwoInts_Call") == \
        ("/ns/add", "example_interfaces/srv/AddTwoInts", "request")
    assert service_of_topic("/rq/ns/addRequest", "std_msgs/msg/String") is None


# -- calls across processes ----------------------------------------------------------------

def test_several_clients_in_processes_get_their_own_answers(isolated_domain, procs):
    server, stop, out, _ = running_server(procs, "/work")
    ctx = context()
    results = ctx.Queue()
    readies = [ctx.Event() for _ in range(3)]
    for i, ready in enumerate(readies):
        start(procs, sw.client, "/work", i + 1, 8, ready, results)
    reports = sorted(results.get(timeout=TIMEOUT) for _ in readies)
    assert reports == [("done", i + 1, 16) for i in range(3)]
    # and this process, concurrently from threads, while those are gone
    agnoshm.register_srv(sw.WORK_SRV, sw.WORK)
    node = agnoshm.Node("caller")
    cli = node.create_client(sw.WORK, "/work")
    answers = {}

    def call(i):
        answers[i] = cli.call({"a": i, "b": 10 * i}, timeout_sec=TIMEOUT).sum

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert answers == {i: 11 * i for i in range(6)}
    stop.set()
    assert out.get(timeout=TIMEOUT) == ("served", server.pid, 3 * 16 + 6)
    server.join(TIMEOUT)
    assert server.exitcode == 0


def test_a_large_response_is_read_in_place_in_the_servers_pool(isolated_domain, procs):
    server, stop, out, _ = running_server(procs, "/big")
    agnoshm.register_srv(sw.WORK_SRV, sw.WORK)
    node = agnoshm.Node("reader")
    cli = node.create_client(sw.WORK, "big")
    size = 6 * 1024 * 1024
    request = cli.borrow_loaned_request()  # the request in our pool, sent in place
    request.a, request.b, request.size = 7, 1, size
    response = cli.call(request, timeout_sec=TIMEOUT)
    assert response.sum == 8
    data = response.data
    assert data.shape == (size,) and not data.flags.writeable
    assert np.array_equal(data, sw.pattern(7, size))
    from agnoshm.registry.snapshot import RegistryFile
    from domains import registry_path

    with RegistryFile(registry_path(isolated_domain)) as registry:
        pool = next(p for p in registry.processes() if p.pid == server.pid)
    address = data.ctypes.data
    assert pool.pool_address <= address < pool.pool_address + pool.pool_size  # no copy made
    with pytest.raises(agnoshm.MessageInvalidatedError, match="sent already"):
        cli.call(request, timeout_sec=TIMEOUT)
    del data, response
    stop.set()
    server.join(TIMEOUT)


def test_call_async_is_awaited_by_executor_coroutines_and_asyncio(isolated_domain, procs):
    running_server(procs, "/work")
    agnoshm.register_srv(sw.WORK_SRV, sw.WORK)
    node = agnoshm.Node("awaiter")
    cli = node.create_client(sw.WORK, "/work")
    assert cli.wait_for_service(TIMEOUT) and cli.service_is_ready()

    async def two_calls():
        first = await cli.call_async({"a": 1, "b": 2})
        second = await cli.call_async({"a": first.sum, "b": 2})
        return second.sum

    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    task = executor.create_task(two_calls)
    executor.spin_until_future_complete(task, TIMEOUT)
    assert task.result() == 5

    async def with_asyncio():
        response = await agnoshm.aio.result(cli.call_async({"a": 20, "b": 22}), timeout=TIMEOUT)
        return response.sum

    assert asyncio.run(with_asyncio()) == 42


# -- bad input -----------------------------------------------------------------------------

def test_a_second_server_is_refused_in_another_process(isolated_domain, procs):
    running_server(procs, "/work", node_name="first")
    agnoshm.register_srv(sw.WORK_SRV, sw.WORK)
    node = agnoshm.Node("second")
    with pytest.raises(agnoshm.ServiceExistsError, match=r"/work already has a server \(node /first"):
        node.create_service(sw.WORK, "/work", lambda req, res: res)
    assert node.services == []
    other = node.create_service(sw.WORK, "/work2", lambda req, res: res)  # another name is fine
    node.destroy_service(other)
    node.create_service(sw.WORK, "/work2", lambda req, res: res)  # and free again once destroyed


def test_two_servers_starting_at_once_exactly_one_wins(isolated_domain, procs):
    ctx = context()
    go, hold, out = ctx.Event(), ctx.Event(), ctx.Queue()
    racers = [start(procs, sw.try_server, "/race", go, hold, out) for _ in range(2)]
    go.set()
    results = sorted(out.get(timeout=TIMEOUT) for _ in range(2))
    hold.set()
    for racer in racers:
        racer.join(TIMEOUT)
    assert results == ["refused", "won"]


def test_client_and_server_of_different_types_meet_a_typed_error(isolated_domain, procs):
    running_server(procs, "/work")
    node = agnoshm.Node("wrong")
    with pytest.raises(agnoshm.TypeMismatchError) as err:
        node.create_client("std_srvs/srv/Trigger", "/work")
    text = str(err.value)
    assert "agnoshm_test/srv/Work" in text and "std_srvs/srv/Trigger" in text
    assert get_service("std_srvs/srv/Trigger").type_hash in text
    # and the other way round: a server after its clients
    agnoshm.register_srv("int64 a\n---\nint64 sum\n", "svc_test_pkg/srv/Same")
    node.create_client("svc_test_pkg/srv/Same", "/same")
    with pytest.raises(agnoshm.TypeMismatchError, match="/same carries svc_test_pkg/srv/Same"):
        node.create_service("std_srvs/srv/Trigger", "/same", lambda req, res: res)
    assert node.services == []
    node.create_service("svc_test_pkg/srv/Same", "/same", lambda req, res: res)  # name not held


def test_a_call_without_server_times_out_naming_the_service(isolated_domain):
    node = agnoshm.Node("lonely")
    cli = node.create_client("std_srvs/srv/Trigger", "/nobody/home")
    assert not cli.service_is_ready()
    assert not cli.wait_for_service(timeout_sec=0.1)
    with pytest.raises(agnoshm.ServiceTimeoutError, match="/nobody/home"):
        cli.call({}, timeout_sec=0.2)
    future = cli.call_async({})
    assert future.done()
    with pytest.raises(agnoshm.ServiceUnavailableError, match="/nobody/home has no server"):
        future.result()


def test_a_raising_callback_answers_with_an_error_and_serving_goes_on(isolated_domain, procs):
    running_server(procs, "/work")
    agnoshm.register_srv(sw.WORK_SRV, sw.WORK)
    node = agnoshm.Node("asker")
    cli = node.create_client(sw.WORK, "/work")
    with pytest.raises(agnoshm.ServiceCallbackError,
                       match=r"/work .* raised: ValueError: asked to fail \(a=3\)"):
        cli.call({"a": 3, "fail": True}, timeout_sec=TIMEOUT)
    assert cli.call({"a": 3, "b": 4}, timeout_sec=TIMEOUT).sum == 7


def test_a_callback_returning_nothing_or_the_wrong_type_answers_with_an_error(isolated_domain):
    node = agnoshm.Node("both")
    node.create_service("std_srvs/srv/SetBool", "/none", lambda req, res: None)
    node.create_service("std_srvs/srv/SetBool", "/wrong", lambda req, res: {"nope": 1})
    node.create_service("std_srvs/srv/SetBool", "/dict",
                        lambda req, res: {"success": req.data, "message": "copied"})
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin_until, args=(lambda: done.is_set(), TIMEOUT))
    done = threading.Event()
    spinner.start()
    try:
        with pytest.raises(agnoshm.ServiceCallbackError, match="returned None"):
            node.create_client("std_srvs/srv/SetBool", "/none").call({"data": True}, TIMEOUT)
        with pytest.raises(agnoshm.ServiceCallbackError, match="nope"):
            node.create_client("std_srvs/srv/SetBool", "/wrong").call({"data": True}, TIMEOUT)
        response = node.create_client("std_srvs/srv/SetBool", "/dict").call({"data": True}, TIMEOUT)
        assert response.success and response.message == "copied"
    finally:
        done.set()
        executor.wake()
        spinner.join(TIMEOUT)


def test_a_server_killed_mid_call_fails_the_call_naming_the_service(isolated_domain, procs):
    server, _stop, _out, blocked = running_server(procs, "/fragile")
    agnoshm.register_srv(sw.WORK_SRV, sw.WORK)
    node = agnoshm.Node("victim")
    cli = node.create_client(sw.WORK, "/fragile")
    future = cli.call_async({"a": 1, "block": True})
    assert blocked.wait(TIMEOUT)
    os.kill(server.pid, signal.SIGKILL)
    server.join(TIMEOUT)
    wait_until(future.done, what="the orphaned call to fail")
    with pytest.raises(agnoshm.ServiceUnavailableError, match="server of service /fragile went away"):
        future.result()
    assert not cli.service_is_ready()


def test_a_client_killed_mid_call_leaves_the_server_serving(isolated_domain, procs):
    server, stop, out, blocked = running_server(procs, "/work")
    ctx = context()
    ready, started, results = ctx.Event(), ctx.Event(), ctx.Queue()
    caller = start(procs, sw.client, "/work", 9, 1, ready, results, started)
    assert started.wait(TIMEOUT) and blocked.wait(TIMEOUT)
    os.kill(caller.pid, signal.SIGKILL)
    caller.join(TIMEOUT)
    stop.set()  # the blocked callback returns; its reply goes to a dead client
    agnoshm.register_srv(sw.WORK_SRV, sw.WORK)
    assert out.get(timeout=TIMEOUT) == ("served", server.pid, 1)
    server.join(TIMEOUT)
    assert server.exitcode == 0


def test_destroying_a_client_fails_its_pending_calls(isolated_domain, procs):
    running_server(procs, "/work")
    agnoshm.register_srv(sw.WORK_SRV, sw.WORK)
    node = agnoshm.Node("impatient")
    cli = node.create_client(sw.WORK, "/work")
    future = cli.call_async({"a": 1, "block": True})
    node.destroy_client(cli)
    with pytest.raises(agnoshm.InvalidHandleError, match="destroyed"):
        future.result()
    with pytest.raises(agnoshm.InvalidHandleError):
        cli.call_async({})


# -- with rclpy ----------------------------------------------------------------------------

@pytest.mark.ros
@needs("std_srvs.srv")
def test_rclpy_service_classes_and_messages(isolated_domain):
    import json
    from pathlib import Path

    from std_srvs.srv import SetBool

    import std_srvs

    service = get_service(SetBool)
    assert service.source == "rclpy"
    share = [Path(p) / "share/std_srvs/srv/SetBool.json"
             for p in os.environ.get("AMENT_PREFIX_PATH", "").split(":") if p]
    found = [p for p in share if p.exists()]
    if found:
        hashes = {h["type_name"]: h["hash_string"]
                  for h in json.loads(found[0].read_text())["type_hashes"]}
        assert service.type_hash == hashes["std_srvs/srv/SetBool"]
    node = agnoshm.Node("ros_types")

    def flip(request, response):
        return SetBool.Response(success=not request.data, message="rclpy")  # copied in

    node.create_service(SetBool, "/flip", flip)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    done = threading.Event()
    spinner = threading.Thread(target=executor.spin_until, args=(done.is_set, TIMEOUT))
    spinner.start()
    try:
        response = node.create_client(SetBool, "/flip").call(SetBool.Request(data=False), TIMEOUT)
        assert response.success and response.message == "rclpy"
        assert response.to_ros() == SetBool.Response(success=True, message="rclpy")
    finally:
        done.set()
        executor.wake()
        spinner.join(TIMEOUT)
    assert std_srvs.srv.SetBool is SetBool
