"""Executors: spinning, order, timers, tasks and futures, failures, shutdown, other processes.

Tests synchronize on events, queues and executor predicates; timeouts are
deadlock watchdogs only.  Threads that spin are joined before the test ends.
"""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import os
import threading
import time
import weakref

import pytest

import agnoshm
import workers
from agnoshm.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from agnoshm.executor import (
    TAKE_BATCH,
    Future,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
    get_global_executor,
    spin,
    spin_once,
    spin_until_future_complete,
)
from executor_workers import publish, start_publisher, stop_publishers
from workers import TIMEOUT, read_header

EXECUTORS = [SingleThreadedExecutor, MultiThreadedExecutor]


@pytest.fixture
def make_executor(isolated_domain):
    """Build executors that are shut down (threads joined) before agnoshm is."""
    made = []

    def make(cls=SingleThreadedExecutor, *args, **kwargs):
        executor = cls(*args, **kwargs)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.shutdown(TIMEOUT)


class Background:
    """Runs ``target`` in a thread and re-raises what it raised on :meth:`join`."""

    def __init__(self, target, *args):
        self.error = None
        self.result = None
        self._thread = threading.Thread(target=self._run, args=(target, args), daemon=True)
        self._thread.start()

    def _run(self, target, args):
        try:
            self.result = target(*args)
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def join(self):
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "the spinning thread did not return"
        if self.error is not None:
            raise self.error
        return self.result


# --- order and fairness --------------------------------------------------------------------

@pytest.mark.parametrize("cls", EXECUTORS)
def test_messages_reach_the_callback_in_publish_order(make_executor, cls):
    sut = make_executor(cls)
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/order", 100)
    received = []
    node.create_subscription(agnoshm.Bytes, "/order", lambda m: received.append(read_header(m.data)),
                             100)
    sut.add_node(node)
    count = 3 * TAKE_BATCH + 5  # several batches and a partial one
    for i in range(count):
        publish(pub, 0, i)
    assert sut.spin_until(lambda: len(received) == count, TIMEOUT)
    assert received == [(0, i) for i in range(count)]


def test_spin_once_runs_one_callback(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/one", 10)
    received = []
    node.create_subscription(agnoshm.Bytes, "/one", lambda m: received.append(read_header(m.data)), 10)
    sut.add_node(node)
    for i in range(3):
        publish(pub, 0, i)
    sut.spin_once(TIMEOUT)
    assert received == [(0, 0)]
    sut.spin_once(TIMEOUT)
    assert received == [(0, 0), (0, 1)]


def test_ready_subscriptions_take_turns(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    pubs = [node.create_publisher(agnoshm.Bytes, f"/turn{k}", 10) for k in range(2)]
    received = []
    for k in range(2):
        node.create_subscription(agnoshm.Bytes, f"/turn{k}",
                                 lambda m, k=k: received.append((k, read_header(m.data)[1])), 10)
    sut.add_node(node)
    for i in range(5):
        for k, pub in enumerate(pubs):
            publish(pub, k, i)
    assert sut.spin_until(lambda: len(received) == 10, TIMEOUT)
    assert received == [(k, i) for i in range(5) for k in range(2)]


def test_polling_subscriptions_are_left_to_take(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/poll", 10)
    poll = node.create_polling_subscription(agnoshm.Bytes, "/poll", 10)
    sut.add_node(node)
    publish(pub, 0, 7)
    sut.spin_once(0)
    assert read_header(poll.take().data) == (0, 7)


def test_take_after_the_executor_took_a_batch_continues_in_order(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/mixed", 50)
    received = []
    sub = node.create_subscription(agnoshm.Bytes, "/mixed",
                                   lambda m: received.append(read_header(m.data)[1]), 50)
    sut.add_node(node)
    for i in range(20):
        publish(pub, 0, i)
    sut.spin_once(TIMEOUT)  # takes a batch, delivers the first message
    assert received == [0]
    assert [read_header(sub.take().data)[1] for _ in range(19)] == list(range(1, 20))
    assert sub.take() is None


# --- timers and timeouts ---------------------------------------------------------------------

@pytest.mark.parametrize("cls", EXECUTORS)
def test_a_timer_fires_while_spinning(make_executor, cls):
    sut = make_executor(cls)
    node = agnoshm.Node("n")
    ticks = []
    timer = node.create_timer(0.001, lambda: ticks.append(threading.get_ident()))
    sut.add_node(node)
    assert sut.spin_until(lambda: len(ticks) >= 3, TIMEOUT)
    timer.cancel()
    assert timer.time_until_next_call() is None


def test_a_canceled_timer_does_not_fire(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    ticks = []
    timer = node.create_timer(0.001, lambda: ticks.append(1))
    timer.cancel()
    sut.add_node(node)
    sut.spin_once(0)
    assert ticks == []


@pytest.mark.parametrize("cls", EXECUTORS)
def test_spin_once_returns_when_its_timeout_passes_without_work(make_executor, cls):
    sut = make_executor(cls)
    node = agnoshm.Node("n")
    called = []
    node.create_subscription(agnoshm.Bytes, "/quiet", called.append, 10)
    sut.add_node(node)
    sut.spin_once(timeout_sec=0)
    sut.spin_once(timeout_sec=0.01)
    assert called == []


def test_spin_until_returns_false_when_its_timeout_passes(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    sut.add_node(node)
    assert sut.spin_until(lambda: False, timeout_sec=0.01) is False


# --- failures ------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", EXECUTORS)
def test_a_raising_callback_is_logged_with_its_topic_and_the_others_are_served(
        make_executor, cls, caplog):
    sut = make_executor(cls)
    node = agnoshm.Node("n")
    bad = node.create_publisher(agnoshm.Bytes, "/bad_topic", 10)
    good = node.create_publisher(agnoshm.Bytes, "/good_topic", 10)
    received = []

    def explode(msg):
        raise ValueError("kaboom")

    node.create_subscription(agnoshm.Bytes, "/bad_topic", explode, 10)
    node.create_subscription(agnoshm.Bytes, "/good_topic",
                             lambda m: received.append(read_header(m.data)[1]), 10)
    sut.add_node(node)
    with caplog.at_level(logging.ERROR, logger="agnoshm.executor"):
        for i in range(3):
            publish(bad, 0, i)
            publish(good, 0, i)
        assert sut.spin_until(lambda: len(received) == 3 and len(caplog.records) >= 3, TIMEOUT)
    assert received == [0, 1, 2]
    failures = [r for r in caplog.records if r.name == "agnoshm.executor"]
    assert len(failures) == 3
    for record in failures:
        assert "/bad_topic" in record.getMessage() and "kaboom" in record.getMessage()
        assert record.exc_info[0] is ValueError


def test_a_raising_timer_is_logged_and_spinning_carries_on(make_executor, caplog):
    sut = make_executor()
    node = agnoshm.Node("n")
    ticks = []

    def tick():
        ticks.append(1)
        if len(ticks) == 1:
            raise RuntimeError("first tick fails")

    node.create_timer(0.001, tick)
    sut.add_node(node)
    with caplog.at_level(logging.ERROR, logger="agnoshm.executor"):
        assert sut.spin_until(lambda: len(ticks) >= 3, TIMEOUT)
    assert any("timer" in r.getMessage() and "first tick fails" in r.getMessage()
               for r in caplog.records)


# --- shutdown and destruction while spinning ----------------------------------------------------

@pytest.mark.parametrize("cls", EXECUTORS)
def test_shutdown_wakes_a_spin_blocked_in_another_thread(make_executor, cls):
    sut = make_executor(cls)
    node = agnoshm.Node("n")
    node.create_subscription(agnoshm.Bytes, "/idle", lambda m: None, 10)
    sut.add_node(node)
    spinner = Background(sut.spin)
    workers.wait_until(lambda: sut._spin_owner is not None, what="the spin to start")
    assert sut.shutdown(TIMEOUT) is True
    spinner.join()
    assert sut.get_nodes() == []


def test_shutdown_waits_for_the_running_callback(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/slow", 10)
    entered, release, finished = threading.Event(), threading.Event(), []

    def slow(msg):
        entered.set()
        assert release.wait(TIMEOUT)
        finished.append(True)

    node.create_subscription(agnoshm.Bytes, "/slow", slow, 10)
    sut.add_node(node)
    spinner = Background(sut.spin)
    publish(pub, 0, 0)
    assert entered.wait(TIMEOUT)
    assert sut.shutdown(timeout_sec=0) is False  # the callback still runs
    release.set()
    assert sut.shutdown(TIMEOUT) is True
    assert finished == [True]
    spinner.join()


@pytest.mark.parametrize("cls", EXECUTORS)
def test_destroying_a_node_while_spinning_keeps_the_other_nodes_served(make_executor, cls):
    sut = make_executor(cls)
    doomed, survivor = agnoshm.Node("doomed"), agnoshm.Node("survivor")
    pub = survivor.create_publisher(agnoshm.Bytes, "/alive", 10)
    doomed_pub = doomed.create_publisher(agnoshm.Bytes, "/doomed", 10)
    received, doomed_received, got = [], threading.Event(), threading.Event()
    doomed.create_subscription(agnoshm.Bytes, "/doomed", lambda m: doomed_received.set(), 10)

    def alive(msg):
        received.append(read_header(msg.data)[1])
        got.set()

    survivor.create_subscription(agnoshm.Bytes, "/alive", alive, 10)
    sut.add_node(doomed)
    sut.add_node(survivor)
    spinner = Background(sut.spin)
    publish(doomed_pub, 0, 0)
    assert doomed_received.wait(TIMEOUT)
    publish(doomed_pub, 0, 1)  # possibly taken, possibly not: either way nothing breaks
    doomed.destroy_node()
    assert doomed not in sut.get_nodes()
    publish(pub, 1, 0)
    assert got.wait(TIMEOUT)
    assert received == [0]
    sut.shutdown(TIMEOUT)
    spinner.join()


def test_spin_returns_when_its_node_is_destroyed_in_a_callback(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    node.create_timer(0.001, node.destroy_node)
    spinner = Background(spin, node, sut)
    spinner.join()
    assert sut.get_nodes() == []


def test_spin_returns_when_agnoshm_shuts_down(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    node.create_timer(0.001, agnoshm.shutdown)
    sut.add_node(node)
    Background(sut.spin).join()
    assert not agnoshm.ok()


@pytest.mark.parametrize("cls", EXECUTORS)
def test_agnoshm_shutdown_in_another_thread_ends_a_blocked_spin(make_executor, cls):
    sut = make_executor(cls)
    node = agnoshm.Node("n")
    node.create_subscription(agnoshm.Bytes, "/idle", lambda m: None, 10)
    sut.add_node(node)
    spinner = Background(sut.spin)
    workers.wait_until(lambda: sut._spin_owner is not None, what="the spin to start")
    agnoshm.shutdown()
    spinner.join()
    assert sut.get_nodes() == []  # shutdown destroyed the node, which left the executor


def test_spinning_from_two_threads_at_once_is_refused(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    sut.add_node(node)
    spinner = Background(sut.spin)
    workers.wait_until(lambda: sut._spin_owner is not None, what="the spin to start")
    with pytest.raises(RuntimeError, match="already spinning"):
        sut.spin_once(0)
    sut.shutdown(TIMEOUT)
    spinner.join()


def test_a_destroyed_subscription_releases_the_messages_it_took(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/batch", 32)
    sub = node.create_subscription(agnoshm.Bytes, "/batch", lambda m: None, 32)
    sut.add_node(node)
    for i in range(20):
        publish(pub, 0, i)
    sut.spin_once(TIMEOUT)
    assert len(sub._inbox) == TAKE_BATCH - 1
    node.destroy_subscription(sub)
    assert len(sub._inbox) == 0
    for i in range(40):  # push everything out of depth
        publish(pub, 0, i)
    pub._port.reclaim()
    assert pub._port.held_count() == 0


def test_the_spin_holds_no_delivered_message_while_it_waits(make_executor):
    """The spin's predicate runs after each callback and right before each sleep: by then
    the message the callback got must be released (the spin used to keep it until the
    next message came)."""
    sut = make_executor()
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/held", 1)
    delivered = []
    node.create_subscription(agnoshm.Bytes, "/held", lambda m: delivered.append(weakref.ref(m)), 1)
    node.create_subscription(agnoshm.Bytes, "/other", lambda m: None, 1)  # a readiness scan
    sut.add_node(node)
    alive_when_checked = []

    def predicate():
        if delivered:
            alive_when_checked.append(delivered[0]() is not None)
        return len(alive_when_checked) >= 2  # after the callback, then before a sleep

    publish(pub, 0, 0)
    assert sut.spin_until(predicate, TIMEOUT)
    assert not any(alive_when_checked), alive_when_checked


# --- other processes ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls", EXECUTORS)
def test_messages_from_two_other_processes_arrive_once_and_in_order(make_executor, cls):
    sut = make_executor(cls)
    node = agnoshm.Node("n")
    received = []
    node.create_subscription(agnoshm.Bytes, "/cross", lambda m: received.append(read_header(m.data)),
                             256)
    sut.add_node(node)
    publishers = [start_publisher(["/cross"], k) for k in range(2)]
    for _process, commands, _out in publishers:
        commands.put(("publish", 100))
    assert sut.spin_until(lambda: len(received) == 200, TIMEOUT)
    for _process, _commands, out in publishers:
        assert out.get(timeout=TIMEOUT)[0] == "published"
    stop_publishers(*publishers)
    for k in range(2):  # the node's default group is mutually exclusive: order holds
        assert [c for p, c in received if p == k] == list(range(100))


def test_a_reentrant_group_delivers_each_message_exactly_once(make_executor):
    sut = make_executor(MultiThreadedExecutor, num_threads=4)
    node = agnoshm.Node("n")
    received, lock = [], threading.Lock()

    def record(msg):
        counter = read_header(msg.data)[1]
        with lock:
            received.append(counter)

    node.create_subscription(agnoshm.Bytes, "/once", record, 256,
                             callback_group=ReentrantCallbackGroup())
    sut.add_node(node)
    publisher = start_publisher(["/once"])
    publisher[1].put(("publish", 200))
    assert sut.spin_until(lambda: len(received) >= 200, TIMEOUT)
    assert publisher[2].get(timeout=TIMEOUT)[0] == "published"
    stop_publishers(publisher)
    sut.shutdown(TIMEOUT)
    assert sorted(received) == list(range(200))


def test_multithreaded_callbacks_run_in_the_worker_threads(make_executor):
    sut = make_executor(MultiThreadedExecutor, num_threads=2)
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/where", 10)
    threads = []
    node.create_subscription(agnoshm.Bytes, "/where",
                             lambda m: threads.append(threading.current_thread().name), 10)
    sut.add_node(node)
    for i in range(3):
        publish(pub, 0, i)
        assert sut.spin_until(lambda: len(threads) == i + 1, TIMEOUT)
    assert all(name.startswith("agnoshm-executor") for name in threads)


def test_spin_once_after_spin_is_served_with_a_single_worker(make_executor):
    """spin_until leaves its worker leading (asleep on the doorbell); spin_once must still
    get what it hands over run."""
    sut = make_executor(MultiThreadedExecutor, num_threads=1)
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/mixed", 10)
    received = []
    node.create_subscription(agnoshm.Bytes, "/mixed",
                             lambda m: received.append(read_header(m.data)), 10)
    sut.add_node(node)
    for i in range(0, 40, 2):
        publish(pub, 0, i)
        assert sut.spin_until(lambda: len(received) == i + 1, TIMEOUT)
        publish(pub, 0, i + 1)
        sut.spin_once(TIMEOUT)
        assert sut.spin_until(lambda: len(received) == i + 2, TIMEOUT)
    assert received == [(0, i) for i in range(40)]


def test_a_dropped_multithreaded_executor_ends_its_threads(isolated_domain):
    node = agnoshm.Node("n")
    sut = MultiThreadedExecutor(num_threads=2)
    sut.add_node(node)
    sut.spin_once(0.01)  # starts the workers
    sut.remove_node(node)
    del sut
    gc.collect()
    deadline = time.monotonic() + TIMEOUT
    while any(t.name.startswith("agnoshm-executor") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the workers of a dropped executor still run"
        time.sleep(0.01)


# --- coroutines, tasks and futures ------------------------------------------------------------------

def test_a_coroutine_callback_holds_its_group_until_it_finishes(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/async", 10)
    gate, log = Future(), []

    async def callback(msg):
        counter = read_header(msg.data)[1]
        log.append(("start", counter))
        if counter == 0:
            log.append(("awaited", await gate))
        log.append(("end", counter))

    node.create_subscription(agnoshm.Bytes, "/async", callback, 10)
    sut.add_node(node)
    publish(pub, 0, 0)
    sut.spin_once(TIMEOUT)
    assert log == [("start", 0)]
    publish(pub, 0, 1)
    sut.spin_once(0)  # message 1 is ready, but the default group is busy
    assert log == [("start", 0)]
    threading.Thread(target=gate.set_result, args=("opened",)).start()
    assert sut.spin_until(lambda: len(log) == 5, TIMEOUT)
    assert log == [("start", 0), ("awaited", "opened"), ("end", 0), ("start", 1), ("end", 1)]


@pytest.mark.parametrize("cls", EXECUTORS)
def test_a_raising_coroutine_callback_is_logged_and_releases_its_group(make_executor, cls, caplog):
    sut = make_executor(cls)
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/async_bad", 10)
    seen = []

    async def callback(msg):
        seen.append(read_header(msg.data)[1])
        later = Future()
        threading.Thread(target=later.set_result, args=(None,)).start()
        await later
        raise KeyError("async failure")

    node.create_subscription(agnoshm.Bytes, "/async_bad", callback, 10)
    sut.add_node(node)
    with caplog.at_level(logging.ERROR, logger="agnoshm.executor"):
        publish(pub, 0, 0)
        publish(pub, 0, 1)
        assert sut.spin_until(lambda: len(seen) == 2 and len(caplog.records) == 2, TIMEOUT)
    assert all("/async_bad" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("cls", EXECUTORS)
def test_create_task_runs_functions_and_coroutines(make_executor, cls):
    sut = make_executor(cls)
    agnoshm.init()
    plain = sut.create_task(lambda a, b: a + b, 2, 3)

    async def waits_for_plain():
        return await plain * 10

    chained = sut.create_task(waits_for_plain)
    sut.spin_until_future_complete(chained, TIMEOUT)
    assert plain.result() == 5
    assert chained.result() == 50


def test_spin_until_future_complete_accepts_a_concurrent_future(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    sut.add_node(node)
    future = concurrent.futures.Future()
    threading.Thread(target=future.set_result, args=(42,)).start()
    sut.spin_until_future_complete(future, TIMEOUT)
    assert future.result(0) == 42


def test_spin_until_future_complete_ends_when_a_callback_completes_the_future(make_executor):
    sut = make_executor(MultiThreadedExecutor)
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/answer", 10)
    future = Future()
    node.create_subscription(agnoshm.Bytes, "/answer",
                             lambda m: future.set_result(read_header(m.data)), 10)
    sut.add_node(node)
    publish(pub, 3, 4)
    sut.spin_until_future_complete(future, TIMEOUT)
    assert future.result() == (3, 4)


def test_spin_until_future_complete_returns_at_its_timeout(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    sut.add_node(node)
    future = Future()
    sut.spin_until_future_complete(future, timeout_sec=0.01)
    assert not future.done()


def test_a_future_runs_done_callbacks_once_and_keeps_the_first_result():
    sut = Future()
    calls = []
    sut.add_done_callback(calls.append)
    sut.set_result(1)
    sut.set_result(2)
    sut.add_done_callback(calls.append)
    assert sut.result() == 1 and calls == [sut, sut]
    failed = Future()
    failed.set_exception(ValueError("no"))
    with pytest.raises(ValueError):
        failed.result()
    cancelled = Future()
    assert cancelled.cancel() and cancelled.cancelled() and not cancelled.cancel()


# --- module functions ------------------------------------------------------------------------------

def test_module_functions_use_the_global_executor_and_remove_the_node_after(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/global", 10)
    received = []
    node.create_subscription(agnoshm.Bytes, "/global", lambda m: received.append(1), 10)
    publish(pub, 0, 0)
    spin_once(node, timeout_sec=TIMEOUT)
    assert received == [1]
    assert node not in get_global_executor().get_nodes()
    future = Future()
    node.create_timer(0.001, lambda: future.set_result("ticked"))
    spin_until_future_complete(node, future, timeout_sec=TIMEOUT)
    assert future.result() == "ticked"
    assert get_global_executor() is get_global_executor()


def test_multithreaded_executor_defaults_to_the_cpus_it_may_use(make_executor):
    assert make_executor(MultiThreadedExecutor).num_threads == len(os.sched_getaffinity(0))
    with pytest.raises(ValueError):
        MultiThreadedExecutor(num_threads=0)


def test_add_node_twice_is_reported(make_executor):
    sut = make_executor()
    node = agnoshm.Node("n")
    assert sut.add_node(node) is True
    assert sut.add_node(node) is False
    assert node.executor is sut and sut.get_nodes() == [node]
    sut.remove_node(node)
    assert node.executor is None and sut.get_nodes() == []


def test_the_default_group_is_mutually_exclusive(isolated_domain):
    node = agnoshm.Node("n")
    sub = node.create_subscription(agnoshm.Bytes, "/g", lambda m: None, 1)
    timer = node.create_timer(1.0, lambda: None)
    group = node.default_callback_group
    assert isinstance(group, MutuallyExclusiveCallbackGroup)
    assert sub.callback_group is group and timer.callback_group is group
    assert group.has_entity(sub) and group.has_entity(timer)
