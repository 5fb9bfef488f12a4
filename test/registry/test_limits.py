"""Scale on a stock Linux (DESIGN.md invariant 5) and clear capacity errors (invariant 6).

The machine's message-queue limits are checked, never changed: with the defaults
(``fs.mqueue.msg_max = 10``, ``queues_max = 256``, ``RLIMIT_MSGQUEUE = 800 KiB``)
100 subscribing processes and 2000 subscriptions must work.
"""

from __future__ import annotations

import gc
import os
import resource
import select
import subprocess
import sys
import time

import pytest

import agnoshm
import fault_workers
import workers
from agnoshm.registry import layout as L
from sources import child_cwd, child_env
from workers import TIMEOUT

TEST_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINUX_DEFAULTS = {"msg_max": 10, "queues_max": 256}
RLIMIT_MSGQUEUE_DEFAULT = 819200


def _start(target, *args, **kwargs):
    process = workers.context().Process(target=target, args=args, kwargs=kwargs)
    process.start()
    return process


def _join_all(processes):
    for p in processes:
        p.join(TIMEOUT)
        assert p.exitcode == 0, f"{p.name} exited with {p.exitcode}"


def _registry():
    return agnoshm.context.get_runtime().registry


@pytest.fixture(scope="module", autouse=True)
def linux_default_limits():
    """These tests prove agnoshm works with Linux's default limits, so they must be the defaults."""
    for name, default in LINUX_DEFAULTS.items():
        with open(f"/proc/sys/fs/mqueue/{name}") as f:
            value = int(f.read())
        assert value == default, (
            f"fs.mqueue.{name} is {value}, not Linux's default {default}: these tests must run "
            "with default limits (agnoshm needs no sysctl change), so use a machine that has them")
    soft, _hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    assert soft == RLIMIT_MSGQUEUE_DEFAULT, (
        f"RLIMIT_MSGQUEUE is {soft}, not the default {RLIMIT_MSGQUEUE_DEFAULT}: run with default "
        "limits (ulimit -q)")


# -- scale -------------------------------------------------------------------------------------


class _LightSubscriber:
    """A ``python -c`` child that imports agnoshm only (see fault_workers.light_subscriber_main)."""

    def __init__(self, topic: str):
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import fault_workers; fault_workers.light_subscriber_main()",
             topic], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=child_env(TEST_DIR),
            cwd=child_cwd(), bufsize=0)
        self._buffer = b""

    def readline(self, timeout: float = TIMEOUT) -> list[str]:
        """The next line it prints, split; a watchdog, not a timer."""
        deadline = time.monotonic() + timeout
        stdout = self.process.stdout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"subscriber {self.process.pid} printed nothing")
            if select.select([stdout], [], [], left)[0]:
                chunk = os.read(stdout.fileno(), 4096)
                if not chunk:
                    raise EOFError(f"subscriber {self.process.pid} exited with "
                                   f"{self.process.wait(TIMEOUT)}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode().split()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(TIMEOUT)
        self.process.stdout.close()


@pytest.mark.long  # two minutes on a loaded 2-core machine
def test_100_processes_subscribe_to_one_publisher(isolated_domain):
    """100 subscriber processes on one topic, one publisher: its announcement reaches
    100 queues of the default depth, and one publish() rings 100 doorbells."""
    processes, batch = 100, 10
    topic = "/fanout"
    node = agnoshm.Node("fanout")
    registry = _registry()
    subscribers: list[_LightSubscriber] = []
    try:
        for first in range(0, processes, batch):  # a batch at a time: 2 cores must cope
            started = [_LightSubscriber(topic) for _ in range(first, first + batch)]
            subscribers += started
            for s in started:
                assert s.readline() == ["ready", str(s.process.pid)]
        assert len(registry.live_slots()) == processes + 1
        pub = node.create_publisher(agnoshm.Bytes, topic, 1)  # last: announced to all 100
        assert pub.get_subscription_count() == processes
        pub.publish(b"to all of them")
        for s in subscribers:
            assert s.readline() == ["got", str(s.process.pid), b"to all of them".hex()]
        for s in subscribers:
            assert s.process.wait(TIMEOUT) == 0
    finally:
        for s in subscribers:
            s.close()
    workers.wait_until(lambda: registry.live_slots() == [registry.own_slot],
                       what="the subscribers to leave")
    assert registry.check_consistency() == []
    node.destroy_node()


def test_2000_subscriptions_all_receive(isolated_domain):
    processes, topics_n, per_topic, count = 4, 50, 10, 3  # 4 x 50 x 10 = 2000, 40 per topic
    topics = [f"/many/t{i}" for i in range(topics_n)]
    ctx = workers.context()
    out, done = ctx.Queue(), ctx.Event()
    ready = [ctx.Event() for _ in range(processes)]
    children = [_start(workers.subscriber, topics, per_topic, count, 8, r, out, done=done)
                for r in ready]
    for r in ready:
        assert r.wait(TIMEOUT)
    node = agnoshm.Node("many")
    registry = _registry()
    used = sum(1 for s in registry.subscriptions if s.state == L.USED)
    assert used == processes * topics_n * per_topic
    pubs = [node.create_publisher(agnoshm.Bytes, t, 8) for t in topics]
    for pub in pubs:
        assert pub.get_subscription_count() == processes * per_topic
    for i, pub in enumerate(pubs):
        for k in range(count):
            msg = pub.borrow_loaned_message()
            workers.fill(msg.alloc("data", 64), i, k)
            pub.publish(msg)
    results = [out.get(timeout=TIMEOUT) for _ in children]
    done.set()
    _join_all(children)
    assert sorted(r[1] for r in results) == sorted(c.pid for c in children)
    for _kind, _pid, received in results:
        assert len(received) == topics_n * per_topic
        for (topic, _k), messages in received.items():
            i = topics.index(topic)
            assert [(m[0], m[1], m[3]) for m in messages] == [(i, k, True) for k in range(count)]
    assert registry.check_consistency() == []
    node.destroy_node()


# -- capacity errors ---------------------------------------------------------------------------


def test_one_topic_takes_256_subscriptions_and_64_publishers_and_refuses_more(isolated_domain):
    node = agnoshm.Node("crowd")
    registry = _registry()
    header = registry.header
    assert (header.max_subscriptions_per_topic, header.max_publishers_per_topic) == (256, 64)
    subs = [node.create_polling_subscription(agnoshm.Bytes, "/crowded", 4) for _ in range(256)]
    with pytest.raises(agnoshm.LimitReachedError) as info:
        node.create_polling_subscription(agnoshm.Bytes, "/crowded", 4)
    message = str(info.value)
    assert "/crowded" in message and "256 subscriptions" in message
    assert "spread them over more topics" in message
    assert "max_subscriptions_per_topic (AGNOSHM_MAX_SUBSCRIPTIONS_PER_TOPIC)" in message
    pubs = [node.create_publisher(agnoshm.Bytes, "/crowded", 4) for _ in range(64)]
    with pytest.raises(agnoshm.LimitReachedError, match="64 publishers.*spread them over more"
                       ".*AGNOSHM_MAX_PUBLISHERS_PER_TOPIC"):
        node.create_publisher(agnoshm.Bytes, "/crowded", 4)
    assert registry.check_consistency() == []
    topic = registry.topics[registry.find_topic("/crowded")]
    assert (topic.n_subscriptions, topic.n_publishers) == (256, 64)
    assert sum(1 for s in registry.subscriptions if s.state != L.FREE) == 256
    assert sum(1 for p in registry.publishers if p.state != L.FREE) == 64
    pubs[-1].publish(b"still works")  # all of them intact
    received = [s.take() for s in subs]
    assert _holders(registry, pubs[-1]._port) == 256  # every position of the receipts
    assert all(bytes(m.data) == b"still works" for m in received)
    assert registry.check_consistency() == []
    del received
    gc.collect()
    assert _holders(registry, pubs[-1]._port) == 0
    node.destroy_node()


def test_a_registry_with_two_topics_refuses_the_third(isolated_domain, monkeypatch):
    monkeypatch.setenv("AGNOSHM_MAX_TOPICS", "2")
    node = agnoshm.Node("small")
    registry = _registry()
    assert registry.header.max_topics == 2
    pub_a = node.create_publisher(agnoshm.Bytes, "/a", 4)
    sub_b = node.create_polling_subscription(agnoshm.Bytes, "/b", 4)
    for create in (lambda: node.create_publisher(agnoshm.Bytes, "/c", 4),
                   lambda: node.create_polling_subscription(agnoshm.Bytes, "/c", 4)):
        with pytest.raises(agnoshm.LimitReachedError) as info:
            create()
        message = str(info.value)
        assert "2 topics" in message and "AGNOSHM_MAX_TOPICS" in message
    assert registry.find_topic("/c") == -1
    assert registry.check_consistency() == []
    # the existing topics work; a freed topic makes room
    pub_b = node.create_publisher(agnoshm.Bytes, "/b", 4)
    pub_b.publish(b"b")
    assert bytes(sub_b.take().data) == b"b"
    node.destroy_publisher(pub_a)
    assert registry.find_topic("/a") == -1
    pub_c = node.create_publisher(agnoshm.Bytes, "/c", 4)
    assert registry.find_topic("/c") >= 0 and pub_c.get_subscription_count() == 0
    assert registry.check_consistency() == []
    node.destroy_node()


def test_a_topic_emptied_by_a_drained_subscription_is_given_back(isolated_domain, monkeypatch):
    """A subscription destroyed while a view holds a message drains; its last release
    leaves the topic without endpoints, and the topic's slot must become usable again."""
    monkeypatch.setenv("AGNOSHM_MAX_TOPICS", "2")
    node = agnoshm.Node("drain")
    registry = _registry()
    sub = node.create_polling_subscription(agnoshm.Bytes, "/drained", 4)
    pub = node.create_publisher(agnoshm.Bytes, "/drained", 4)
    pub.publish(b"kept")
    held = sub.take()
    node.destroy_subscription(sub)  # drains: the view still holds a message
    node.destroy_publisher(pub)
    assert bytes(held.data) == b"kept"
    del held  # the last release unlists the subscription
    pubs = [node.create_publisher(agnoshm.Bytes, t, 4) for t in ("/e", "/f")]
    assert registry.find_topic("/drained") == -1
    assert [p.get_subscription_count() for p in pubs] == [0, 0]
    assert registry.check_consistency() == []
    node.destroy_node()


@pytest.mark.parametrize("kind", ["publishers", "subscriptions"])
def test_a_registry_with_few_endpoints_refuses_one_more(isolated_domain, monkeypatch, kind):
    monkeypatch.setenv(f"AGNOSHM_MAX_{kind.upper()}", "2")
    node = agnoshm.Node("small")
    registry = _registry()

    def create(topic):
        if kind == "publishers":
            return node.create_publisher(agnoshm.Bytes, topic, 4)
        return node.create_polling_subscription(agnoshm.Bytes, topic, 4)

    create("/one")
    create("/one")
    for topic in ("/one", "/two"):  # an existing topic and one that would be new
        with pytest.raises(agnoshm.LimitReachedError) as info:
            create(topic)
        message = str(info.value)
        assert f"2 {kind}" in message and f"AGNOSHM_MAX_{kind.upper()}" in message
    assert registry.find_topic("/two") == -1, "a refused endpoint left its topic behind"
    assert registry.check_consistency() == []
    assert sum(1 for t in registry.topics if t.state != L.FREE) == 1
    node.destroy_node()


def test_a_registry_with_two_process_slots_refuses_the_third_process(isolated_domain, monkeypatch):
    monkeypatch.setenv("AGNOSHM_MAX_PROCESSES", "2")
    node = agnoshm.Node("first")
    registry = _registry()
    ctx = workers.context()
    ready, out, finish = ctx.Event(), ctx.Queue(), ctx.Event()
    second = _start(fault_workers.join_and_wait, ready, out, finish)
    assert out.get(timeout=TIMEOUT)[:2] == ("joined", second.pid)
    third_out = ctx.Queue()
    third = _start(fault_workers.try_to_join, third_out)
    kind, error, message = third_out.get(timeout=TIMEOUT)
    _join_all([third])
    assert (kind, error) == ("error", "LimitReachedError")
    assert "2 process slots" in message and "AGNOSHM_MAX_PROCESSES" in message
    assert registry.check_consistency() == []
    # a slot freed by a kill -9 is reclaimed for the next process
    os.kill(second.pid, 9)
    second.join(TIMEOUT)
    fourth = _start(fault_workers.try_to_join, third_out)
    kind, slot = third_out.get(timeout=TIMEOUT)
    _join_all([fourth])
    assert kind == "joined" and slot != registry.own_slot
    assert registry.check_consistency() == []
    node.destroy_node()


def _holders(registry, port) -> int:
    """Subscriptions whose receipts hold ``port``'s newest message."""
    channel = registry.channel(port.index)
    entry = next(i for i, e in enumerate(channel.entries) if e.seq == channel.start.head)
    at = port.position * registry.header.max_entries + entry
    return sum(1 for s in registry.subscription_indices(port.topic_index)
               if registry.receipts(s).holds[at])


def test_per_topic_capacities_come_from_the_registry_creators_config(isolated_domain, monkeypatch):
    monkeypatch.setenv("AGNOSHM_MAX_PUBLISHERS_PER_TOPIC", "3")
    monkeypatch.setenv("AGNOSHM_MAX_SUBSCRIPTIONS_PER_TOPIC", "300")  # refs: five words
    node = agnoshm.Node("wide")
    registry = _registry()
    assert (registry.header.max_publishers_per_topic,
            registry.header.max_subscriptions_per_topic) == (3, 300)
    subs = [node.create_polling_subscription(agnoshm.Bytes, "/wide", 4) for _ in range(300)]
    with pytest.raises(agnoshm.LimitReachedError, match="300 subscriptions.*AGNOSHM_MAX_SUBSCRIP"):
        node.create_polling_subscription(agnoshm.Bytes, "/wide", 4)
    pubs = [node.create_publisher(agnoshm.Bytes, "/wide", 4) for _ in range(3)]
    with pytest.raises(agnoshm.LimitReachedError, match="3 publishers.*AGNOSHM_MAX_PUBLISHERS_PER"):
        node.create_publisher(agnoshm.Bytes, "/wide", 4)
    pubs[0].publish(b"to all 300")
    received = [s.take() for s in subs]
    assert all(bytes(m.data) == b"to all 300" for m in received)
    assert _holders(registry, pubs[0]._port) == 300
    del received
    gc.collect()
    assert _holders(registry, pubs[0]._port) == 0

    # A process configured otherwise joins with the registry's capacities: it gets the
    # freed last position, 299, and receives.
    last = subs.pop()
    assert last._port.record.bit == 299
    node.destroy_subscription(last)
    monkeypatch.setenv("AGNOSHM_MAX_PUBLISHERS_PER_TOPIC", "1")
    monkeypatch.setenv("AGNOSHM_MAX_SUBSCRIPTIONS_PER_TOPIC", "8")
    ctx = workers.context()
    ready, out, done = ctx.Event(), ctx.Queue(), ctx.Event()
    child = _start(workers.subscriber, ["/wide"], 1, 2, 4, ready, out, done=done)
    assert ready.wait(TIMEOUT)
    theirs = [r for r in registry.subscriptions if r.state == L.USED and r.process != registry.own_slot]
    assert [r.bit for r in theirs] == [299]
    for pub_id, pub in enumerate(pubs[1:]):
        msg = pub.borrow_loaned_message()
        workers.fill(msg.alloc("data", 64), pub_id, 0)
        pub.publish(msg)
    _kind, _pid, got = out.get(timeout=TIMEOUT)
    done.set()
    _join_all([child])
    assert sorted(m[:2] for m in got[("/wide", 0)]) == [(0, 0), (1, 0)]
    assert registry.check_consistency() == []
    node.destroy_node()

