"""A child process for test_service_cli.py (spawn): an AddTwoInts server and a client.

It answers commands on a queue (the protocol of ``cli_workers.Worker``), so tests
synchronize on replies, never on sleeps.
"""

from __future__ import annotations

import os

from cli_workers import TIMEOUT

ADD = "example_interfaces/srv/AddTwoInts"


def adder(service: str, commands, out) -> None:
    """Serve :data:`ADD` on ``service`` (node ``/adder``, spun in a thread) beside a client of
    it (node ``/asker``); ``("calls",)`` replies ``("calls", n)``; ``("exit",)`` leaves."""
    import threading

    import agnoshm

    server_node, client_node = agnoshm.Node("adder"), agnoshm.Node("asker")
    calls = []

    def add(request, response):
        calls.append((request.a, request.b))
        response.sum = request.a + request.b
        return response

    server_node.create_service(ADD, service, add)
    client_node.create_client(ADD, service)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(server_node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    out.put(("ready", os.getpid()))
    while True:
        command = commands.get(timeout=TIMEOUT)
        if command[0] == "calls":
            out.put(("calls", len(calls)))
        elif command[0] == "exit":
            break
    executor.shutdown()
    spinner.join(TIMEOUT)
    agnoshm.shutdown()
    out.put(("bye",))
