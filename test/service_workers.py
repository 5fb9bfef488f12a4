"""Code that test_services.py runs in child processes (spawn): servers and clients.

Each worker reports through a queue and waits on events; tests synchronize on these.
"""

from __future__ import annotations

import os

from workers import TIMEOUT, wait_until

#: The test service: small fields, a large array in the response, and switches that make
#: the callback fail or block.
WORK_SRV = ("int64 a\nint64 b\nuint32 size\nbool fail\nbool block\n---\n"
            "int64 sum\nuint8[] data\n")
WORK = "agnoshm_test/srv/Work"


def pattern(a: int, size: int):
    import numpy as np

    return ((np.arange(size, dtype=np.uint32) + a) & 0xFF).astype(np.uint8)


def server(service: str, ready, stop, out, blocked=None, node_name: str = "server") -> None:
    """Serve :data:`WORK` on ``service`` until ``stop``; the response's data is filled in place."""
    import agnoshm

    agnoshm.register_srv(WORK_SRV, WORK)
    node = agnoshm.Node(node_name)
    served = []

    def work(request, response):
        if request.fail:
            raise ValueError(f"asked to fail (a={request.a})")
        if request.block:
            blocked.set()
            stop.wait(TIMEOUT)
        response.sum = request.a + request.b
        if request.size:
            data = response.alloc("data", request.size)
            data[:] = pattern(request.a, request.size)
        served.append(request.a)
        return response

    try:
        node.create_service(WORK, service, work)
    except agnoshm.ServiceExistsError as err:
        out.put(("refused", os.getpid(), str(err)))
        ready.set()
        return
    out.put(("serving", os.getpid(), ""))
    ready.set()
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    while not stop.is_set():
        executor.spin_once(timeout_sec=0.05)
    out.put(("served", os.getpid(), len(served)))
    agnoshm.shutdown()


def client(service: str, index: int, calls: int, ready, out, started=None) -> None:
    """Make ``calls`` concurrent calls (``call_async``), then as many with ``call``; report
    how many came back right (each matched to its own request)."""
    import time

    import agnoshm

    agnoshm.register_srv(WORK_SRV, WORK)
    node = agnoshm.Node(f"client{index}")
    cli = node.create_client(WORK, service, qos_profile=calls)
    if not cli.wait_for_service(TIMEOUT):
        out.put(("no server", index, 0))
        return
    ready.set()
    if started is not None:  # block until the test says go (e.g. a kill mid-call)
        future = cli.call_async({"a": index, "b": 0, "block": True})
        started.set()
        wait_until(future.done, what="the blocked call")
        return
    good = 0
    futures = [(i, cli.call_async({"a": index * 1000 + i, "b": i, "size": 64}))
               for i in range(calls)]
    deadline = time.monotonic() + TIMEOUT
    for i, future in futures:
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.001)
        response = future.result()
        good += response.sum == index * 1000 + 2 * i \
            and bytes(response.data) == bytes(pattern(index * 1000 + i, 64))
    for i in range(calls):
        response = cli.call({"a": index * 1000 + i, "b": 1}, timeout_sec=TIMEOUT)
        good += response.sum == index * 1000 + i + 1
    out.put(("done", index, good))
    agnoshm.shutdown()


def try_server(service: str, go, hold, out) -> None:
    """Create a server at the same moment as another process; report whether it won."""
    import agnoshm

    agnoshm.register_srv(WORK_SRV, WORK)
    node = agnoshm.Node("racer")
    go.wait(TIMEOUT)
    try:
        node.create_service(WORK, service, lambda req, res: res)
    except agnoshm.ServiceExistsError:
        out.put("refused")
    else:
        out.put("won")
    hold.wait(TIMEOUT)  # keep the name until both have tried
    agnoshm.shutdown()
