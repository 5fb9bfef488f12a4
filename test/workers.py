"""Code that tests run in child processes (multiprocessing, spawn start method).

Every worker reports through a queue and waits on events: tests synchronize
on these, never on sleeps.  Payloads carry ``(publisher id, counter)`` in
their first 16 bytes so receivers can check order and completeness.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import struct
import time

TIMEOUT = float(os.environ.get("AGNOSHM_TEST_TIMEOUT", "120"))
_HEADER = struct.Struct("<qq")


def context():
    return multiprocessing.get_context("spawn")


def wait_until(predicate, timeout: float = TIMEOUT, what: str = "condition") -> None:
    """Poll ``predicate`` (a registry count, a file) until true; a watchdog, not a timer."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.002)


def fill(array, publisher_id: int, counter: int) -> None:
    array[:16] = memoryview(_HEADER.pack(publisher_id, counter)).cast("B")
    if len(array) > 16:
        array[16:] = (publisher_id + counter) & 0xFF


def read_header(array) -> tuple[int, int]:
    return _HEADER.unpack(bytes(array[:16]))


def publisher(topic: str, publisher_id: int, count: int, size: int, depth: int,
              wait_subscriptions: int, ready, start, out, durability: str = "volatile",
              exit_event=None) -> None:
    """Publish ``count`` messages of ``size`` bytes once ``wait_subscriptions`` listen."""
    import agnoshm

    node = agnoshm.Node(f"pub{publisher_id}")
    qos = agnoshm.QoSProfile(depth=depth, durability=_durability(durability))
    pub = node.create_publisher(agnoshm.Bytes, topic, qos)
    wait_until(lambda: pub.get_subscription_count() >= wait_subscriptions, what="subscriptions")
    ready.set()
    start.wait(TIMEOUT)
    for i in range(count):
        msg = pub.borrow_loaned_message()
        fill(msg.alloc("data", size), publisher_id, i)
        pub.publish(msg)
    out.put(("published", publisher_id, count, os.getpid()))
    if exit_event is not None:
        exit_event.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


def _durability(name: str):
    import agnoshm

    return {"volatile": agnoshm.DurabilityPolicy.VOLATILE,
            "transient_local": agnoshm.DurabilityPolicy.TRANSIENT_LOCAL}[name]


def subscriber(topics: list[str], subscriptions_per_topic: int, expected_per_subscription: int,
               depth: int, ready, out, durability: str = "volatile", done=None) -> None:
    """Receive on ``subscriptions_per_topic`` subscriptions per topic until each has its count;
    report ``{(topic, sub): [(publisher id, counter), ...]}``."""
    import agnoshm

    node = agnoshm.Node(f"sub{os.getpid()}")
    qos = agnoshm.QoSProfile(depth=depth, durability=_durability(durability))
    received: dict = {}
    for topic in topics:
        for k in range(subscriptions_per_topic):
            key = (topic, k)
            received[key] = []

            def callback(msg, key=key):
                data = msg.data
                received[key].append(read_header(data) + (len(data), _valid(data)))

            node.create_subscription(agnoshm.Bytes, topic, callback, qos)
    ready.set()
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    executor.spin_until(lambda: all(len(v) >= expected_per_subscription for v in received.values()),
                        timeout_sec=TIMEOUT)
    out.put(("received", os.getpid(), received))
    if done is not None:
        done.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


def _valid(data) -> bool:
    if len(data) <= 16:
        return True
    publisher_id, counter = read_header(data)
    expected = (publisher_id + counter) & 0xFF
    return bool(data[16] == expected and data[-1] == expected)


def hold_registry_lock_then_wait(ready, out) -> None:
    """Join, take the registry's global lock, say so, and wait to be killed."""
    import agnoshm
    from agnoshm import context

    agnoshm.init()
    runtime = context.get_runtime()
    runtime.registry.lock.acquire()
    out.put(("locked", os.getpid()))
    out.close()
    out.join_thread()
    ready.set()
    signal.pause()


def hold_received_then_wait(topic: str, count: int, ready, out) -> None:
    """Subscribe, keep every received message alive, report, wait to be killed."""
    import agnoshm

    node = agnoshm.Node("holder")
    sub = node.create_polling_subscription(agnoshm.Bytes, topic, 256)
    ready.set()
    kept = []

    def take_one():
        msg = sub.take()
        if msg is not None:
            kept.append(msg)
        return len(kept) >= count

    wait_until(take_one, what="messages to hold")
    out.put(("holding", os.getpid(), len(kept)))
    out.close()
    out.join_thread()
    signal.pause()


def write_into_received(topic: str, ready, out) -> None:
    """Receive one message and try to write into it through a raw pointer: must SIGSEGV."""
    import ctypes

    import agnoshm

    node = agnoshm.Node("writer")
    sub = node.create_polling_subscription(agnoshm.Bytes, topic, 10)
    ready.set()
    msg = None

    def got():
        nonlocal msg
        msg = sub.take()
        return msg is not None

    wait_until(got, what="a message")
    address = msg.data.ctypes.data
    out.put(("writing", address))
    out.close()
    out.join_thread()  # flush the report before the fault kills this process
    ctypes.memset(address, 0xEE, 16)  # the kernel must refuse: the mapping is PROT_READ
    out.put(("wrote", address))


def echo(ping: str, pong: str, count: int, ready, out) -> None:
    """Answer each of ``count`` messages on ``ping`` with the same bytes on ``pong``."""
    import agnoshm

    node = agnoshm.Node("echo")
    pub = node.create_publisher(agnoshm.Bytes, pong, 1)
    answered = [0]

    def answer(msg) -> None:
        pub.publish(bytes(msg.data))
        answered[0] += 1

    node.create_subscription(agnoshm.Bytes, ping, answer, 1)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    ready.set()
    executor.spin_until(lambda: answered[0] >= count, TIMEOUT)
    out.put(("answered", answered[0]))
    out.close()
    out.join_thread()
    node.destroy_node()
    agnoshm.shutdown()
