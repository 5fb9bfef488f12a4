"""Fault injection: real SIGKILLs of real processes, then the registry, the survivors
and the shared objects are checked (DESIGN.md invariants 1, 4 and 6).

Every wait is on an event, a queue or a condition (``workers.wait_until``) under a
generous watchdog; nothing here measures time.  Dead processes are reaped by the
listener thread of a surviving process (every 0.5 s) or by the next registry
operation, whichever comes first, so the tests wait for the effect, not for a
particular reaper.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import signal
import stat
import subprocess
import sys

import pytest

import agnoshm
import fault_workers
import workers
from agnoshm import _libc
from agnoshm.config import load_config
from agnoshm.memory import memfd
from agnoshm.memory.shm import SHM
from agnoshm.names import memfd_socket_address, queue_name
from agnoshm.registry import layout as L
from agnoshm.registry import liveness
from agnoshm.registry.registry import Registry
from sources import child_cwd, child_env
from workers import TIMEOUT

TEST_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- helpers ----------------------------------------------------------------------------------


def _start(target, *args, **kwargs):
    process = workers.context().Process(target=target, args=args, kwargs=kwargs)
    process.start()
    return process


def _join_all(processes):
    for p in processes:
        p.join(TIMEOUT)
        assert p.exitcode == 0, f"{p.name} exited with {p.exitcode}"


def _kill(process) -> None:
    """SIGKILL a multiprocessing child and reap it (so its pid is really gone)."""
    os.kill(process.pid, signal.SIGKILL)
    process.join(TIMEOUT)
    assert process.exitcode == -signal.SIGKILL


def _registry():
    return agnoshm.context.get_runtime().registry


def _pool_path(pid: int) -> str:
    return f"/dev/shm/agnocast@{pid}"


def _registry_path(domain: int) -> str:
    return f"/dev/shm/agnoshm-registry-domain{domain}"


def _mq_exists(pid: int) -> bool:
    """Does POSIX message queue /new_publisher@<pid> exist? (needs no mqueue mount)"""
    try:
        mqd = _libc.mq_open(queue_name(pid).encode(), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC,
                            0, None)
    except FileNotFoundError:
        return False
    _libc.mq_close(mqd)
    return True


def _pool_socket_exists(domain: int, pid: int) -> bool:
    """Is the memfd pool socket of ``pid`` (abstract, so not in any directory) still bound?"""
    name = "@" + memfd_socket_address(pid, domain)[1:].decode()
    with open("/proc/net/unix") as f:
        return any(line.split()[-1] == name for line in f if len(line.split()) >= 8)


def _registered_pids(registry) -> list[int]:
    return [registry.processes[s].pid for s in registry.live_slots()]


def _gone(registry, domain: int, pid: int) -> bool:
    """Everything of dead process ``pid`` is reclaimed and the registry is consistent."""
    return (pid not in _registered_pids(registry)
            and not os.path.exists(_pool_path(pid))
            and not _mq_exists(pid)
            and not _pool_socket_exists(domain, pid)
            and registry.check_consistency() == [])


def _wait_reaped(registry, domain: int, pid: int) -> None:
    workers.wait_until(lambda: _gone(registry, domain, pid),
                       what=f"dead process {pid} to be reaped (pool, queue and records gone)")


def _publish(pub, publisher_id: int, counter: int, size: int) -> None:
    msg = pub.borrow_loaned_message()
    workers.fill(msg.alloc("data", size), publisher_id, counter)
    pub.publish(msg)


def _assert_nothing_left(domain: int, pids) -> None:
    for pid in pids:
        assert not os.path.exists(_pool_path(pid)), f"pool of {pid} left in /dev/shm"
        assert not _mq_exists(pid), f"queue /new_publisher@{pid} left"
    assert not os.path.exists(_registry_path(domain)), "registry left in /dev/shm"


def _exchange_with_new_child(node, topic: str, publisher_id: int, count: int = 5) -> None:
    """A publisher here and a subscriber in a new child still talk on ``topic``."""
    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    pub = node.create_publisher(agnoshm.Bytes, topic, 16)
    child = _start(workers.subscriber, [topic], 1, count, 16, ready, out)
    assert ready.wait(TIMEOUT)
    workers.wait_until(lambda: pub.get_subscription_count() >= 1, what="the new subscription")
    for i in range(count):
        _publish(pub, publisher_id, i, 128)
    kind, _pid, received = out.get(timeout=TIMEOUT)
    _join_all([child])
    assert [(m[0], m[1], m[3]) for m in received[(topic, 0)]] == [
        (publisher_id, i, True) for i in range(count)]
    node.destroy_publisher(pub)


# -- 1. kill -9 of a publisher -------------------------------------------------------------


def test_kill_9_of_a_publisher_leaves_subscribers_running(isolated_domain, backend):
    domain = isolated_domain
    ctx = workers.context()
    node = agnoshm.Node("survivor")
    registry = _registry()
    topic, new_id, new_count = "/fragile", 2, 50
    watch_out = ctx.Queue()
    watch_ready = [ctx.Event() for _ in range(2)]
    watchers = [_start(fault_workers.watch_topic, topic, 64, new_id, new_count, r, watch_out)
                for r in watch_ready]
    for r in watch_ready:
        assert r.wait(TIMEOUT)
    doomed_ready, doomed_out = ctx.Event(), ctx.Queue()
    doomed = _start(fault_workers.publish_until_killed, topic, 1, 256, 8, 200, doomed_ready,
                    doomed_out)
    assert doomed_out.get(timeout=TIMEOUT)[:2] == ("publishing", doomed.pid)
    firsts = [watch_out.get(timeout=TIMEOUT) for _ in watchers]
    assert sorted((f[0], f[1], f[2]) for f in firsts) == sorted(
        ("first", w.pid, 1) for w in watchers), "both subscribers received the doomed publisher"
    if backend == "shm":
        assert os.path.exists(_pool_path(doomed.pid))
    assert _mq_exists(doomed.pid)

    _kill(doomed)  # at whatever instruction it was: quite likely inside publish()
    _wait_reaped(registry, domain, doomed.pid)

    pub = node.create_publisher(agnoshm.Bytes, topic, 64)
    workers.wait_until(lambda: pub.get_subscription_count() == 2,
                       what="the surviving subscriptions")
    for i in range(new_count):
        _publish(pub, new_id, i, 256)
    reports = [watch_out.get(timeout=TIMEOUT) for _ in range(2 * len(watchers))]
    _join_all(watchers)
    assert sorted(r[1] for r in reports if r[0] == "first" and r[2] == new_id) == sorted(
        w.pid for w in watchers)
    done = [r for r in reports if r[0] == "done"]
    assert len(done) == len(watchers)
    for _kind, _pid, summary, torn in done:
        assert torn == [], "a subscriber read a torn message"
        assert summary[new_id] == (new_count, True, list(range(new_count)))
        assert summary[1][1], "messages of the dead publisher arrived out of order"
    assert registry.check_consistency() == []
    node.destroy_node()
    agnoshm.shutdown()
    _assert_nothing_left(domain, [doomed.pid, os.getpid()] + [w.pid for w in watchers])


def test_a_held_message_of_a_dead_publisher_stays_apart_from_its_reused_record(
        isolated_domain, backend):
    """Publisher records are reused across topics, and every topic counts its sequence
    numbers from 1: releasing a message of a dead publisher must not release the
    message that now has the same (record, entry, seq) on another topic."""
    domain = isolated_domain
    ctx = workers.context()
    node = agnoshm.Node("holder")
    registry = _registry()
    sub_a = node.create_polling_subscription(agnoshm.Bytes, "/a", 8)
    sub_b = node.create_polling_subscription(agnoshm.Bytes, "/b", 8)
    ready, start, out, finish = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Event()
    doomed = _start(fault_workers.publish_on_go, "/a", 1, 1, 4096, 4, ready, start, out, finish)
    assert ready.wait(TIMEOUT)
    start.set()
    assert out.get(timeout=TIMEOUT) == ("publishing", doomed.pid)
    assert out.get(timeout=TIMEOUT) == ("published", doomed.pid, 1)
    workers.wait_until(sub_a.has_data, what="the doomed publisher's message")
    held_a = sub_a.take()
    array_a = held_a.data
    dead_index = registry.publisher_indices(registry.find_topic("/a"))[0]
    _kill(doomed)
    _wait_reaped(registry, domain, doomed.pid)
    assert workers.read_header(array_a) == (1, 0) and workers._valid(array_a)

    pub_b = node.create_publisher(agnoshm.Bytes, "/b", 2)
    assert pub_b._port.index == dead_index, "precondition: the dead publisher's record is reused"
    _publish(pub_b, 2, 0, 4096)
    held_b = sub_b.take()
    array_b = held_b.data
    del held_a, array_a  # releases the dead publisher's message ...
    for i in range(1, 10):  # ... and must not let /b's publisher reuse the one still held
        _publish(pub_b, 2, i, 4096)
    assert workers.read_header(array_b) == (2, 0) and workers._valid(array_b), \
        "a held message was overwritten: its reference was dropped by another topic's release"
    del held_b, array_b
    pub_b._port.reclaim()
    assert pub_b._port.held_count() == 0
    assert registry.check_consistency() == []
    # ``finish`` stays unset: the dead process was waiting on it, and a multiprocessing
    # Event.set() waits for its sleepers to wake up, which a dead one never does
    node.destroy_node()
    agnoshm.shutdown()
    _assert_nothing_left(domain, [doomed.pid, os.getpid()])


# -- 2. kill -9 of a subscriber that holds messages --------------------------------------------


def test_kill_9_of_a_subscriber_holding_messages_releases_them(isolated_domain, backend):
    domain = isolated_domain
    depth, hold, size = 8, 20, 16 << 10
    node = agnoshm.Node("talker")
    pub = node.create_publisher(agnoshm.Bytes, "/held", depth)
    runtime = agnoshm.context.get_runtime()
    registry, allocator, port = runtime.registry, runtime.allocator, pub._port
    counter = iter(range(1 << 30))
    for _ in range(depth):
        _publish(pub, 0, next(counter), size)
    baseline = allocator.used_bytes  # ``depth`` live messages, nothing held
    committed = allocator.committed_bytes
    per_message = baseline // depth
    slack = per_message  # the publisher may keep a few small blocks aside for its next loans

    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    holder = _start(workers.hold_received_then_wait, "/held", hold, ready, out)
    assert ready.wait(TIMEOUT)
    workers.wait_until(lambda: pub.get_subscription_count() == 1, what="the holder's subscription")
    for _ in range(hold):  # one at a time, so the holder takes every one
        _publish(pub, 0, next(counter), size)
        workers.wait_until(lambda: port.unread_subscriptions() == 0, what="the holder to take it")
    assert out.get(timeout=TIMEOUT) == ("holding", holder.pid, hold)
    for _ in range(1000):
        _publish(pub, 0, next(counter), size)
    port.reclaim()
    assert port.held_count() == hold, "held messages must stay while their holder lives"
    assert abs(allocator.used_bytes - (baseline + hold * per_message)) <= slack

    _kill(holder)
    for _ in range(1000):  # publishing goes on while the dead holder is reaped
        _publish(pub, 0, next(counter), size)
    workers.wait_until(lambda: _gone(registry, domain, holder.pid),
                       what="the dead holder to be reaped")
    workers.wait_until(lambda: port.reclaim() or port.held_count() == 0,
                       what="the dead holder's messages to be freed")
    assert allocator.used_bytes <= baseline + slack
    for _ in range(1000):  # and memory keeps being reused, not grown
        _publish(pub, 0, next(counter), size)
        # (plus the message this publish withdrew: the next loan frees it)
        assert allocator.used_bytes <= baseline + per_message + slack
    assert allocator.committed_bytes == committed, "the pool grew: memory was not reused"
    assert registry.check_consistency() == []
    node.destroy_node()
    agnoshm.shutdown()
    _assert_nothing_left(domain, [holder.pid, os.getpid()])


# -- 3. kill -9 while holding the registry's global lock ---------------------------------------


def test_kill_9_while_holding_the_registry_lock(isolated_domain, backend):
    domain = isolated_domain
    ctx = workers.context()
    node = agnoshm.Node("survivor")
    registry = _registry()
    sub = node.create_polling_subscription(agnoshm.Bytes, "/before", 8)
    ready, out = ctx.Event(), ctx.Queue()
    holder = _start(workers.hold_registry_lock_then_wait, ready, out)
    assert out.get(timeout=TIMEOUT) == ("locked", holder.pid)
    assert ready.wait(TIMEOUT)
    repairs = registry.header.repairs

    _kill(holder)
    pub = node.create_publisher(agnoshm.Bytes, "/before", 8)  # the lock is usable again
    assert registry.header.repairs > repairs
    _publish(pub, 3, 0, 64)
    msg = sub.take()
    assert workers.read_header(msg.data) == (3, 0)
    del msg
    _wait_reaped(registry, domain, holder.pid)
    _exchange_with_new_child(node, "/after", 4)
    assert registry.check_consistency() == []
    node.destroy_node()
    agnoshm.shutdown()
    _assert_nothing_left(domain, [holder.pid, os.getpid()])


@pytest.mark.parametrize("point", ["add_publisher", "add_subscription", "mid_leave", "after_leave"])
def test_kill_9_at_a_chosen_point_of_a_registry_operation(isolated_domain, backend, point):
    domain = isolated_domain
    ctx = workers.context()
    node = agnoshm.Node("survivor")
    registry = _registry()
    mine = node.create_polling_subscription(agnoshm.Bytes, "/mine", 8)
    ready, out = ctx.Event(), ctx.Queue()
    child = _start(fault_workers.die_inside_registry, point, "/dying", ready, out)
    assert out.get(timeout=TIMEOUT)[:3] == ("paused", child.pid, point)
    assert ready.wait(TIMEOUT)
    repairs = registry.header.repairs

    _kill(child)
    _wait_reaped(registry, domain, child.pid)
    if point != "after_leave":  # it died holding the global lock
        assert registry.header.repairs > repairs
    assert registry.find_topic("/dying") == -1, "the dead process's topic was not freed"
    assert registry.find_topic("/dying_other") == -1
    # this process's own endpoint survived, and the domain carries on on the same topic
    own = registry.find_topic("/mine")
    assert own >= 0 and registry.topics[own].n_subscriptions == 1
    _exchange_with_new_child(node, "/dying", 5)
    assert registry.check_consistency() == []
    node.destroy_subscription(mine)
    node.destroy_node()
    agnoshm.shutdown()
    _assert_nothing_left(domain, [child.pid, os.getpid()])


def test_kill_9_of_the_last_process_while_it_removes_the_registry(isolated_domain, backend):
    """The last process marks the registry closed, then unlinks it; killed in between it
    must not wedge the domain for every later process."""
    domain = isolated_domain
    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    child = _start(fault_workers.die_inside_registry, "closing_registry", "/last", ready, out)
    assert out.get(timeout=TIMEOUT)[:3] == ("paused", child.pid, "closing_registry")
    assert ready.wait(TIMEOUT)
    _kill(child)
    assert os.path.exists(_registry_path(domain))  # closed, never unlinked
    node = agnoshm.Node("next")  # the domain is usable again
    registry = _registry()
    assert registry.live_slots() == [registry.own_slot]
    _exchange_with_new_child(node, "/last", 8)
    assert registry.check_consistency() == []
    node.destroy_node()
    agnoshm.shutdown()
    _assert_nothing_left(domain, [child.pid, os.getpid()])


# -- 4. kill -9 while holding a topic lock ------------------------------------------------------


def test_kill_9_while_holding_a_topic_lock(isolated_domain, backend):
    """Messages flow while another process holds the topic's lock (the message path takes
    none), and the next endpoint change after that process is killed repairs the lock."""
    domain = isolated_domain
    ctx = workers.context()
    topic, count = "/locked", 50
    node = agnoshm.Node("survivor")
    registry = _registry()
    sub = node.create_polling_subscription(agnoshm.Bytes, topic, 64)
    pub_ready, start, pub_out, finish = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Event()
    publisher = _start(fault_workers.publish_on_go, topic, 6, count, 512, count, pub_ready, start,
                       pub_out, finish)
    assert pub_ready.wait(TIMEOUT)
    lock_ready, lock_out = ctx.Event(), ctx.Queue()
    locker = _start(fault_workers.hold_topic_lock_then_wait, topic, lock_ready, lock_out)
    kind, pid, topic_index = lock_out.get(timeout=TIMEOUT)
    assert (kind, pid, topic_index) == ("locked", locker.pid, registry.find_topic(topic))
    assert lock_ready.wait(TIMEOUT)
    start.set()
    assert pub_out.get(timeout=TIMEOUT) == ("publishing", publisher.pid)
    received = []

    def take_all():
        msg = sub.take()
        while msg is not None:
            received.append(workers.read_header(msg.data) + (workers._valid(msg.data),))
            msg = sub.take()
        return len([r for r in received if r[0] == 6]) >= count

    workers.wait_until(take_all, what="the other process's messages while the lock is held")
    assert pub_out.get(timeout=TIMEOUT) == ("published", publisher.pid, count)
    assert [r for r in received if r[0] == 6] == [(6, i, True) for i in range(count)]
    repairs = registry.header.repairs
    _kill(locker)
    own_pub = node.create_publisher(agnoshm.Bytes, topic, 8)  # takes the dead owner's lock
    assert registry.header.repairs > repairs
    _publish(own_pub, 7, 0, 64)  # this process publishes on the topic too
    msg = sub.take()
    assert workers.read_header(msg.data) == (7, 0)
    del msg
    _wait_reaped(registry, domain, locker.pid)
    finish.set()
    _join_all([publisher])
    assert registry.check_consistency() == []
    node.destroy_node()
    agnoshm.shutdown()
    _assert_nothing_left(domain, [locker.pid, publisher.pid, os.getpid()])


# -- 5. pid reuse ---------------------------------------------------------------------------------


def _forge(registry, slot: int, pid: int, start_time: int) -> None:
    """Register a process record by hand, as ``Registry.join`` would."""
    with registry.lock:
        p = registry.processes[slot]
        assert p.state == L.FREE
        registry.header.incarnations += 1
        p.pid = pid
        p.start_time = start_time
        p.incarnation = registry.header.incarnations
        p.backend = SHM.code
        p.uid = os.getuid()
        p.pool_address = registry.header.base_address + slot * registry.header.pool_size
        p.pool_size = registry.header.pool_size
        p.name = b"forged"
        p.state = L.USED
        registry.header.live_processes += 1
        registry.header.generation += 1


def test_pid_reuse_is_not_mistaken_for_a_live_process(isolated_domain):
    """A bare registry handle (no runtime, so no listener thread reaps behind our back)."""
    registry = Registry(load_config())
    own = registry.join(os.getpid(), "shm", "forger")
    forger_fd = _libc.shm_open(registry.name.encode(), os.O_RDWR | os.O_CLOEXEC, 0)  # own OFD
    sleeper = subprocess.Popen(["sleep", "1000"])
    gone = subprocess.Popen(["sleep", "1000"])
    try:
        sleeper_start = liveness.process_start_time(sleeper.pid)
        gone_start = liveness.process_start_time(gone.pid)
        gone.kill()
        gone.wait()
        assert not liveness.pid_matches(gone.pid, gone_start)
        reused, unlocked, vanished, alive = [s for s, p in enumerate(registry.processes)
                                             if p.state == L.FREE][:4]

        def hold_liveness_lock(slot):
            assert liveness.try_lock_byte(forger_fd, L.LIVENESS_LOCK_BASE + slot)

        # a live pid whose start time is not the recorded one: the pid was reused
        _forge(registry, reused, sleeper.pid, sleeper_start + 1)
        hold_liveness_lock(reused)
        # the right pid and start time, but nobody holds the slot's liveness lock
        _forge(registry, unlocked, sleeper.pid, sleeper_start)
        # the lock is held (a fork child could share it), but the pid is gone
        _forge(registry, vanished, gone.pid, gone_start)
        hold_liveness_lock(vanished)
        # both checks pass: alive
        _forge(registry, alive, sleeper.pid, sleeper_start)
        hold_liveness_lock(alive)
        reaped_before = registry.header.reaped

        assert sorted(registry.reap_dead()) == sorted([sleeper.pid, sleeper.pid, gone.pid])
        assert [registry.processes[s].state for s in (reused, unlocked, vanished)] == [L.FREE] * 3
        assert registry.processes[alive].state == L.USED
        assert registry.processes[own].state == L.USED
        assert registry.header.reaped == reaped_before + 3
        assert registry.check_consistency() == []
        for _ in range(10):
            assert registry.reap_dead() == []
        assert registry.processes[alive].state == L.USED

        liveness.unlock_byte(forger_fd, L.LIVENESS_LOCK_BASE + alive)  # it "dies"
        assert registry.reap_dead() == [sleeper.pid]
        assert registry.processes[alive].state == L.FREE
        os.close(forger_fd)
        forger_fd = -1

        # a real live agnoshm process is never reaped, by us or by itself
        ctx = workers.context()
        ready, out, finish = ctx.Event(), ctx.Queue(), ctx.Event()
        child = _start(fault_workers.join_and_wait, ready, out, finish)
        kind, pid, slot = out.get(timeout=TIMEOUT)
        assert ready.wait(TIMEOUT)
        for _ in range(20):
            assert registry.reap_dead() == []
            assert registry.is_alive(slot) and registry.processes[slot].pid == child.pid
        assert registry.check_consistency() == []
        finish.set()
        _join_all([child])
        assert registry.processes[slot].state == L.FREE
        assert registry.header.live_processes == 1
    finally:
        if forger_fd >= 0:
            os.close(forger_fd)
        sleeper.kill()
        sleeper.wait()
        registry.leave(own)
        registry.close()
    assert not os.path.exists(_registry_path(isolated_domain))



_OTHER_DOMAIN_PROCESS = """
import sys
import agnoshm
node = agnoshm.Node("elsewhere")
node.create_subscription(agnoshm.Bytes, "/t", lambda msg: None, 1)
print("ready", flush=True)
sys.stdin.readline()
agnoshm.shutdown()
"""


def test_reaping_a_reused_pid_spares_the_pool_and_queue_of_its_new_owner(isolated_domain,
                                                                          claimed_domains):
    """Names carry the pid, not the domain: when a dead record's pid now belongs to a live
    agnoshm process of another domain, that process's pool and queue stay."""
    env = child_env(ROS_DOMAIN_ID=str(claimed_domains()))
    other = subprocess.Popen([sys.executable, "-c", _OTHER_DOMAIN_PROCESS], env=env,
                             cwd=child_cwd(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    registry = Registry(load_config())
    own = registry.join(os.getpid(), "shm", "reaper")
    try:
        assert other.stdout.readline() == "ready\n"
        pool = f"/dev/shm/agnocast@{other.pid}"
        assert os.path.exists(pool) and _mq_exists(other.pid)
        slot = next(s for s, p in enumerate(registry.processes) if p.state == L.FREE)
        start = liveness.process_start_time(other.pid)
        _forge(registry, slot, other.pid, start - 1)  # an earlier process with that pid died
        assert registry.reap_dead() == [other.pid]
        assert os.path.exists(pool) and _mq_exists(other.pid)
        assert registry.check_consistency() == []
        other.stdin.write("done\n")
        other.stdin.flush()
        assert other.wait(TIMEOUT) == 0
        assert not os.path.exists(pool) and not _mq_exists(other.pid)
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
        registry.leave(own)
        registry.close()


# -- 6. nothing is left behind --------------------------------------------------------------------


def _mq_mode(pid: int) -> int:
    """Permission bits of /new_publisher@<pid> (a queue descriptor is a file descriptor on
    Linux: fstat works without the mqueue mount)."""
    mqd = _libc.mq_open(queue_name(pid).encode(), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC,
                        0, None)
    try:
        return stat.S_IMODE(os.fstat(mqd).st_mode)
    finally:
        _libc.mq_close(mqd)


def test_shutdown_leaves_nothing_behind(isolated_domain, backend):
    domain = isolated_domain
    pid = os.getpid()
    for _round in range(2):  # and agnoshm starts again after a shutdown
        node = agnoshm.Node("tidy")
        pub = node.create_publisher(agnoshm.Bytes, "/tidy", 4)
        sub = node.create_polling_subscription(agnoshm.Bytes, "/tidy", 4)
        pub.publish(b"x" * 100)
        assert bytes(sub.take().data) == b"x" * 100
        assert os.path.exists(_pool_path(pid)) == (backend == "shm")
        assert os.path.exists(_registry_path(domain))
        assert _mq_mode(pid) == 0o600
        agnoshm.shutdown()
        assert not _mq_exists(pid)
        _assert_nothing_left(domain, [pid])


_PLAIN_PROCESS = """
import os, sys
import agnoshm
node = agnoshm.Node("plain")
pub = node.create_publisher(agnoshm.Bytes, "/plain", 4)
pub.publish(b"hello")
print(os.getpid(), flush=True)
sys.stdin.read()  # until the test closes our stdin; then exit normally (atexit shuts down)
"""


def _plain_process():
    process = subprocess.Popen([sys.executable, "-c", _PLAIN_PROCESS], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, env=child_env(TEST_DIR), cwd=child_cwd(),
                               text=True)
    pid = int(process.stdout.readline())
    assert pid == process.pid
    return process


def test_a_process_exiting_normally_leaves_nothing_behind(isolated_domain, backend):
    domain = isolated_domain
    process = _plain_process()
    try:
        assert _mq_mode(process.pid) == 0o600
        if backend == "shm":
            assert stat.S_IMODE(os.stat(_pool_path(process.pid)).st_mode) == 0o600
        else:
            assert not os.path.exists(_pool_path(process.pid))
            assert _pool_socket_exists(domain, process.pid)
    finally:
        process.stdin.close()
        assert process.wait(TIMEOUT) == 0
        process.stdout.close()
    assert not _mq_exists(process.pid)
    assert not _pool_socket_exists(domain, process.pid)
    _assert_nothing_left(domain, [process.pid])


def test_kill_9_then_reaping_leaves_nothing_behind(isolated_domain, backend):
    domain = isolated_domain
    node = agnoshm.Node("reaper")
    registry = _registry()
    process = _plain_process()
    try:
        assert _mq_mode(process.pid) == 0o600
        assert os.path.exists(_pool_path(process.pid)) == (backend == "shm")
        process.kill()
        process.wait(TIMEOUT)
    finally:
        process.stdin.close()
        process.stdout.close()
    _wait_reaped(registry, domain, process.pid)
    assert not _mq_exists(process.pid)
    node.destroy_node()
    agnoshm.shutdown()
    _assert_nothing_left(domain, [process.pid, os.getpid()])


def test_the_next_process_cleans_up_after_the_last_one_was_killed(isolated_domain, backend):
    domain = isolated_domain
    process = _plain_process()  # alone in the domain
    process.kill()
    process.wait(TIMEOUT)
    process.stdin.close()
    process.stdout.close()
    # nobody was left to reap it: its objects and the registry are still there
    assert os.path.exists(_registry_path(domain))
    assert _mq_exists(process.pid)
    assert os.path.exists(_pool_path(process.pid)) == (backend == "shm")
    node = agnoshm.Node("next")  # joining reaps the dead
    registry = _registry()
    assert _gone(registry, domain, process.pid)
    assert registry.header.reaped == 1
    node.destroy_node()
    agnoshm.shutdown()
    _assert_nothing_left(domain, [process.pid, os.getpid()])


# -- 7. names, modes and seals -------------------------------------------------------------------


def test_pool_and_registry_names_and_modes(isolated_domain, backend):
    domain = isolated_domain
    pid = os.getpid()
    node = agnoshm.Node("named")
    runtime = agnoshm.context.get_runtime()
    assert stat.S_IMODE(os.stat(_registry_path(domain)).st_mode) == 0o600
    if backend == "shm":
        st = os.stat(_pool_path(pid))
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_size == runtime.pool_size
    else:
        assert not [name for name in os.listdir("/dev/shm") if name.startswith("agnocast@")
                    and name.endswith(f"@{pid}")]
        links = [os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")
                 if fault_workers._readlink(f"/proc/{pid}/fd/{n}").startswith("/memfd:")]
        assert f"/memfd:agnocast@{pid} (deleted)" in links
        seals = fcntl.fcntl(runtime.pool.fd, _libc.F_GET_SEALS)
        assert seals & memfd.SEALS == memfd.SEALS
        # sealed against the owner too: no new writable mapping, no write()
        with pytest.raises(PermissionError):
            mmap.mmap(runtime.pool.fd, mmap.PAGESIZE, flags=mmap.MAP_SHARED,
                      prot=mmap.PROT_READ | mmap.PROT_WRITE)
        with pytest.raises(PermissionError):
            os.pwrite(runtime.pool.fd, b"x", 0)
    node.destroy_node()


def test_a_subscriber_cannot_get_write_access_to_a_pool(isolated_domain, backend):
    ctx = workers.context()
    node = agnoshm.Node("owner")
    pub = node.create_publisher(agnoshm.Bytes, "/sealed", 4)
    ready, out, finish = ctx.Event(), ctx.Queue(), ctx.Event()
    child = _start(fault_workers.probe_write_access, "/sealed", os.getpid(), ready, out, finish)
    assert ready.wait(TIMEOUT)
    workers.wait_until(lambda: pub.get_subscription_count() == 1, what="the prober's subscription")
    msg = pub.borrow_loaned_message()
    data = msg.alloc("data", 4096)
    workers.fill(data, 9, 0)
    pub.publish(msg)
    kind, pid, report = out.get(timeout=TIMEOUT)
    finish.set()
    _join_all([child])
    assert report["content"] == bytes(data[:16])
    # the received mapping can never be made writable
    assert report["mprotect"] == errno.EACCES
    if backend == "memfd":
        assert report["passed_link"] == f"/memfd:agnocast@{os.getpid()} (deleted)"
        for prefix in ("passed_", "reopened_"):
            if prefix == "reopened_":
                assert report["proc_fds"], "no memfd agnocast@<pid> in /proc/<publisher>/fd"
                if report["reopen"]:  # refused outright: not writable either
                    assert report["reopen"] in (errno.EACCES, errno.EPERM)
                    continue
            assert report[prefix + "seals"] & memfd.SEALS == memfd.SEALS, prefix
            assert report[prefix + "mmap_write"] == errno.EPERM, prefix
            assert report[prefix + "write"] == errno.EPERM, prefix
            assert report[prefix + "mprotect"] == errno.EACCES, prefix
    node.destroy_node()
