"""Messages across real processes: zero copy, delivery, order, durability, held references."""

from __future__ import annotations

import ctypes
import signal

import numpy as np
import pytest

import agnoshm
from agnoshm.registry import layout as L
import workers
from workers import TIMEOUT

MiB = 1 << 20


def _start(target, *args, **kwargs):
    process = workers.context().Process(target=target, args=args, kwargs=kwargs)
    process.start()
    return process


def _join_all(processes):
    for p in processes:
        p.join(TIMEOUT)
        assert p.exitcode == 0, f"{p.name} exited with {p.exitcode}"


def test_16_mib_message_crosses_processes_without_a_copy(isolated_domain, backend):
    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    node = agnoshm.Node("talker")
    pub = node.create_publisher(agnoshm.Bytes, "/big", 4)
    holder = _start(workers.subscriber, ["/big"], 1, 1, 4, ready, out)
    assert ready.wait(TIMEOUT)
    workers.wait_until(lambda: pub.get_subscription_count() == 1)
    msg = pub.borrow_loaned_message()
    data = msg.alloc("data", 16 * MiB)
    workers.fill(data, 1, 0)
    address = data.ctypes.data
    pub.publish(msg)
    kind, pid, received = out.get(timeout=TIMEOUT)
    _join_all([holder])
    assert received[("/big", 0)] == [(1, 0, 16 * MiB, True)]


def test_subscriber_array_lies_in_publisher_pool_at_the_same_address(isolated_domain, backend):
    """Same process, two runtimes are impossible, so a child publishes and we subscribe."""
    ctx = workers.context()
    ready, start, out, finish = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Event()
    node = agnoshm.Node("listener")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/big", 4)
    child = _start(workers.publisher, "/big", 7, 1, 16 * MiB, 4, 1, ready, start, out,
                   exit_event=finish)
    assert ready.wait(TIMEOUT)
    start.set()
    assert out.get(timeout=TIMEOUT)[0] == "published"
    workers.wait_until(sub.has_data)
    msg = sub.take()
    data = msg.data
    runtime = agnoshm.context.get_runtime()
    registry = runtime.registry
    slot = next(s for s in registry.live_slots() if registry.processes[s].pid == child.pid)
    pool_address = registry.processes[slot].pool_address
    assert pool_address <= data.ctypes.data < pool_address + registry.processes[slot].pool_size
    assert not data.flags.writeable
    assert data.size == 16 * MiB
    assert workers.read_header(data) == (7, 0) and data[-1] == 7
    del msg, data
    finish.set()
    _join_all([child])


def test_subscriber_writing_into_a_message_dies_with_sigsegv_and_publisher_is_unharmed(
        isolated_domain, backend):
    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    node = agnoshm.Node("talker")
    pub = node.create_publisher(agnoshm.Bytes, "/victim", 4)
    child = _start(workers.write_into_received, "/victim", ready, out)
    assert ready.wait(TIMEOUT)
    workers.wait_until(lambda: pub.get_subscription_count() == 1)
    msg = pub.borrow_loaned_message()
    data = msg.alloc("data", 4096)
    data[:] = 42
    pub.publish(msg)
    assert out.get(timeout=TIMEOUT)[0] == "writing"
    child.join(TIMEOUT)
    assert child.exitcode == -signal.SIGSEGV
    assert (data == 42).all(), "the publisher's bytes changed"
    registry = agnoshm.context.get_runtime().registry
    workers.wait_until(lambda: child.pid not in {registry.processes[s].pid
                                                 for s in registry.live_slots()},
                       what="the crashed subscriber to be reaped")
    assert registry.check_consistency() == []
    # the publisher carries on
    msg = pub.borrow_loaned_message()
    msg.data = b"still alive"
    pub.publish(msg)


@pytest.mark.parametrize("publishers,subscriber_processes,subs_per_process", [(2, 2, 2), (3, 3, 1)])
def test_every_message_is_delivered_once_per_subscription_in_order(
        isolated_domain, publishers, subscriber_processes, subs_per_process):
    ctx = workers.context()
    count = 240 // publishers  # everything fits in depth 256: nothing may be dropped
    total_subs = subscriber_processes * subs_per_process
    out = ctx.Queue()
    start = ctx.Event()
    sub_ready = [ctx.Event() for _ in range(subscriber_processes)]
    subs = [_start(workers.subscriber, ["/mxn"], subs_per_process, count * publishers, 256, r, out)
            for r in sub_ready]
    for r in sub_ready:
        assert r.wait(TIMEOUT)
    pub_ready = [ctx.Event() for _ in range(publishers)]
    finish = ctx.Event()
    pubs = [_start(workers.publisher, "/mxn", i, count, 64 + 1000 * i, 256, total_subs, r, start, out,
                   exit_event=finish) for i, r in enumerate(pub_ready)]
    for r in pub_ready:
        assert r.wait(TIMEOUT)
    start.set()
    results = [out.get(timeout=TIMEOUT) for _ in range(publishers + subscriber_processes)]
    finish.set()
    _join_all(pubs + subs)
    received = [r[2] for r in results if r[0] == "received"]
    assert len(received) == subscriber_processes
    for per_process in received:
        for key, messages in per_process.items():
            assert len(messages) == count * publishers, key
            for pid in range(publishers):
                counters = [m[1] for m in messages if m[0] == pid]
                assert counters == list(range(count)), f"{key} publisher {pid}"
            assert all(m[3] for m in messages), "a torn or wrong payload"


def test_many_topics_are_kept_apart(isolated_domain):
    ctx = workers.context()
    topics = [f"/t{i}" for i in range(20)]
    ready, out = ctx.Event(), ctx.Queue()
    child = _start(workers.subscriber, topics, 1, 5, 10, ready, out)
    assert ready.wait(TIMEOUT)
    node = agnoshm.Node("talker")
    pubs = {t: node.create_publisher(agnoshm.Bytes, t, 10) for t in topics}
    for i, t in enumerate(topics):
        workers.wait_until(lambda: pubs[t].get_subscription_count() == 1)
        for k in range(5):
            msg = pubs[t].borrow_loaned_message()
            workers.fill(msg.alloc("data", 100), i, k)
            pubs[t].publish(msg)
    _, _, received = out.get(timeout=TIMEOUT)
    _join_all([child])
    for i, t in enumerate(topics):
        assert [(m[0], m[1]) for m in received[(t, 0)]] == [(i, k) for k in range(5)]


def test_transient_local_late_subscriber_gets_the_last_depth_messages(isolated_domain):
    node = agnoshm.Node("talker")
    qos = agnoshm.QoSProfile(depth=5, durability=agnoshm.DurabilityPolicy.TRANSIENT_LOCAL)
    pub = node.create_publisher(agnoshm.Bytes, "/latched", qos)
    for i in range(12):
        msg = pub.borrow_loaned_message()
        workers.fill(msg.alloc("data", 32), 0, i)
        pub.publish(msg)
    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    child = _start(workers.subscriber, ["/latched"], 1, 5, 5, ready, out, "transient_local")
    _, _, received = out.get(timeout=TIMEOUT)
    _join_all([child])
    assert [m[1] for m in received[("/latched", 0)]] == [7, 8, 9, 10, 11]


def test_volatile_late_subscriber_gets_only_new_messages(isolated_domain):
    node = agnoshm.Node("talker")
    pub = node.create_publisher(agnoshm.Bytes, "/news", 5)
    for i in range(3):
        pub.publish(b"old")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/news", 5)
    assert sub.take() is None
    pub.publish(b"new")
    assert bytes(sub.take().data) == b"new"
    assert sub.take() is None



def test_best_available_durability_is_settled_as_rmw_does(isolated_domain):
    """A BEST_AVAILABLE publisher offers TRANSIENT_LOCAL; a BEST_AVAILABLE subscription is
    TRANSIENT_LOCAL when every publisher of the topic is, else VOLATILE."""
    best = agnoshm.QoSProfile(depth=3, durability=agnoshm.DurabilityPolicy.BEST_AVAILABLE)
    node = agnoshm.Node("n")
    registry = agnoshm.context.get_runtime().registry

    def durability(endpoint):
        port = endpoint._port
        table = registry.publishers if hasattr(port, "loan") else registry.subscriptions
        return table[port.index].durability

    latched = node.create_publisher(agnoshm.Bytes, "/latched", best)
    assert durability(latched) == L.TRANSIENT_LOCAL
    for payload in (b"a", b"b", b"c", b"d"):
        latched.publish(payload)
    late = node.create_polling_subscription(agnoshm.Bytes, "/latched", best)
    assert durability(late) == L.TRANSIENT_LOCAL
    assert [bytes(late.take().data) for _ in range(3)] == [b"b", b"c", b"d"]

    news = node.create_publisher(agnoshm.Bytes, "/news", 3)  # VOLATILE
    node.create_publisher(agnoshm.Bytes, "/news", best)
    news.publish(b"old")
    late = node.create_polling_subscription(agnoshm.Bytes, "/news", best)
    assert durability(late) == L.VOLATILE and late.take() is None

    alone = node.create_polling_subscription(agnoshm.Bytes, "/nobody", best)
    assert durability(alone) == L.VOLATILE



def test_a_polling_subscription_takes_a_backlog_in_batches_oldest_first(isolated_domain):
    """Each registry take walks the publisher's entries back from the newest, so a backlog
    is taken TAKE_BATCH messages per walk, not one (which made a backlog quadratic)."""
    from agnoshm.subscription import TAKE_BATCH

    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/backlog", 200)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/backlog", 200)
    port = sub._port
    walks = []
    take_views = port.take_views
    port.take_views = lambda max_count: walks.append(max_count) or take_views(max_count)
    for i in range(200):
        pub.publish(i.to_bytes(2, "little"))
    received = []
    while (msg := sub.take()) is not None:
        received.append(int.from_bytes(bytes(msg.data), "little"))
    assert received == list(range(200))
    assert walks == [TAKE_BATCH] * -(-200 // TAKE_BATCH)
    pub.publish(b"\x01\x00")  # and a lone new message still comes at once
    assert bytes(sub.take().data) == b"\x01\x00" and sub.take() is None


def test_take_pending_hands_out_only_what_a_take_already_took(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/pending", 10)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/pending", 10)
    for i in range(3):
        pub.publish(bytes([i]))
    assert sub.take_pending() is None  # nothing taken yet, though three wait
    assert bytes(sub.take().data) == b"\x00"  # takes the three, hands out the first
    pub.publish(b"\x03")
    assert [bytes(sub.take_pending().data) for _ in range(2)] == [b"\x01", b"\x02"]
    assert sub.take_pending() is None  # the fourth was published after the take
    assert bytes(sub.take().data) == b"\x03"


def test_a_backlog_taken_while_publishing_goes_on_arrives_once_and_in_order(isolated_domain):
    """The entries one walk found but did not take are kept for the next take, which then
    walks only what was published since."""
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/interleaved", 200)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/interleaved", 200)
    sent = received = 0
    for burst in range(60):
        for _ in range(burst % 7 * 5):
            if sent - received < 200:  # within depth: nothing may be dropped
                pub.publish(sent.to_bytes(4, "little"))
                sent += 1
        for _ in range(burst % 3 * 4):
            msg = sub.take()
            if msg is None:
                break
            assert int.from_bytes(bytes(msg.data), "little") == received
            received += 1
    while (msg := sub.take()) is not None:
        assert int.from_bytes(bytes(msg.data), "little") == received
        received += 1
    assert received == sent > 200


def test_messages_that_fall_out_of_depth_during_a_backlog_are_skipped(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/overrun", 32)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/overrun", 32)
    for i in range(32):
        pub.publish(bytes([i]))
    first = [sub.take().data[0] for _ in range(16)]  # the other 16 were found, not taken
    for i in range(32, 64):  # they fall out of the publisher's depth and are reused
        pub.publish(bytes([i]))
    rest = []
    while (msg := sub.take()) is not None:
        rest.append(msg.data[0])
    assert first == list(range(16))
    assert rest == list(range(32, 64)), "a reused entry was delivered, or one was lost"


def test_a_dropped_message_is_released_by_the_next_take(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/drop", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/drop", 4)
    pub.publish(b"small")
    msg = sub.take()
    record = sub._port.record
    assert record.held == 1
    del msg  # small messages' releases are batched ...
    assert sub.take() is None
    assert record.held == 0  # ... and written with the next take


def test_a_dropped_message_is_released_before_the_executor_sleeps(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/drop", 4)
    got = []
    sub = node.create_subscription(agnoshm.Bytes, "/drop", lambda m: got.append(len(m.data)), 4)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    pub.publish(b"small")
    executor.spin_once(timeout_sec=TIMEOUT)
    assert got == [5]
    executor.spin_once(timeout_sec=0.01)  # nothing to do: it sleeps, and releases first
    assert sub._port.record.held == 0
    executor.shutdown()


def test_a_dropped_message_is_released_at_once(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/drop", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/drop", 4)
    pub.publish(b"small")
    msg = sub.take()
    data = msg.data
    assert sub._port.record.held == 1
    del msg
    assert sub._port.record.held == 1, "the array keeps the message"
    del data
    assert sub._port.record.held == 0


def test_a_message_dropped_inside_a_take_is_released(isolated_domain):
    """As when the cyclic GC drops a message in the middle of a take in the same
    thread: the release re-enters the port's lock instead of deadlocking."""
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/gc", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/gc", 4)
    pub.publish(b"x")
    msg = sub.take()
    port = sub._port
    with port._lock:
        del msg
        assert port.record.held == 0


def test_held_view_keeps_its_bytes_while_1000_more_messages_are_published(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/held", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/held", 4)
    msg = pub.borrow_loaned_message()
    msg.alloc("data", 4096)[:] = 0xAB
    pub.publish(msg)
    held = sub.take()
    array = held.data[100:200]  # a derived array must keep the message too
    del held
    for i in range(1000):
        m = pub.borrow_loaned_message()
        m.alloc("data", 4096)[:] = i & 0xFF
        pub.publish(m)
        assert sub.take() is not None
    assert (array == 0xAB).all()
    del array
    pub._port.reclaim()
    assert pub._port.held_count() == 0


def test_a_cross_process_held_view_keeps_its_bytes(isolated_domain):
    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    node = agnoshm.Node("talker")
    pub = node.create_publisher(agnoshm.Bytes, "/hold", 4)
    child = _start(workers.hold_received_then_wait, "/hold", 3, ready, out)
    assert ready.wait(TIMEOUT)
    workers.wait_until(lambda: pub.get_subscription_count() == 1)
    for i in range(3):
        pub.publish(bytes([i]) * 64)
    assert out.get(timeout=TIMEOUT)[0] == "holding"
    for i in range(1000):
        pub.publish(b"x" * 64)
    assert pub._port.held_count() == 3
    child.kill()
    child.join(TIMEOUT)
    workers.wait_until(lambda: agnoshm.context.get_runtime().registry.check_consistency() == []
                       and (pub._port.reclaim() or pub._port.held_count() == 0),
                       what="the dead holder to be reaped")


def test_a_message_whose_publisher_is_gone_before_its_pool_is_mapped_is_dropped(
        isolated_domain):
    """take() found and held it, but the publisher's pool cannot be mapped any more (its
    process left): the hold is taken back and nothing is delivered, with no error."""
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/gone", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/gone", 4)
    pub.publish(b"x")
    port = sub._port
    assert port.has_data()
    port.take(0)  # reads the channels (none taken: max_count 0 keeps the message new)
    port._channels[0].incarnation += 1  # as if its slot now belonged to another process
    # and the topic moved, as it does when a publisher leaves (the native reader resolves a
    # channel's pool once per refresh of the channels, and again once its mapping retires)
    port._generation = -1
    assert sub.take() is None
    assert port.held == 0 and port.record.held == 0
    node.destroy_node()


def test_a_volatile_subscription_gets_what_was_published_once_it_was_listed(isolated_domain):
    """Where a VOLATILE subscription starts is read under the lock that lists it: a message
    published after that (when get_subscription_count() already counts it) but before its
    port exists is delivered; one published before is not."""
    from agnoshm.registry import layout as L
    from agnoshm.transport.receive import SubscriberPort

    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/race", 4)
    pub.publish(b"before")
    runtime = agnoshm.context.get_runtime()
    bytes_type = pub.msg_type
    starts = {}
    index, topic = runtime.registry.add_subscription(
        "/race", bytes_type.type_name, bytes_type.type_hash, 4, L.VOLATILE, "/n", starts)
    assert pub.get_subscription_count() == 1
    pub.publish(b"after listing")
    port = SubscriberPort(runtime, index, topic, 4, starts=starts)
    leases = port.take(4)
    assert [lease.seq for lease in leases] == [2], "only the message published once listed"
    del leases
    port.destroy()
    node.destroy_node()
