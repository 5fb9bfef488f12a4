"""Child-process code for the executor and asyncio tests (multiprocessing, spawn).

A child publishes only when told to through a queue, so a test decides
exactly when messages arrive.  Payloads carry ``(publisher id, counter)`` in
their first 16 bytes (``workers.fill``).
"""

from __future__ import annotations

from workers import TIMEOUT, context, fill, wait_until

SIZE = 64


def publish(pub, publisher_id: int, counter: int) -> None:
    """Publish one ``SIZE``-byte message headed ``(publisher_id, counter)`` (in the test process)."""
    msg = pub.borrow_loaned_message()
    fill(msg.alloc("data", SIZE), publisher_id, counter)
    pub.publish(msg)


def start_publisher(topics: list[str], publisher_id: int = 0, depth: int = 256,
                    subscriptions: int = 1):
    """Start :func:`publish_on_command` in a child; return ``(process, commands, out)`` once
    it sees ``subscriptions`` subscriptions on every topic."""
    ctx = context()
    ready, commands, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    process = ctx.Process(target=publish_on_command,
                          args=(topics, publisher_id, depth, subscriptions, ready, commands, out))
    process.start()
    assert ready.wait(TIMEOUT), "the publisher did not see the subscriptions"
    return process, commands, out


def stop_publishers(*publishers) -> None:
    """Tell the children to stop, and check they exit cleanly."""
    for _process, commands, _out in publishers:
        commands.put(("stop",))
    for process, _commands, _out in publishers:
        process.join(TIMEOUT)
        assert process.exitcode == 0, f"publisher exited with {process.exitcode}"


def publish_on_command(topics: list[str], publisher_id: int, depth: int, subscriptions: int,
                       ready, commands, out) -> None:
    """Publish on ``topics`` once ``subscriptions`` listen on each.

    Commands: ``("publish", count)`` publishes ``count`` messages on every topic
    (counters continue from the last command) and reports
    ``("published", publisher_id, next_counter)``; ``("stop",)`` ends the child.
    """
    import agnoshm

    node = agnoshm.Node(f"commanded{publisher_id}")
    pubs = [node.create_publisher(agnoshm.Bytes, topic, depth) for topic in topics]
    wait_until(lambda: all(p.get_subscription_count() >= subscriptions for p in pubs),
               what="subscriptions")
    ready.set()
    counter = 0
    while True:
        command = commands.get(timeout=TIMEOUT)
        if command[0] == "stop":
            break
        for _ in range(command[1]):
            for pub in pubs:
                msg = pub.borrow_loaned_message()
                fill(msg.alloc("data", SIZE), publisher_id, counter)
                pub.publish(msg)
            counter += 1
        out.put(("published", publisher_id, counter))
    node.destroy_node()
    agnoshm.shutdown()

