"""The wake-up loop: it returns what a look finds, wakes for a ring from another process,
returns at its deadline or stop condition, and never sleeps through a ring that lands
between reading the doorbell and sleeping."""

from __future__ import annotations

import threading
import time

import pytest

import agnoshm
from agnoshm.transport import waiting
from agnoshm.transport.waiting import wait_for_work
import workers
from workers import TIMEOUT


def _doorbell():
    return agnoshm.context.get_runtime().doorbell


def _arm(doorbell) -> None:
    """Set this process's sleeping flag, so that publishers ring it and the next
    ``doorbell.wait`` really sleeps (the first one after a ring only sets the flag)."""
    doorbell.wait(doorbell.value(), 0)


class _Watchdog:
    """Rings the doorbell once if the test is not done within ``TIMEOUT``: a loop that
    slept through a ring then wakes up, and the test fails on ``fired`` instead of hanging
    (a deadline would not do: the loop looks once more after it, and finds the work)."""

    def __init__(self, doorbell):
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(doorbell,), daemon=True)

    def _run(self, doorbell) -> None:
        if not self._done.wait(TIMEOUT):
            self.fired = True
            doorbell.ring()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join(TIMEOUT)


def _start_publisher(topic: str, count: int):
    """A publisher of ``count`` messages in another process, waiting for ``start``."""
    ctx = workers.context()
    ready, start, out, exit_event = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Event()
    child = ctx.Process(target=workers.publisher,
                        args=(topic, 7, count, 64, count, 1, ready, start, out),
                        kwargs={"exit_event": exit_event})
    child.start()
    assert ready.wait(TIMEOUT), "the publisher did not see the subscription"
    return child, start, out, exit_event


def _finish(child, exit_event) -> None:
    exit_event.set()
    child.join(TIMEOUT)
    assert child.exitcode == 0


def test_a_publisher_in_another_process_wakes_the_loop_for_each_message(isolated_domain):
    count = 200
    node = agnoshm.Node("n")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/waiting/ring", count)
    child, start, out, exit_event = _start_publisher("/waiting/ring", count)
    doorbell = _doorbell()

    def look():
        start.set()  # the first look found nothing yet: the messages come while we wait
        return sub.take(), None

    received = []
    with _Watchdog(doorbell) as dog:
        for _ in range(count):
            msg = wait_for_work(doorbell, look)
            received.append(workers.read_header(msg.data))
            del msg
    assert not dog.fired, f"a ring was slept through after {len(received)} of {count} messages"
    assert received == [(7, i) for i in range(count)]
    assert out.get(timeout=TIMEOUT)[:3] == ("published", 7, count)
    _finish(child, exit_event)


def test_a_ring_between_reading_the_word_and_sleeping_is_not_slept_through(isolated_domain):
    """The look makes the ring itself, after the loop read the word: the wait must return
    at once (without it, the loop would sleep until its deadline and return None)."""
    doorbell = _doorbell()
    _arm(doorbell)
    looks = []

    def look():
        looks.append(doorbell.value())
        if len(looks) == 1:
            doorbell.ring()
            return None, None
        return "found", None

    with _Watchdog(doorbell) as dog:
        assert wait_for_work(doorbell, look) == "found"
    assert not dog.fired, "the loop slept through the ring made during its look"
    assert looks[1] == looks[0] + 1


def test_a_message_published_from_another_process_during_the_look_is_not_slept_through(
        isolated_domain):
    """The publisher in another process publishes and rings while the first look runs,
    after the loop read the word; that look reports nothing, and the loop must look again.

    Its ring clears the sleeping flag, and a cleared flag alone makes the next wait return
    (the doorbell's "look once more"); the look sets the flag again, as a publisher that
    rings every time (off x86) leaves it set, so only the order of the loop saves it.
    """
    node = agnoshm.Node("n")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/waiting/race", 1)
    child, start, out, exit_event = _start_publisher("/waiting/race", 1)
    doorbell = _doorbell()
    _arm(doorbell)
    looks = [0]

    def look():
        looks[0] += 1
        if looks[0] == 1:
            start.set()
            assert out.get(timeout=TIMEOUT)[:3] == ("published", 7, 1)
            _arm(doorbell)
            return None, None  # as if we had looked just before it was committed
        return sub.take(), None

    with _Watchdog(doorbell) as dog:
        msg = wait_for_work(doorbell, look)
    assert not dog.fired, "the loop slept through the publisher's ring"
    assert workers.read_header(msg.data) == (7, 0)
    del msg
    _finish(child, exit_event)


def test_the_barrier_used_off_x86_keeps_the_loop_working(isolated_domain, monkeypatch):
    monkeypatch.setattr(waiting, "_fence", waiting.futex_fence)
    test_a_ring_between_reading_the_word_and_sleeping_is_not_slept_through(isolated_domain)


def test_the_deadline_returns_none_once_passed_and_not_before(isolated_domain):
    doorbell = _doorbell()
    _arm(doorbell)
    looks = []
    deadline = time.monotonic() + 0.05
    assert wait_for_work(doorbell, lambda: (looks.append(1), (None, None))[1],
                         deadline=deadline) is None
    assert time.monotonic() >= deadline
    assert looks, "the loop must look before it gives up"


def test_a_passed_deadline_still_looks_once(isolated_domain):
    past = time.monotonic() - 1
    assert wait_for_work(_doorbell(), lambda: ("found", None), deadline=past) == "found"
    looks = []
    assert wait_for_work(_doorbell(), lambda: (looks.append(1), (None, None))[1],
                         deadline=past) is None
    assert looks == [1]


def test_the_look_timeout_bounds_each_sleep(isolated_domain):
    """A timer's due time (the look's timeout) wakes the loop with no ring at all."""
    doorbell = _doorbell()
    _arm(doorbell)
    looks = []

    def look():
        looks.append(1)
        return ("due" if len(looks) > 3 else None), 0.01

    with _Watchdog(doorbell) as dog:
        assert wait_for_work(doorbell, look) == "due"
    assert not dog.fired, "the loop slept past the look's timeout"


def test_a_stop_condition_made_true_and_rung_from_another_thread_returns(isolated_domain):
    doorbell = _doorbell()
    _arm(doorbell)
    looked, stopped, seen_stop = threading.Event(), threading.Event(), []

    def look():
        looked.set()
        return None, None

    def stop():
        seen_stop.append(stopped.is_set())
        return stopped.is_set()

    def stopper():
        looked.wait(TIMEOUT)
        stopped.set()  # as Executor.shutdown: the flag first, then the ring
        doorbell.ring()

    thread = threading.Thread(target=stopper)
    thread.start()
    with _Watchdog(doorbell) as dog:
        assert wait_for_work(doorbell, look, stop=stop) is None
    thread.join(TIMEOUT)
    assert not dog.fired, "the loop slept through the ring after the stop"
    assert seen_stop[-1] is True


def test_a_stop_condition_that_holds_returns_after_one_look(isolated_domain):
    looks = []
    assert wait_for_work(_doorbell(), lambda: (looks.append(1), (None, 0.0))[1],
                         stop=lambda: True) is None
    assert looks == [1]


def test_enter_checks_every_round_leave_ends_the_call_and_a_refusal_touches_nothing(
        isolated_domain):
    """The loop stays inside from the first enter() to its return (sleeps included);
    enter() checks again after each wait, and once it refuses the loop looks no more."""
    doorbell = _doorbell()
    events = []
    admitted = [True, True, False]

    def enter():
        events.append("enter")
        return admitted.pop(0)

    def look():
        events.append("look")
        doorbell.ring()  # the loop goes round again at once
        return None, None

    with _Watchdog(doorbell) as dog:
        assert wait_for_work(doorbell, look, enter=enter,
                             leave=lambda: events.append("leave")) is None
    assert not dog.fired
    assert events == ["enter", "look", "enter", "look", "enter", "leave"]


def test_a_first_refusal_neither_looks_nor_leaves(isolated_domain):
    events = []
    assert wait_for_work(_doorbell(), lambda: events.append("look"),
                         enter=lambda: events.append("enter") and False,
                         leave=lambda: events.append("leave")) is None
    assert events == ["enter"]


def test_leave_runs_when_the_look_raises(isolated_domain):
    left = []

    def look():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        wait_for_work(_doorbell(), look, enter=lambda: True, leave=lambda: left.append(1))
    assert left == [1]


def test_a_busy_polling_loop_finds_a_message_awake_and_no_publisher_rings_it(
        isolated_domain, monkeypatch):
    """AGNOSHM_BUSY_POLL_US: the loop spins looking for work before it arms, so a message
    from another process is found while the process is awake: its sleeping flag stays
    clear and the publisher never rings (the doorbell's word does not move)."""
    monkeypatch.setenv("AGNOSHM_BUSY_POLL_US", str(int(TIMEOUT * 1e6)))  # outlasts any start
    node = agnoshm.Node("busy")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/busy", 4)
    runtime = agnoshm.context.get_runtime()
    doorbell = runtime.doorbell
    ctx = workers.context()
    ready, start, out = ctx.Event(), ctx.Event(), ctx.Queue()
    child = ctx.Process(target=workers.publisher, args=("/busy", 3, 1, 64, 4, 1, ready, start, out))
    child.start()
    assert ready.wait(TIMEOUT)
    seen = doorbell.value()
    flags = []

    def look():
        flags.append(runtime.registry.processes[runtime.slot].sleeping)
        if len(flags) == 1:
            start.set()  # published only once the loop has looked and found nothing
            return None, None
        msg = sub.take()
        return msg, None

    msg = wait_for_work(doorbell, look, deadline=time.monotonic() + TIMEOUT)
    assert msg is not None and workers.read_header(msg.data) == (3, 0)
    assert set(flags) == {0} and not doorbell.armed(), "it never armed"
    assert doorbell.value() == seen, "an awake process was rung"
    del msg
    assert out.get(timeout=TIMEOUT)[0] == "published"
    child.join(TIMEOUT)
    assert child.exitcode == 0
    node.destroy_node()
