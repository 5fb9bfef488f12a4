"""A child process for test_matched.py: creates and destroys endpoints on command.

Commands come on a queue as tuples; after each the worker puts ``("done", command)``
on ``out`` (so the test knows the registry already shows the change).
"""

from __future__ import annotations

import os

from workers import TIMEOUT


def endpoints(commands, out) -> None:
    """``("pub"|"sub", topic)`` creates one, ``("destroy", kind, topic)`` destroys the
    oldest of that kind on topic, ``("publish", topic, text)`` publishes a ``Bytes``
    message, ``("quit",)`` ends cleanly."""
    import agnoshm

    node = agnoshm.Node(f"endpoints{os.getpid()}")
    made: dict[tuple[str, str], list] = {}
    out.put(("ready", os.getpid()))
    while True:
        command = commands.get(timeout=TIMEOUT)
        if command[0] == "quit":
            break
        if command[0] == "pub":
            made.setdefault(command, []).append(node.create_publisher(agnoshm.Bytes, command[1], 10))
        elif command[0] == "sub":
            made.setdefault(command, []).append(
                node.create_polling_subscription(agnoshm.Bytes, command[1], 10))
        elif command[0] == "destroy":
            endpoint = made[command[1:]].pop(0)
            if command[1] == "pub":
                node.destroy_publisher(endpoint)
            else:
                node.destroy_subscription(endpoint)
        elif command[0] == "publish":
            pub = made[("pub", command[1])][0]
            pub.publish(command[2].encode())
        out.put(("done", command))
    node.destroy_node()
    agnoshm.shutdown()
    out.put(("bye",))
