"""The doorbell: publishers ring a process only while it may sleep, and no ring is slept through."""

from __future__ import annotations

import pytest

import agnoshm
from agnoshm.transport.doorbell import RING_ONLY_SLEEPERS
import workers
from workers import TIMEOUT


@pytest.mark.skipif(not RING_ONLY_SLEEPERS, reason="publishers ring every time off x86 "
                    "(the unlock is not a full barrier there)")
def test_a_publisher_rings_only_a_process_that_may_sleep(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/bell", 8)
    node.create_polling_subscription(agnoshm.Bytes, "/bell", 8)
    doorbell = agnoshm.context.get_runtime().doorbell
    seen = doorbell.value()
    doorbell.wait(seen, 0)  # the flag was clear: it is set, and wait returns at once
    pub.publish(b"one")
    assert doorbell.value() == seen + 1, "a process that may sleep must be rung"
    pub.publish(b"two")
    pub.publish(b"three")
    assert doorbell.value() == seen + 1, "a process that has not gone back to sleep was rung"
    doorbell.wait(seen + 1, 0)  # arms again
    pub.publish(b"four")
    assert doorbell.value() == seen + 2


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
