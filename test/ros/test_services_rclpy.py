"""Services and clients on rclpy nodes (agnoshm.ros.create_service / create_client, issue 18)
with real rclpy, across processes: an rclpy node's server answers an agnoshm node's client,
an rclpy node's client calls an agnoshm node's server, with rclpy's std_srvs classes as the
type; a raising callback; futures that rclpy spins and awaits."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import rclpy_service_workers as rw
import service_workers as sw
from ros_packages import needs
from test_services import procs, start  # noqa: F401  (procs: the fixture)
from workers import TIMEOUT, context

import agnoshm
import agnoshm.ros

pytestmark = [pytest.mark.ros, needs("std_srvs.srv")]

SET_BOOL_HASH = "RIHS01_abe9e4bb6b41b40e6789712c00ec8871923e089af3f667a79992a428cff2da0a"


@pytest.fixture
def ros(isolated_domain, ros_domain_id):
    """rclpy on its own context and domain; its nodes are destroyed after the test."""
    import rclpy
    import rclpy.context
    import rclpy.executors

    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id)
    nodes = []

    def node(name):
        nodes.append(rclpy.create_node(name, context=ctx))
        return nodes[-1]

    def executor():
        return rclpy.executors.SingleThreadedExecutor(context=ctx)

    yield SimpleNamespace(rclpy=rclpy, context=ctx, node=node, executor=executor,
                          domain_id=ros_domain_id)
    for created in nodes:
        try:
            created.destroy_node()
        except RuntimeError:  # destroyed by the test already
            pass
    rclpy.try_shutdown(context=ctx)


def test_rclpy_nodes_server_answers_an_agnoshm_client_in_another_process(ros, procs):
    from std_srvs.srv import SetBool

    assert agnoshm.get_service(SetBool).type_hash == SET_BOOL_HASH  # rclpy's class, ROS's hash
    ctx = context()
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    server = start(procs, rw.rclpy_server, "/switch", ros.domain_id, ready, stop, out)
    assert ready.wait(TIMEOUT)
    assert out.get(timeout=TIMEOUT) == ("serving", server.pid)
    client = agnoshm.Node("caller").create_client(SetBool, "/switch")
    assert client.wait_for_service(TIMEOUT)
    response = client.call(SetBool.Request(data=True), timeout_sec=TIMEOUT)
    assert (response.success, response.message) == (True, f"switched on by {server.pid}")
    assert response.to_ros() == SetBool.Response(success=True,
                                                 message=f"switched on by {server.pid}")
    with pytest.raises(agnoshm.ServiceCallbackError,
                       match="/switch.*raised.*ValueError: refused: data is false"):
        client.call({"data": False}, timeout_sec=TIMEOUT)
    assert client.call({"data": True}, timeout_sec=TIMEOUT).success  # still serving
    del response
    stop.set()
    # every call ran in the thread that spins the rclpy executor (the child's main thread)
    assert out.get(timeout=TIMEOUT) == ("served", 3, ["MainThread"])
    server.join(TIMEOUT)
    assert server.exitcode == 0


def test_rclpy_nodes_client_calls_an_agnoshm_server_in_another_process(ros, procs):
    ctx = context()
    ready, stop, out, blocked = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Event()
    server = start(procs, sw.server, "/work", ready, stop, out, blocked)
    assert ready.wait(TIMEOUT)
    assert out.get(timeout=TIMEOUT)[0] == "serving"
    agnoshm.register_srv(sw.WORK_SRV, sw.WORK)
    node = ros.node("rclpy_caller")
    client = agnoshm.create_client(node, sw.WORK, "work")  # relative: resolved by rclpy
    assert client.srv_name == "/work"
    assert client.wait_for_service(TIMEOUT)
    assert client.call({"a": 2, "b": 40}, timeout_sec=TIMEOUT).sum == 42  # no spinning
    request = client.borrow_loaned_request()
    request.a, request.b, request.size = 7, 1, 4096
    future = client.call_async(request)
    ros.rclpy.spin_until_future_complete(node, future, executor=ros.executor(),
                                         timeout_sec=TIMEOUT)
    assert future.done()
    response = future.result()
    assert response.sum == 8 and bytes(response.data) == bytes(sw.pattern(7, 4096))
    with pytest.raises(agnoshm.ServiceCallbackError, match="ValueError: asked to fail"):
        client.call({"a": 1, "fail": True}, timeout_sec=TIMEOUT)
    del response, future
    stop.set()
    assert out.get(timeout=TIMEOUT) == ("served", server.pid, 2)
    server.join(TIMEOUT)
    assert server.exitcode == 0


def test_a_coroutine_run_by_rclpy_awaits_a_call(ros, procs):
    """The future wakes rclpy's executor: without that, rclpy would not resume the task
    until something else woke it, and spin_until_future_complete would wait out TIMEOUT."""
    ctx = context()
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    start(procs, sw.server, "/work", ready, stop, out)
    assert ready.wait(TIMEOUT) and out.get(timeout=TIMEOUT)[0] == "serving"
    agnoshm.register_srv(sw.WORK_SRV, sw.WORK)
    node = ros.node("awaiting")
    client = agnoshm.ros.create_client(node, sw.WORK, "/work")
    assert client.wait_for_service(TIMEOUT)

    async def ask():
        return (await client.call_async({"a": 20, "b": 22})).sum

    executor = ros.executor()
    executor.add_node(node)
    task = executor.create_task(ask)
    executor.spin_until_future_complete(task, timeout_sec=TIMEOUT)
    assert task.done() and task.result() == 42
    stop.set()


def test_a_raising_callback_on_an_rclpy_node_answers_with_an_error_and_keeps_serving(ros):
    from std_srvs.srv import SetBool, Trigger

    node = ros.node("host")
    ran_in = []

    def check(request, response):
        ran_in.append(threading.current_thread().name)
        if not request.data:
            raise RuntimeError("no")
        response.success = True
        return response

    server = agnoshm.ros.create_service(node, SetBool, "check", check, qos_profile=4)
    assert (server.srv_name, server.srv_type.type_name) == ("/check", "std_srvs/srv/SetBool")
    executor = ros.executor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, name="rclpy-spin", daemon=True)
    spinner.start()
    client = agnoshm.Node("caller").create_client(SetBool, "/check")
    with pytest.raises(agnoshm.ServiceCallbackError, match="RuntimeError: no"):
        client.call({"data": False}, timeout_sec=TIMEOUT)
    assert client.call({"data": True}, timeout_sec=TIMEOUT).success
    assert ran_in == ["rclpy-spin", "rclpy-spin"]
    # a client of another type is refused; a second server on the name too
    with pytest.raises(agnoshm.TypeMismatchError):
        agnoshm.Node("other").create_client(Trigger, "/check")
    with pytest.raises(agnoshm.ServiceExistsError, match="/check.*/host"):
        agnoshm.Node("second").create_service(SetBool, "/check", check)
    executor.shutdown()
    spinner.join(TIMEOUT)


def test_destroy_node_and_destroy_release_the_service(ros):
    from std_srvs.srv import Empty

    node = ros.node("host")
    agnoshm.ros.create_service(node, Empty, "/gone", lambda req, res: res)
    client = agnoshm.ros.create_client(node, Empty, "/gone")
    watcher = agnoshm.Node("watcher").create_client(Empty, "/gone")
    assert watcher.service_is_ready()
    node.destroy_node()  # rclpy's: agnoshm's endpoints on it go first
    assert not watcher.service_is_ready()
    with pytest.raises(agnoshm.InvalidHandleError):
        client.call_async(None)
    again = agnoshm.ros.create_service(ros.node("host2"), Empty, "/gone", lambda req, res: res)
    assert watcher.service_is_ready()
    again.destroy()
    assert not watcher.service_is_ready()
    agnoshm.Node("host3").create_service(Empty, "/gone", lambda req, res: res)  # name is free


def test_bad_input_on_rclpy_nodes_is_refused_before_anything_exists(ros):
    from std_srvs.srv import Empty

    node = ros.node("host")
    with pytest.raises(TypeError, match="callable"):
        agnoshm.ros.create_service(node, Empty, "/x", None)
    with pytest.raises(agnoshm.InvalidTopicNameError):
        agnoshm.ros.create_service(node, Empty, "bad name", lambda q, r: r)
    with pytest.raises(agnoshm.TypeMismatchError, match="unknown service type"):
        agnoshm.ros.create_client(node, "no_pkg/srv/Nothing", "/x")
    with pytest.raises(TypeError, match="rclpy.node.Node"):
        agnoshm.ros.create_client(object(), Empty, "/x")
    with pytest.raises(TypeError, match="agnoshm.Node or an rclpy"):
        agnoshm.create_service(object(), Empty, "/x", lambda q, r: r)
