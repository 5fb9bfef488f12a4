"""The doorbell: publishers ring a process only while it may sleep, and no ring is slept through."""

from __future__ import annotations

import threading

import agnoshm
import workers
from workers import TIMEOUT


def _sleeping_flag(runtime) -> int:
    return runtime.registry.processes[runtime.slot].sleeping


def test_a_publisher_rings_only_while_the_process_may_sleep(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/bell", 8)
    node.create_polling_subscription(agnoshm.Bytes, "/bell", 8)
    runtime = agnoshm.context.get_runtime()
    doorbell = runtime.doorbell
    seen = doorbell.value()
    pub.publish(b"awake")
    assert doorbell.value() == seen, "a process that does not sleep was rung"
    doorbell.wait(seen, 0)  # arms (sets the flag) and returns at once: look once more
    assert _sleeping_flag(runtime) == 1
    pub.publish(b"one")
    pub.publish(b"two")
    assert doorbell.value() == seen + 2, "a process that may sleep must be rung"
    assert _sleeping_flag(runtime) == 1, "only the sleeping process may clear its flag"
    doorbell.wait(seen + 2, 0)  # sleeps (not at all: timeout 0), wakes, disarms
    assert _sleeping_flag(runtime) == 0
    pub.publish(b"three")
    assert doorbell.value() == seen + 2


def test_the_flag_stays_set_while_any_thread_of_the_process_may_sleep(isolated_domain):
    agnoshm.Node("n")
    runtime = agnoshm.context.get_runtime()
    doorbell = runtime.doorbell
    other_armed, release = threading.Event(), threading.Event()

    def other():
        doorbell.arm()
        other_armed.set()
        release.wait(TIMEOUT)
        doorbell.disarm()

    thread = threading.Thread(target=other)
    thread.start()
    assert other_armed.wait(TIMEOUT)
    doorbell.arm()
    doorbell.disarm()
    assert _sleeping_flag(runtime) == 1, "another thread still may sleep"
    release.set()
    thread.join(TIMEOUT)
    assert _sleeping_flag(runtime) == 0


def test_a_ping_pong_between_processes_never_sleeps_through_a_message(isolated_domain):
    """Both sides sleep on their doorbells between messages, a thousand times: a ring lost
    to the sleeping flag would leave one side asleep (the test would time out)."""
    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    count = 1000
    child = ctx.Process(target=workers.echo, args=("/ping", "/pong", count, ready, out))
    child.start()
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/ping", 1)
    answers = []
    node.create_subscription(agnoshm.Bytes, "/pong",
                             lambda m: answers.append(int.from_bytes(bytes(m.data), "little")), 1)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    assert ready.wait(TIMEOUT)
    workers.wait_until(lambda: pub.get_subscription_count() == 1)
    for i in range(count):
        pub.publish(i.to_bytes(4, "little"))
        assert executor.spin_until(lambda: len(answers) > i, TIMEOUT), f"message {i} was lost"
    assert answers == list(range(count))
    assert out.get(timeout=TIMEOUT) == ("answered", count)
    child.join(TIMEOUT)
    assert child.exitcode == 0
    executor.shutdown()
