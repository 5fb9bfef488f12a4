"""Callback groups: the rules themselves, and the multi-threaded executor honouring them.

Exclusivity is checked with a counter under a lock (never two callbacks of a
mutually exclusive group inside at once); concurrency is proven with barriers
that two callbacks must reach together.
"""

from __future__ import annotations

import gc
import threading
import time

import pytest

import agnoshm
from agnoshm.callback_groups import (
    CallbackGroup,
    MutuallyExclusiveCallbackGroup,
    ReentrantCallbackGroup,
)
from agnoshm.executor import MultiThreadedExecutor, SingleThreadedExecutor
from executor_workers import publish
from workers import TIMEOUT, read_header


class Entity:
    """Stands in for a subscription or timer."""


@pytest.fixture
def multithreaded(isolated_domain):
    sut = MultiThreadedExecutor(num_threads=4)
    yield sut
    sut.shutdown(TIMEOUT)


# --- the rules ------------------------------------------------------------------------------

def test_a_mutually_exclusive_group_admits_one_entity_at_a_time():
    sut = MutuallyExclusiveCallbackGroup()
    a, b = Entity(), Entity()
    sut.add_entity(a)
    sut.add_entity(b)
    assert sut.can_execute(a) and sut.can_execute(b)
    assert sut.beginning_execution(a) is True
    assert not sut.can_execute(b) and not sut.can_execute(a)
    assert sut.beginning_execution(b) is False
    assert sut.beginning_execution(a) is False  # not even the same entity again
    sut.ending_execution(a)
    assert sut.can_execute(b) and sut.beginning_execution(b) is True
    sut.ending_execution(b)


def test_ending_an_execution_the_group_did_not_begin_raises():
    sut = MutuallyExclusiveCallbackGroup()
    a, b = Entity(), Entity()
    assert sut.beginning_execution(a)
    with pytest.raises(RuntimeError, match="did not start"):
        sut.ending_execution(b)
    sut.ending_execution(a)
    with pytest.raises(RuntimeError):
        sut.ending_execution(a)


def test_a_mutually_exclusive_group_may_be_released_by_another_thread():
    sut = MutuallyExclusiveCallbackGroup()
    a = Entity()
    assert sut.beginning_execution(a)
    worker = threading.Thread(target=sut.ending_execution, args=(a,))
    worker.start()
    worker.join(TIMEOUT)
    assert sut.can_execute(a)


def test_a_reentrant_group_always_admits():
    sut = ReentrantCallbackGroup()
    a = Entity()
    sut.add_entity(a)
    assert all(sut.beginning_execution(a) for _ in range(3))
    assert sut.can_execute(a)
    for _ in range(3):
        sut.ending_execution(a)


def test_a_group_holds_its_entities_weakly():
    sut = ReentrantCallbackGroup()
    a, b = Entity(), Entity()
    sut.add_entity(a)
    assert sut.has_entity(a) and not sut.has_entity(b)
    del a
    gc.collect()
    assert len(sut.entities) == 0


def test_the_base_group_leaves_the_rules_to_subclasses():
    sut = CallbackGroup()
    with pytest.raises(NotImplementedError):
        sut.can_execute(Entity())


def test_entities_join_the_group_they_are_created_in(isolated_domain):
    node = agnoshm.Node("n")
    group = ReentrantCallbackGroup()
    sub = node.create_subscription(agnoshm.Bytes, "/g", lambda m: None, 1, callback_group=group)
    timer = node.create_timer(1.0, lambda: None, callback_group=group)
    assert sub.callback_group is group and timer.callback_group is group
    assert group.has_entity(sub) and group.has_entity(timer)
    assert not node.default_callback_group.has_entity(sub)


# --- the multi-threaded executor honours them -----------------------------------------------------

class Overlap:
    """Counts callbacks inside at once; a callback lingers, yielding the GIL, to invite overlap."""

    def __init__(self):
        self.lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.calls = []

    def callback(self, name):
        def run(msg=None):
            with self.lock:
                self.inside += 1
                self.most = max(self.most, self.inside)
            for _ in range(20):
                time.sleep(0)  # let other workers run, if the executor lets them
            with self.lock:
                self.inside -= 1
                self.calls.append((name, None if msg is None else read_header(msg.data)[1]))
        return run


@pytest.mark.parametrize("group_kind", ["default", "explicit"])
def test_a_mutually_exclusive_group_never_runs_two_callbacks_at_once(multithreaded, group_kind):
    node = agnoshm.Node("n")
    group = None if group_kind == "default" else MutuallyExclusiveCallbackGroup()
    overlap = Overlap()
    topics = [f"/excl{k}" for k in range(3)]
    pubs = [node.create_publisher(agnoshm.Bytes, t, 64) for t in topics]
    for t in topics:
        node.create_subscription(agnoshm.Bytes, t, overlap.callback(t), 64, callback_group=group)
    ticks = []
    tick = overlap.callback("timer")
    node.create_timer(0.001, lambda: (tick(), ticks.append(1)), callback_group=group)
    multithreaded.add_node(node)
    for i in range(30):
        for k, pub in enumerate(pubs):
            publish(pub, k, i)
    done = lambda: sum(1 for name, _ in overlap.calls if name != "timer") == 90 and len(ticks) >= 3
    assert multithreaded.spin_until(done, TIMEOUT)
    assert overlap.most == 1
    for t in topics:  # one at a time also means in order
        assert [c for name, c in overlap.calls if name == t] == list(range(30))


def _meet(barrier, met):
    def run(msg=None):
        try:
            barrier.wait(TIMEOUT)
            met.append(True)
        except threading.BrokenBarrierError:
            met.append(False)
    return run


def test_a_reentrant_group_runs_two_callbacks_at_once(multithreaded):
    node = agnoshm.Node("n")
    group = ReentrantCallbackGroup()
    barrier, met = threading.Barrier(2), []
    pubs = [node.create_publisher(agnoshm.Bytes, f"/re{k}", 4) for k in range(2)]
    for k in range(2):
        node.create_subscription(agnoshm.Bytes, f"/re{k}", _meet(barrier, met), 4,
                                 callback_group=group)
    multithreaded.add_node(node)
    for k, pub in enumerate(pubs):
        publish(pub, k, 0)
    assert multithreaded.spin_until(lambda: len(met) == 2, TIMEOUT)
    assert met == [True, True], "the two callbacks never ran at the same time"


def test_a_reentrant_group_runs_one_subscription_on_two_threads_at_once(multithreaded):
    node = agnoshm.Node("n")
    barrier, met = threading.Barrier(2), []
    pub = node.create_publisher(agnoshm.Bytes, "/same", 4)
    node.create_subscription(agnoshm.Bytes, "/same", _meet(barrier, met), 4,
                             callback_group=ReentrantCallbackGroup())
    multithreaded.add_node(node)
    publish(pub, 0, 0)
    publish(pub, 0, 1)
    assert multithreaded.spin_until(lambda: len(met) == 2, TIMEOUT)
    assert met == [True, True]


def test_a_reentrant_timer_and_subscription_run_at_once(multithreaded):
    node = agnoshm.Node("n")
    group = ReentrantCallbackGroup()
    barrier, met = threading.Barrier(2), []
    pub = node.create_publisher(agnoshm.Bytes, "/with_timer", 4)
    node.create_subscription(agnoshm.Bytes, "/with_timer", _meet(barrier, met), 4,
                             callback_group=group)
    meet, tokens = _meet(barrier, met), [None]

    def on_timer():
        try:
            tokens.pop()  # atomic: only the first tick meets the subscription
        except IndexError:
            return
        timer.cancel()
        meet()

    timer = node.create_timer(0.001, on_timer, callback_group=group)
    multithreaded.add_node(node)
    publish(pub, 0, 0)
    assert multithreaded.spin_until(lambda: len(met) == 2, TIMEOUT)
    assert met == [True, True]


def test_two_mutually_exclusive_groups_run_in_parallel_with_each_other(multithreaded):
    node = agnoshm.Node("n")
    barrier, met = threading.Barrier(2), []
    pubs = [node.create_publisher(agnoshm.Bytes, f"/pair{k}", 4) for k in range(2)]
    for k in range(2):
        node.create_subscription(agnoshm.Bytes, f"/pair{k}", _meet(barrier, met), 4,
                                 callback_group=MutuallyExclusiveCallbackGroup())
    multithreaded.add_node(node)
    for k, pub in enumerate(pubs):
        publish(pub, k, 0)
    assert multithreaded.spin_until(lambda: len(met) == 2, TIMEOUT)
    assert met == [True, True]


def test_the_single_threaded_executor_honours_a_busy_group(isolated_domain):
    """A group claimed elsewhere (here by hand) keeps its callbacks from starting."""
    sut = SingleThreadedExecutor()
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/held", 4)
    group = MutuallyExclusiveCallbackGroup()
    received = []
    sub = node.create_subscription(agnoshm.Bytes, "/held", received.append, 4,
                                   callback_group=group)
    sut.add_node(node)
    publish(pub, 0, 0)
    assert group.beginning_execution(sub)
    sut.spin_once(0)
    assert received == []
    group.ending_execution(sub)
    sut.spin_once(TIMEOUT)
    assert len(received) == 1
    sut.shutdown(TIMEOUT)
