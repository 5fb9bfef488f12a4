"""agnoshm.ros.CallbackIsolatedExecutor with real rclpy: each callback group of an rclpy node
runs on a thread of its own (rclpy subscriptions and timers, and agnoshm subscriptions made
with agnoshm.ros.create_subscription, fed by another process), a blocked group delays no
other, threads get their configured scheduling (read back from the kernel), shutdown joins
them.  Real-time threads run short callbacks at priority 1, so they starve nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from executor_workers import start_publisher, stop_publishers
from domains import ROS_DOMAIN_RANGE
from ros_packages import needs
from sources import child_env
from test_callback_isolated import Spinning, _stat
from workers import TIMEOUT, read_header, wait_until

import agnoshm
import agnoshm.ros

pytestmark = [pytest.mark.ros, needs("std_msgs.msg")]


@pytest.fixture
def ros(isolated_domain, ros_domain_id):
    """rclpy on its own context; its nodes and executors are destroyed/shut down after."""
    import rclpy
    import rclpy.context
    from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id)
    nodes, executors = [], []

    def node(name, **kwargs):
        nodes.append(rclpy.create_node(name, context=ctx, **kwargs))
        return nodes[-1]

    def executor(thread_config=None):
        executors.append(agnoshm.ros.CallbackIsolatedExecutor(thread_config, context=ctx))
        return executors[-1]

    def group(name):
        return agnoshm.ros.name_callback_group(MutuallyExclusiveCallbackGroup(), name)

    yield SimpleNamespace(rclpy=rclpy, context=ctx, node=node, executor=executor, group=group)
    for made in executors:
        assert made.shutdown(TIMEOUT), "a group thread did not end"
    for created in nodes:
        created.destroy_node()
    rclpy.try_shutdown(context=ctx)


def _group_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("agnoshm-group")]


def test_a_blocked_group_delays_no_other_each_runs_on_its_thread_and_shutdown_joins(ros):
    from std_msgs.msg import String

    node = ros.node("n", namespace="/iso")
    slow_group, fast_group = ros.group("slow"), ros.group("fast")
    count = 10
    release, slow_blocked = threading.Event(), threading.Event()
    fast_done, slow_done, ticked = threading.Event(), threading.Event(), threading.Event()
    slow, fast, ticks = [], [], []

    def on_slow(msg):
        slow.append((threading.get_native_id(), msg.data))
        slow_blocked.set()
        release.wait(TIMEOUT)  # the first callback blocks its group's thread
        if len(slow) == count:
            slow_done.set()

    def on_fast(msg):
        fast.append((threading.get_native_id(), msg.data))
        if len(fast) == count:
            fast_done.set()

    def on_tick():
        ticks.append(threading.get_native_id())
        ticked.set()

    node.create_subscription(String, "slow", on_slow, 50, callback_group=slow_group)
    node.create_subscription(String, "fast", on_fast, 50, callback_group=fast_group)
    node.create_timer(0.01, on_tick, callback_group=fast_group)
    talker = ros.node("talker", namespace="/iso")
    pubs = [talker.create_publisher(String, topic, 50) for topic in ("slow", "fast")]
    wait_until(lambda: all(p.get_subscription_count() == 1 for p in pubs), what="matching")
    sut = ros.executor()
    sut.add_node(node)
    spinning = Spinning(sut)
    try:
        pubs[0].publish(String(data="s0"))
        assert slow_blocked.wait(TIMEOUT)
        for i in range(count):
            pubs[0].publish(String(data=f"s{i + 1}"))
            pubs[1].publish(String(data=f"f{i}"))
        assert fast_done.wait(TIMEOUT), f"group fast got {len(fast)} of {count}"
        assert ticked.wait(TIMEOUT)
        assert len(slow) == 1, "the slow group's first callback still blocks its thread"
        release.set()
        assert slow_done.wait(TIMEOUT), f"group slow got {len(slow)} of {count}"
        # the default group's thread may still be starting (the spinning thread starts them
        # one by one, and the first two were quicker than that)
        wait_until(lambda: len(sut.threads()) == 3, what="the default group's thread")
        threads = sut.threads()
        assert set(threads) == {"/iso/n/slow", "/iso/n/fast", "/iso/n/default"}
        assert len(set(threads.values())) == 3
        assert spinning.thread.native_id not in threads.values()
        assert {tid for tid, _ in slow} == {threads["/iso/n/slow"]}
        assert {tid for tid, _ in fast} | set(ticks) == {threads["/iso/n/fast"]}
        assert [data for _, data in fast] == [f"f{i}" for i in range(count)]
        assert [data for _, data in slow[:count]] == [f"s{i}" for i in range(count)]
    finally:
        release.set()
        spinning.stop()
    assert not _group_threads(), "shutdown joined every group thread"


def test_an_agnoshm_subscription_fed_by_another_process_runs_on_its_groups_thread(ros):
    node = ros.node("n", namespace="/shm")
    release, blocked = threading.Event(), threading.Event()
    count = 20
    got, done = [], threading.Event()

    def on_block():
        blocked.set()
        release.wait(TIMEOUT)

    def on_message(msg):
        got.append((threading.get_native_id(), read_header(msg.data)))
        if len(got) == count:
            done.set()

    node.create_timer(0.01, on_block, callback_group=ros.group("blocked"))
    sut = ros.executor()
    sut.add_node(node)
    spinning = Spinning(sut)
    publisher = None
    try:
        assert blocked.wait(TIMEOUT)  # a group thread is busy before the subscription exists
        # made while spinning: rclpy wakes the executor, which starts the group's thread
        agnoshm.ros.create_subscription(node, agnoshm.Bytes, "/shm/data", on_message, count,
                                        callback_group=ros.group("data"))
        publisher = start_publisher(["/shm/data"], publisher_id=5)
        publisher[1].put(("publish", count))
        assert done.wait(TIMEOUT), f"got {len(got)} of {count} while group blocked is busy"
        threads = sut.threads()
        assert {tid for tid, _ in got} == {threads["/shm/n/data"]}
        assert threads["/shm/n/data"] != threads["/shm/n/blocked"]
        assert [header for _, header in got] == [(5, i) for i in range(count)]
    finally:
        release.set()
        spinning.stop()
        if publisher is not None:
            stop_publishers(publisher)
    assert not _group_threads()


@pytest.mark.skipif(os.getuid() != 0, reason="SCHED_FIFO needs root (or CAP_SYS_NICE)")
def test_threads_get_the_configured_policy_priority_nice_and_cpus(ros):
    cpu = min(os.sched_getaffinity(0))
    sut = ros.executor({"callback_groups": {
        "/cfg/n/rt": {"policy": "SCHED_FIFO", "priority": 1, "cpu_affinity": [cpu]},
        "/cfg/n/default": {"nice": 5},
    }})
    node = ros.node("n", namespace="/cfg")
    seen, both = {}, threading.Event()

    def record(name):
        def callback():
            tid = threading.get_native_id()
            seen.setdefault(name, (tid, os.sched_getscheduler(0),
                                   os.sched_getparam(0).sched_priority, os.sched_getaffinity(0)))
            if len(seen) == 3:
                both.set()
        return callback

    node.create_timer(0.01, record("rt"), callback_group=ros.group("rt"))
    node.create_timer(0.01, record("default"))
    node.create_timer(0.01, record("plain"), callback_group=ros.group("plain"))
    sut.add_node(node)
    me = threading.get_native_id()
    mine = (os.sched_getscheduler(me), os.getpriority(os.PRIO_PROCESS, me))
    spinning = Spinning(sut)
    try:
        assert both.wait(TIMEOUT), f"callbacks seen: {sorted(seen)}"
        threads = sut.threads()
        everything = os.sched_getaffinity(0)
        assert seen["rt"] == (threads["/cfg/n/rt"], os.SCHED_FIFO, 1, {cpu})
        assert _stat(threads["/cfg/n/rt"]) == {"nice": mine[1], "rt_priority": 1,
                                               "policy": os.SCHED_FIFO}
        assert seen["default"] == (threads["/cfg/n/default"], os.SCHED_OTHER, 0, everything)
        assert _stat(threads["/cfg/n/default"])["nice"] == 5
        assert seen["plain"] == (threads["/cfg/n/plain"], mine[0], 0, everything)
        assert _stat(threads["/cfg/n/plain"])["nice"] == mine[1]  # not configured: inherited
        assert (os.sched_getscheduler(me), os.getpriority(os.PRIO_PROCESS, me)) == mine
    finally:
        spinning.stop()


def test_spin_once_runs_one_callback_tasks_run_in_the_spinning_thread_errors_are_raised(ros):
    node = ros.node("once")
    ran = []
    fail = threading.Event()

    def on_tick():
        ran.append(threading.get_native_id())
        if fail.is_set():
            raise ValueError("tick failed")

    node.create_timer(0.01, on_tick, callback_group=ros.group("tick"))
    sut = ros.executor()
    sut.add_node(node)
    while not ran:
        sut.spin_once(TIMEOUT)
    assert set(ran) == {sut.threads()["/once/tick"]}
    task = sut.create_task(lambda: threading.get_native_id())
    sut.spin_until_future_complete(task, TIMEOUT)
    assert task.result() == threading.get_native_id()
    fail.set()
    with pytest.raises(ValueError, match="tick failed"):
        sut.spin_until_future_complete(ros.rclpy.task.Future(), TIMEOUT)


def test_names_are_checked_unique_within_a_node_and_listed_in_the_template(ros):
    from rclpy.callback_groups import ReentrantCallbackGroup

    with pytest.raises(agnoshm.ThreadConfigError, match="letters, digits and underscores"):
        agnoshm.ros.name_callback_group(ReentrantCallbackGroup(), "two words")
    named = ros.group("cam")
    with pytest.raises(agnoshm.ThreadConfigError, match="named 'cam' already"):
        agnoshm.ros.name_callback_group(named, "lidar")
    assert agnoshm.ros.name_callback_group(named, "cam") is named
    node = ros.node("tpl", namespace="/t")
    node.create_timer(1.0, lambda: None, callback_group=named)
    node.create_timer(1.0, lambda: None, callback_group=ReentrantCallbackGroup())
    sut = ros.executor()
    sut.add_node(node)
    text = sut.thread_config_template()
    assert "  /t/tpl/cam: {}  # timer 1 s" in text
    assert "  /t/tpl/default: {}" in text
    assert "# /t/tpl/<unnamed" in text and "agnoshm.ros.name_callback_group(group, ...)" in text
    node.create_timer(1.0, lambda: None, callback_group=ros.group("cam"))
    with pytest.raises(agnoshm.ThreadConfigError, match="two callback groups named 'cam'"):
        sut.spin_once(0)


def test_the_rclpy_example_of_docs_executors_runs(claimed_domains, tmp_path):
    text = (Path(__file__).resolve().parents[2] / "docs" / "executors.md").read_text()
    example = re.findall(r"```python\n(.*?)```", text, re.S)[1]
    assert "agnoshm.ros import CallbackIsolatedExecutor" in example
    (tmp_path / "example.py").write_text(example)
    domain = claimed_domains(ROS_DOMAIN_RANGE)  # both agnoshm's and DDS's
    result = subprocess.run([sys.executable, "example.py"], cwd=tmp_path,
                            env=child_env(ROS_DOMAIN_ID=str(domain)),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    ticks = re.search(r"^(\d+) control ticks on thread \{(\d+)\}; threads: (.*)$", result.stdout,
                      re.M)
    assert ticks and int(ticks[1]) >= 20, result.stdout
    images = set(re.findall(r"^image of 1024 B on thread (\d+)$", result.stdout, re.M))
    assert len(images) == 1 and images != {ticks[2]}, result.stdout
    assert "  /demo/robot/camera: {}  # agnoshm subscription /demo/image" in result.stdout
