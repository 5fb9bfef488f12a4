"""CallbackIsolatedExecutor: a thread per callback group, its scheduling from a thread configuration.

Threads really get the configured policy, priority, nice and CPUs (read back
from the kernel); an unprivileged process (a child that drops to uid 65534)
gets ThreadSettingError naming CAP_SYS_NICE.  Real-time threads here run short
callbacks that block or return at once, at priority 1, so they starve nothing.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import agnoshm
from agnoshm import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from agnoshm.executors import CallbackIsolatedExecutor, ThreadConfigError, ThreadSettingError
from agnoshm.executors.thread_config import ThreadSettings, load_thread_config
from executor_workers import publish, start_publisher, stop_publishers
from sources import child_env
from workers import TIMEOUT, read_header, wait_until

NOBODY = 65534


@pytest.fixture
def make_executor(isolated_domain):
    """Build executors that are shut down (threads joined) before agnoshm is."""
    made = []

    def make(*args, **kwargs):
        made.append(CallbackIsolatedExecutor(*args, **kwargs))
        return made[-1]

    yield make
    for executor in made:
        assert executor.shutdown(TIMEOUT), "a group thread did not end"


class Spinning:
    """``executor.spin()`` in a thread; :meth:`stop` shuts the executor down and re-raises."""

    def __init__(self, executor):
        self.executor = executor
        self.error = None
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def stop(self):
        assert self.executor.shutdown(TIMEOUT)
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "spin() did not return"
        if self.error is not None:
            raise self.error


def _stat(tid: int) -> dict:
    """Policy, real-time priority and nice of thread ``tid`` as /proc reports them."""
    with open(f"/proc/self/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
    return {"nice": int(fields[19 - 3]), "rt_priority": int(fields[40 - 3]),
            "policy": int(fields[41 - 3])}


# --- isolation ---------------------------------------------------------------------------------

def test_each_group_runs_in_its_own_thread_and_a_slow_group_delays_no_other(make_executor):
    sut = make_executor()
    node = agnoshm.Node("iso")
    slow_group = MutuallyExclusiveCallbackGroup(name="slow")
    fast_group = ReentrantCallbackGroup(name="fast")  # serial too: one thread per group
    count = 20
    release, slow_blocked, slow_done = threading.Event(), threading.Event(), threading.Event()
    fast_done = [threading.Event(), threading.Event()]  # the first message, all of them
    slow, fast, in_fast = [], [], []

    def on_slow(msg):
        slow.append((threading.get_native_id(), read_header(msg.data)))
        slow_blocked.set()
        release.wait(TIMEOUT)  # the first callback blocks its group's thread
        if len(slow) == count:
            slow_done.set()

    def on_fast(msg):
        in_fast.append(1)
        assert len(in_fast) == 1, "two callbacks of one group ran at once"
        fast.append((threading.get_native_id(), read_header(msg.data)))
        in_fast.pop()
        if len(fast) in (1, count):
            fast_done[len(fast) > 1].set()

    node.create_subscription(agnoshm.Bytes, "/iso/slow", on_slow, count,
                             callback_group=slow_group)
    node.create_subscription(agnoshm.Bytes, "/iso/fast", on_fast, count,
                             callback_group=fast_group)
    sut.add_node(node)
    publisher = start_publisher(["/iso/slow", "/iso/fast"], publisher_id=3)
    spinning = Spinning(sut)
    try:
        publisher[1].put(("publish", 1))  # one message on each topic
        assert slow_blocked.wait(TIMEOUT) and fast_done[0].wait(TIMEOUT)
        publisher[1].put(("publish", count - 1))
        assert fast_done[1].wait(TIMEOUT), f"group fast got {len(fast)} of {count}"
        assert len(slow) == 1, "the slow group's first callback still blocks its thread"
        release.set()
        assert slow_done.wait(TIMEOUT), f"group slow got {len(slow)} of {count}"
        threads = sut.threads()
        assert set(threads) == {"/iso/slow", "/iso/fast"}
        assert {tid for tid, _ in slow} == {threads["/iso/slow"]}
        assert {tid for tid, _ in fast} == {threads["/iso/fast"]}
        assert threads["/iso/slow"] != threads["/iso/fast"]
        assert spinning.thread.native_id not in threads.values()
        assert [h for _, h in slow] == [(3, i) for i in range(count)]
        assert [h for _, h in fast] == [(3, i) for i in range(count)]
    finally:
        release.set()
        spinning.stop()
        stop_publishers(publisher)


def test_groups_created_while_spinning_get_a_thread_and_gone_groups_lose_it(make_executor):
    sut = make_executor()
    node = agnoshm.Node("later")
    pub = node.create_publisher(agnoshm.Bytes, "/later", 10)
    late = MutuallyExclusiveCallbackGroup(name="late")
    ticks, got, made = [], [], []

    def tick():  # in the default group's thread, while the executor spins
        ticks.append(threading.get_native_id())
        if not made:
            made.append(node.create_subscription(
                agnoshm.Bytes, "/later", lambda m: got.append(threading.get_native_id()), 10,
                callback_group=late))
            publish(pub, 0, 0)
        elif got and len(made) == 1:
            made.append(node.destroy_subscription(made[0]))
            sut.wake()

    node.create_timer(0.01, tick)
    sut.add_node(node)
    threads = {}
    assert sut.spin_until(lambda: got and threads.update(sut.threads()) is None
                          and "/later/late" in threads, TIMEOUT)
    assert set(threads) == {"/later/default", "/later/late"}
    assert set(got) == {threads["/later/late"]} and set(ticks) == {threads["/later/default"]}
    assert sut.spin_until(lambda: len(made) == 2 and "/later/late" not in sut.threads(), TIMEOUT)
    assert sut.shutdown(TIMEOUT)
    # join() returns when Python is done with the thread; the kernel task ends just after
    wait_until(lambda: not os.path.exists(f"/proc/self/task/{threads['/later/late']}"),
               what="the retired group's thread to end")


def test_a_spin_without_groups_starts_one_for_the_first_timer_and_runs_tasks(make_executor):
    sut = make_executor()
    node = agnoshm.Node("empty")
    sut.add_node(node)
    task = sut.create_task(threading.get_native_id)
    sut.spin_until_future_complete(task, TIMEOUT)  # no group thread: the spinner runs tasks
    assert task.result() == threading.get_native_id() and sut.threads() == {}
    spinning = Spinning(sut)
    try:
        ticked = threading.Event()
        node.create_timer(0.01, ticked.set)  # wakes the spinning thread, asleep on the doorbell
        assert ticked.wait(TIMEOUT)
        assert list(sut.threads()) == ["/empty/default"]
    finally:
        spinning.stop()


def test_spin_once_runs_the_groups_until_a_callback_ran_and_tasks_run_in_the_spinning_thread(
        make_executor):
    sut = make_executor()
    node = agnoshm.Node("once")
    pub = node.create_publisher(agnoshm.Bytes, "/once", 10)
    got = []
    node.create_subscription(agnoshm.Bytes, "/once", lambda m: got.append(read_header(m.data)), 10)
    sut.add_node(node)
    publish(pub, 0, 0)
    publish(pub, 0, 1)
    sut.spin_once(TIMEOUT)
    assert got and got[0] == (0, 0)
    assert sut.spin_until(lambda: len(got) == 2, TIMEOUT)
    sut.spin_once(0)  # nothing to do: returns
    assert got == [(0, 0), (0, 1)]
    where = sut.create_task(threading.get_native_id)
    sut.spin_until_future_complete(where, TIMEOUT)
    assert where.result() == threading.get_native_id()
    assert list(sut.threads()) == ["/once/default"]


def test_shutdown_from_a_callback_and_the_context_manager(isolated_domain):
    node = agnoshm.Node("closing")
    answers = []
    with CallbackIsolatedExecutor() as sut:
        sut.add_node(node)
        node.create_timer(0.01, lambda: answers.append(sut.shutdown(TIMEOUT)))
        sut.spin()  # returns: a callback shut the executor down
    assert answers == [True]  # the exit's shutdown waited for that callback
    assert node.executor is None


# --- thread settings ---------------------------------------------------------------------------

def test_threads_get_the_configured_policy_priority_nice_and_cpus(make_executor):
    config = {"callback_groups": {
        "/cfg/n/rt": {"policy": "SCHED_FIFO", "priority": 1, "cpu_affinity": [0]},
        "/cfg/n/rr": {"policy": "SCHED_RR", "priority": 2},
        "/cfg/n/nice": {"nice": 7, "cpu_affinity": [1]},
        "/cfg/n/default": {"policy": "SCHED_BATCH"},
    }}
    sut = make_executor(config)
    node = agnoshm.Node("n", namespace="/cfg")
    seen = {}

    def record(name):
        def callback():
            tid = threading.get_native_id()
            seen[name] = (tid, os.sched_getscheduler(0), os.sched_getparam(0).sched_priority,
                          os.getpriority(os.PRIO_PROCESS, tid), os.sched_getaffinity(0))
        return callback

    for name in ("rt", "rr", "nice", "plain"):
        node.create_timer(0.01, record(name),
                          callback_group=MutuallyExclusiveCallbackGroup(name=name))
    node.create_timer(0.01, record("default"))
    sut.add_node(node)
    me = threading.get_native_id()  # the spinning thread keeps its own settings
    mine = (os.sched_getscheduler(me), os.getpriority(os.PRIO_PROCESS, me))
    assert sut.spin_until(lambda: len(seen) == 5, TIMEOUT)
    everything = os.sched_getaffinity(0)
    nice = mine[1]  # what the threads inherit
    assert seen["rt"][1:] == (os.SCHED_FIFO, 1, nice, {0})
    assert seen["rr"][1:] == (os.SCHED_RR, 2, nice, everything)
    assert seen["nice"][1:] == (os.SCHED_OTHER, 0, 7, {1})
    assert seen["default"][1:] == (os.SCHED_BATCH, 0, nice, everything)
    assert seen["plain"][1:] == (os.SCHED_OTHER, 0, nice, everything)  # not configured
    threads = sut.threads()
    assert {name: seen[name][0] for name in seen} == {k.rsplit("/", 1)[1]: v
                                                      for k, v in threads.items()}
    assert _stat(threads["/cfg/n/rt"]) == {"nice": nice, "rt_priority": 1,
                                           "policy": os.SCHED_FIFO}
    assert _stat(threads["/cfg/n/nice"])["nice"] == 7
    assert (os.sched_getscheduler(me), os.getpriority(os.PRIO_PROCESS, me)) == mine


def test_a_cpu_the_process_may_not_use_is_a_typed_error(make_executor):
    missing = max(os.sched_getaffinity(0)) + 64
    sut = make_executor({"callback_groups": {"/pin/default": {"cpu_affinity": [0, missing]}}})
    node = agnoshm.Node("pin")
    node.create_timer(0.01, lambda: None)
    sut.add_node(node)
    with pytest.raises(ThreadSettingError, match=rf"/pin/default.*CPU\(s\) \[{missing}\].*allowed"):
        sut.spin_once(TIMEOUT)
    assert sut.threads() == {}  # the thread ended without running anything


def _unprivileged_settings(domain: int) -> dict:
    """As uid 65534 (run by in_child_as): what each setting does on a timer's thread."""
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    answers = {}
    node = agnoshm.Node("unprivileged")
    ran = []
    node.create_timer(0.01, lambda: ran.append(os.getpriority(os.PRIO_PROCESS,
                                                              threading.get_native_id())),
                      callback_group=MutuallyExclusiveCallbackGroup(name="g"))
    for name, settings in [("fifo", {"policy": "SCHED_FIFO", "priority": 1}),
                           ("lower nice", {"nice": -5}),
                           ("higher nice", {"nice": 5})]:
        executor = CallbackIsolatedExecutor({"callback_groups": {"/unprivileged/g": settings}})
        executor.add_node(node)
        try:
            executor.spin_once(TIMEOUT)
            answers[name] = ("ran", ran[-1])
        except ThreadSettingError as err:
            answers[name] = ("error", str(err))
        finally:
            executor.shutdown(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()
    return answers


@pytest.mark.skipif(os.getuid() != 0, reason="switching to uid 65534 needs root")
def test_without_cap_sys_nice_a_setting_is_a_typed_error_naming_the_capability(isolated_domain):
    from test_permissions import in_child_as

    # The child cannot import from /root: run the same steps here first, then leave the
    # domain (the child, another uid, makes its own registry there).
    _unprivileged_settings(isolated_domain)
    answers = in_child_as(NOBODY, NOBODY, _unprivileged_settings, isolated_domain)
    kind, message = answers["fifo"]
    assert kind == "error" and "/unprivileged/g" in message and "CAP_SYS_NICE" in message
    assert "RLIMIT_RTPRIO" in message and "setcap" in message
    kind, message = answers["lower nice"]
    assert kind == "error" and "CAP_SYS_NICE" in message and "nice -5" in message
    assert answers["higher nice"] == ["ran", 5]  # raising nice needs no privilege


# --- configuration -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, match", [
    ("threads: {}", r"unknown key\(s\) \['threads'\]"),
    ("callback_groups: [1]", "callback_groups must map"),
    ("callback_groups: {/n/g: {prio: 3}}", r"callback_groups\./n/g: unknown setting\(s\) \['prio'\]"),
    ("callback_groups: {/n/g: {policy: FIFO, priority: 3}}", r"/n/g\.policy must be one of SCHED_OTHER"),
    ("callback_groups: {/n/g: {policy: SCHED_FIFO, priority: 100}}", r"/n/g\.priority must be 1\.\.99"),
    ("callback_groups: {/n/g: {policy: SCHED_RR}}", r"/n/g\.priority must be 1\.\.99 with SCHED_RR, not None"),
    ("callback_groups: {/n/g: {priority: 3}}", r"/n/g\.priority needs policy SCHED_FIFO or SCHED_RR"),
    ("callback_groups: {/n/g: {nice: 20}}", r"/n/g\.nice must be -20\.\.19"),
    ("callback_groups: {/n/g: {nice: 1, policy: SCHED_FIFO, priority: 1}}", "nice has no effect"),
    ("callback_groups: {/n/g: {nice: x}}", r"/n/g\.nice must be an integer"),
    ("callback_groups: {/n/g: {cpu_affinity: []}}", r"/n/g\.cpu_affinity must be a non-empty list"),
    ("callback_groups: {/n/g: {cpu_affinity: [-1]}}", r"/n/g\.cpu_affinity must be"),
    ("callback_groups: {g: {}}", r"key is '<node fully qualified name>/<group name>'"),
    ("callback_groups: {/n/g: 3}", r"/n/g must be a mapping"),
    ("callback_groups: [", "cannot read thread configuration"),
])
def test_a_bad_configuration_is_a_typed_error_naming_the_key(tmp_path, text, match):
    path = tmp_path / "threads.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ThreadConfigError, match=match):
        CallbackIsolatedExecutor(path)


def test_a_configuration_file_reads_into_settings(tmp_path):
    path = tmp_path / "threads.yaml"
    path.write_text("callback_groups:\n"
                    "  /ns/n/capture: {policy: SCHED_FIFO, priority: 10, cpu_affinity: [1, 0, 1]}\n"
                    "  /ns/n/default: {nice: 5}\n"
                    "  /n/idle:\n")
    assert load_thread_config(path) == {
        "/ns/n/capture": ThreadSettings(policy="SCHED_FIFO", priority=10, cpu_affinity=(0, 1)),
        "/ns/n/default": ThreadSettings(nice=5),
        "/n/idle": ThreadSettings(),
    }
    assert load_thread_config(None) == {}


def test_the_template_lists_the_groups_and_reads_back(make_executor, tmp_path, caplog):
    node = agnoshm.Node("cam", namespace="/robot")
    node.create_timer(1.0, lambda: None)
    node.create_subscription(agnoshm.Bytes, "/image", lambda m: None, 1,
                             callback_group=MutuallyExclusiveCallbackGroup(name="capture"))
    node.create_subscription(agnoshm.Bytes, "/info", lambda m: None, 1,
                             callback_group=MutuallyExclusiveCallbackGroup())
    node.create_polling_subscription(agnoshm.Bytes, "/polled", 1)  # no callback: no group thread
    sut = make_executor({"callback_groups": {"/robot/cam/captur": {"nice": 1}}})
    sut.add_node(node)
    text = sut.thread_config_template()
    assert "  /robot/cam/default: {}  # timer 1 s\n" in text
    assert "  /robot/cam/capture: {}  # subscription /image\n" in text
    assert "# /robot/cam/<unnamed 2> (subscription /info) has no name" in text
    assert "/polled" not in text
    path = tmp_path / "threads.yaml"
    path.write_text(text)
    assert load_thread_config(path) == {"/robot/cam/default": ThreadSettings(),
                                        "/robot/cam/capture": ThreadSettings()}
    with caplog.at_level(logging.WARNING, logger="agnoshm.executor"):
        sut.spin_once(0)
    assert "/robot/cam/captur that no node of this executor has" in caplog.text
    assert "known: /robot/cam/default, /robot/cam/capture" in caplog.text


def test_group_names_are_checked_and_unique_within_a_node(make_executor):
    with pytest.raises(ValueError, match="callback group name 'a/b' must be letters"):
        MutuallyExclusiveCallbackGroup(name="a/b")
    node = agnoshm.Node("twice")
    for _ in range(2):
        node.create_timer(1.0, lambda: None,
                          callback_group=MutuallyExclusiveCallbackGroup(name="same"))
    sut = make_executor()
    sut.add_node(node)
    with pytest.raises(ThreadConfigError, match="node /twice has two callback groups named 'same'"):
        sut.spin_once(0)


def test_the_example_of_docs_executors_runs(isolated_domain, tmp_path):
    text = (Path(__file__).resolve().parents[1] / "docs" / "executors.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    (tmp_path / "example.py").write_text(example)
    result = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=child_env(),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    ticks = re.search(r"^(\d+) control ticks on thread \{(\d+)\}; threads: (.*)$", result.stdout,
                      re.M)
    assert ticks and int(ticks[1]) >= 20, result.stdout
    images = set(re.findall(r"^image of 1024 B on thread (\d+)$", result.stdout, re.M))
    assert len(images) == 1 and images != {ticks[2]}, result.stdout
    assert "  /demo/robot/camera: {}  # subscription /demo/image" in result.stdout
