"""The registry: created race-free, validated, left by its last process, consistent."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
from sources import child_cwd, child_env
from workers import TIMEOUT

import agnoshm
from agnoshm import _libc
from agnoshm.config import Config
from agnoshm.errors import (
    LimitReachedError,
    RegistryCorruptedError,
    RegistryError,
    RegistryVersionError,
    TypeMismatchError,
)
from agnoshm.names import pool_name, registry_name
from agnoshm.registry import layout as L
from agnoshm.registry.registry import Registry, open_and_join

SMALL = dict(max_processes=16, max_topics=8, max_publishers=8, max_subscriptions=8,
             max_entries=4, pool_size=2 << 20)
HASH_A = "RIHS01_" + "a" * 64
HASH_B = "RIHS01_" + "b" * 64


def registry_path(domain: int) -> str:
    return f"/dev/shm{registry_name(domain)}"


def unlink_registry(domain: int) -> None:
    try:
        _libc.shm_unlink(registry_name(domain).encode())
    except FileNotFoundError:
        pass


@pytest.fixture
def config(isolated_domain):
    yield Config(domain_id=isolated_domain, **SMALL)
    unlink_registry(isolated_domain)  # tests that only open (never join) leave it behind


@pytest.fixture
def joined(config):
    """Two handles of this process on one registry, each joined (two slots)."""
    handles = []
    for name in ("first", "second"):
        registry = Registry(config)
        registry.join(os.getpid(), "shm", name)
        handles.append(registry)
    yield handles
    for registry in handles:
        if registry.address and registry.own_slot >= 0:
            registry.leave(registry.own_slot)
        registry.close()


# -- creation ------------------------------------------------------------------------------------

_RACER = """
    import os, sys
    from agnoshm.config import Config
    from agnoshm.registry.registry import Registry

    config = Config(domain_id=int(sys.argv[1]), **eval(sys.argv[2]))
    print("ready", flush=True)
    sys.stdin.readline()  # "go": every racer opens at once
    registry = Registry(config)
    slot = registry.join(os.getpid(), "shm", "racer")
    print("joined", slot, flush=True)
    sys.stdin.readline()  # "leave"
    last = registry.leave(slot)
    registry.close()
    print("left", last, flush=True)
"""


def test_eight_processes_creating_one_registry_at_once_get_one_header_and_distinct_slots(config):
    racers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(_RACER),
                                str(config.domain_id), repr(SMALL)], env=child_env(),
                               cwd=child_cwd(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
              for _ in range(8)]
    watchdog = threading.Timer(TIMEOUT, lambda: [r.kill() for r in racers])  # deadlock only
    watchdog.start()
    try:
        assert [r.stdout.readline().split() for r in racers] == [["ready"]] * 8
        assert not os.path.exists(registry_path(config.domain_id))
        for r in racers:
            r.stdin.write("go\n")
            r.stdin.flush()
        replies = [r.stdout.readline().split() for r in racers]
        assert all(reply[0] == "joined" for reply in replies), replies
        slots = sorted(int(reply[1]) for reply in replies)
        assert slots == list(range(8))
        sut = Registry(config)
        try:
            header = sut.header
            assert (header.magic, header.layout_version) == (L.MAGIC, L.LAYOUT_VERSION)
            assert header.live_processes == 8
            assert header.incarnations == 8, "a late initializer wiped joins"
            assert sorted(sut.live_slots()) == slots
            assert sorted(p.pid for p in sut.processes if p.state == L.USED) == \
                sorted(r.pid for r in racers)
            assert sut.check_consistency() == []
        finally:
            sut.close()
        for r in racers:
            r.stdin.write("leave\n")
            r.stdin.flush()
        lasts = [r.stdout.readline().split() for r in racers]
        assert sorted(lasts) == sorted([["left", "False"]] * 7 + [["left", "True"]])
    finally:
        for r in racers:
            r.stdin.close()
            r.wait(TIMEOUT)
        watchdog.cancel()
    assert [r.returncode for r in racers] == [0] * 8
    assert not os.path.exists(registry_path(config.domain_id))


def test_new_registry_has_a_valid_header_with_the_creators_capacities(config):
    sut = Registry(config)
    try:
        h = sut.header
        assert (h.magic, h.layout_version, h.state) == (L.MAGIC, L.LAYOUT_VERSION, L.REGISTRY_READY)
        assert (h.domain_id, h.max_processes, h.max_entries, h.pool_size) == (
            config.domain_id, 16, 4, 2 << 20)
        assert h.total_size == sut.size == os.fstat(sut._fd).st_size
        assert os.stat(registry_path(config.domain_id)).st_mode & 0o777 == 0o600
    finally:
        sut.close()


def test_an_opener_with_other_capacities_uses_the_header_ones(config):
    first = Registry(config)
    second = Registry(Config(domain_id=config.domain_id, max_processes=64))
    try:
        assert second.header.max_processes == 16
        assert len(second.processes) == 16 and second.size == first.size
    finally:
        second.close()
        first.close()


# -- foreign and incompatible registries -----------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"garbage!" * 2048, b"x"], ids=["long", "short"])
def test_a_registry_with_a_foreign_magic_raises_registry_corrupted(config, garbage):
    with open(registry_path(config.domain_id), "wb") as f:
        f.write(garbage)
    with pytest.raises(RegistryCorruptedError) as info:
        Registry(config)
    message = str(info.value)
    assert registry_path(config.domain_id) in message and "agnoshm clean" in message
    with open(registry_path(config.domain_id), "rb") as f:
        assert f.read() == garbage, "a foreign object was modified"


def test_a_registry_of_another_layout_version_raises_registry_version_error(config):
    creator = Registry(config)
    creator.header.layout_version = L.LAYOUT_VERSION + 98
    creator.close()
    with pytest.raises(RegistryVersionError) as info:
        Registry(config)
    message = str(info.value)
    assert f"layout version {L.LAYOUT_VERSION + 98}" in message
    assert f"uses {L.LAYOUT_VERSION}" in message
    assert "same agnoshm version" in message and "ROS_DOMAIN_ID" in message
    assert isinstance(info.value, RegistryError)


def test_a_registry_whose_header_disagrees_with_its_size_raises_registry_corrupted(config):
    creator = Registry(config)
    creator.header.max_entries = 60000  # tables would run past the end of the object
    creator.close()
    with pytest.raises(RegistryCorruptedError, match="inconsistent"):
        Registry(config)


_HALF_CREATED = """
    import os, sys
    from agnoshm.config import Config
    from agnoshm.registry.registry import Registry

    config = Config(domain_id=int(sys.argv[1]))
    registry = Registry(config)
    registry.join(os.getpid(), "shm", "after-a-crash")
    print(registry.check_consistency(), registry.size, flush=True)
    registry.leave(registry.own_slot)
    registry.close()
"""


def test_an_object_left_by_a_creator_that_died_before_the_header_is_initialized_anew(config):
    small = L.Offsets(dataclasses.replace(config, max_processes=2, max_topics=1, max_publishers=1,
                                          max_subscriptions=1, max_entries=1)).total_size
    with open(registry_path(config.domain_id), "wb") as f:
        f.truncate(small)  # sized by a creator with other capacities, which died before the header
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(_HALF_CREATED),
                             str(config.domain_id)], env=child_env(), cwd=child_cwd(),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("[] ")


# -- joining and leaving ----------------------------------------------------------------------------


def test_the_last_process_leaving_unlinks_the_registry(joined, config):
    first, second = joined
    assert first.leave(first.own_slot) is False
    assert os.path.exists(registry_path(config.domain_id))
    assert second.check_consistency() == []
    assert second.leave(second.own_slot) is True
    assert not os.path.exists(registry_path(config.domain_id))


def test_a_handle_opened_before_the_registry_closed_cannot_join_it(joined, config):
    first, second = joined
    stale = Registry(config)
    try:
        first.leave(first.own_slot)
        second.leave(second.own_slot)
        with pytest.raises(RegistryError):
            stale.join(os.getpid(), "shm", "late")
    finally:
        stale.close()
    sut, slot = open_and_join(config, os.getpid(), "shm", "later")  # a new registry instead
    try:
        assert sut.header.live_processes == 1 and sut.header.incarnations == 1
        assert sut.check_consistency() == []
    finally:
        sut.leave(slot)
        sut.close()
    assert not os.path.exists(registry_path(config.domain_id))


def test_joins_beyond_max_processes_raise_limit_reached(config):
    small = Config(domain_id=config.domain_id, **dict(SMALL, max_processes=2))
    handles = [Registry(small) for _ in range(3)]
    try:
        handles[0].join(os.getpid(), "shm", "a")
        handles[1].join(os.getpid(), "shm", "b")
        with pytest.raises(LimitReachedError, match="AGNOSHM_MAX_PROCESSES"):
            handles[2].join(os.getpid(), "shm", "c")
        assert handles[2].check_consistency() == []
    finally:
        for h in handles[:2]:
            h.leave(h.own_slot)
        for h in handles:
            h.close()


def test_a_process_that_died_registered_is_reaped_with_its_pool(joined, config):
    first, _ = joined
    child = os.fork()
    if child == 0:  # join, leave a pool object behind, die without leaving
        try:
            registry = Registry(config)
            registry.join(os.getpid(), "shm", "doomed")
            fd = _libc.shm_open(pool_name(os.getpid()).encode(), os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    problems = first.check_consistency()
    assert any(f"pid {child}" in p and "dead" in p for p in problems), problems
    assert first.reap_dead() == [child]
    assert not os.path.exists(f"/dev/shm{pool_name(child)}")
    assert first.check_consistency() == []
    assert first.header.reaped == 1 and first.header.live_processes == 2



def _fork_joined(config, name: str) -> tuple[int, int]:
    """A child process that joins the registry and waits to be killed; (pid, its slot)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            registry = Registry(config)
            os.write(write_end, str(registry.join(os.getpid(), "shm", name)).encode())
            while True:
                signal.pause()
        finally:
            os._exit(1)
    os.close(write_end)
    try:
        return pid, int(os.read(read_end, 16))  # the child's one write, or b"" if it died
    finally:
        os.close(read_end)


def test_housekeeping_checks_the_successors_up_to_the_first_live_one(joined, config):
    """Every process watches the processes after it in slot order (wrapping round), so a
    pass costs one liveness check, not one per process, and each dead process still has
    a watcher: its nearest live predecessor."""
    first, second = joined
    children = sorted((_fork_joined(config, f"child{i}") for i in range(4)),
                      key=lambda child: child[1])  # slots are handed out oldest-freed first
    (a, a_slot), (b, _), (c, _), (d, d_slot) = children
    as_a = Registry(config)  # what a's housekeeping sees (same table, a's slot)
    as_a.own_slot = a_slot
    checked = []
    is_alive = first.is_alive
    first.is_alive = lambda slot: checked.append(slot) or is_alive(slot)
    try:
        assert first.own_slot < second.own_slot < a_slot
        assert first.reap_successors() == [] and checked == [second.own_slot]
        for pid in (b, c):  # two neighbours die: a, the live one before them, reaps both
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        checked.clear()
        assert first.reap_successors() == [] and checked == [second.own_slot]
        assert sorted(as_a.reap_successors()) == sorted([b, c])
        assert first.check_consistency() == [] and first.header.live_processes == 4
        os.kill(d, signal.SIGKILL)  # now a's successor
        os.waitpid(d, 0)
        assert as_a.reap_successors() == [d]
        as_d = Registry(config)  # the last slot's successor wraps round to the first
        as_d.own_slot = d_slot
        assert as_d.reap_successors() == []
        as_d.close()
        assert first.check_consistency() == [] and first.header.live_processes == 3
    finally:
        as_a.close()
        for pid, _slot in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass

# -- topics and endpoints ---------------------------------------------------------------------------


def test_type_mismatch_on_a_topic_raises_naming_both_types(joined):
    first, second = joined
    first.add_publisher("/chatter", "pkg_a/msg/Alpha", HASH_A, 4, L.VOLATILE, "/talker")
    with pytest.raises(TypeMismatchError) as info:
        second.add_subscription("/chatter", "pkg_b/msg/Beta", HASH_B, 4, L.VOLATILE, "/listener")
    message = str(info.value)
    assert "pkg_a/msg/Alpha" in message and "pkg_b/msg/Beta" in message and "/chatter" in message
    assert isinstance(info.value, TypeError)
    topic = first.find_topic("/chatter")
    assert (first.topics[topic].n_publishers, first.topics[topic].n_subscriptions) == (1, 0)
    assert first.check_consistency() == []


def test_same_type_name_with_another_definition_hash_is_a_type_mismatch(joined):
    first, second = joined
    first.add_subscription("/t", "pkg/msg/M", HASH_A, 4, L.VOLATILE, "/a")
    with pytest.raises(TypeMismatchError) as info:
        second.add_publisher("/t", "pkg/msg/M", HASH_B, 4, L.VOLATILE, "/b")
    assert HASH_A in str(info.value) and HASH_B in str(info.value)
    assert first.check_consistency() == []


def test_a_topic_without_endpoints_takes_the_next_endpoints_type(isolated_domain):
    """rclpy's (DDS's) rule: a topic has a type only while it has endpoints. A destroyed
    subscription whose view is still held (draining) is no endpoint: the name can carry
    another type at once, and the held view still reads its own message."""
    node = agnoshm.Node("retyped")
    pub = node.create_publisher("std_msgs/msg/String", "/reused", 1)
    sub = node.create_polling_subscription("std_msgs/msg/String", "/reused", 1)
    pub.publish({"data": "first type"})
    held = sub.take()
    pub.destroy()
    sub.destroy()  # drains: `held` keeps its message
    registry = agnoshm.context.get_runtime().registry
    assert registry.topics[registry.find_topic("/reused")].n_subscriptions == 1
    int_pub = node.create_publisher("std_msgs/msg/Int64", "/reused", 1)
    int_sub = node.create_polling_subscription("std_msgs/msg/Int64", "/reused", 1)
    int_pub.publish({"data": 7})
    assert int_sub.take().data == 7 and held.data == "first type"
    topic = registry.topics[registry.find_topic("/reused")]
    assert topic.type_name == b"std_msgs/msg/Int64"
    with pytest.raises(TypeMismatchError, match="std_msgs/msg/Int64"):  # live endpoints bind
        node.create_publisher("std_msgs/msg/String", "/reused", 1)
    del held
    assert registry.check_consistency() == []


def test_a_topic_left_by_its_last_draining_subscription_takes_another_type(isolated_domain):
    """The last view of a drained subscription unlists it: the topic has no endpoint
    left, so it has no type either (its record is freed, or reused for any type)."""
    node = agnoshm.Node("retyped")
    pub = node.create_publisher("std_msgs/msg/String", "/left", 1)
    sub = node.create_polling_subscription("std_msgs/msg/String", "/left", 1)
    pub.publish({"data": "x"})
    held = sub.take()
    sub.destroy()
    pub.destroy()
    del held  # the drained subscription goes
    registry = agnoshm.context.get_runtime().registry
    index = registry.find_topic("/left")
    assert index < 0 or registry.topics[index].n_subscriptions == 0
    node.create_subscription("std_msgs/msg/Int64", "/left", lambda msg: None, 1)
    assert registry.topics[registry.find_topic("/left")].type_name == b"std_msgs/msg/Int64"


def test_depth_beyond_max_entries_raises_limit_reached(joined):
    first, _ = joined
    with pytest.raises(LimitReachedError, match="AGNOSHM_MAX_ENTRIES"):
        first.add_publisher("/deep", "pkg/msg/M", HASH_A, 5, L.VOLATILE, "/a")
    assert first.find_topic("/deep") == -1
    assert first.check_consistency() == []


def test_endpoints_beyond_the_table_capacity_raise_limit_reached(joined):
    first, _ = joined
    for i in range(8):
        first.add_subscription("/s", "pkg/msg/M", HASH_A, 1, L.VOLATILE, "/a")
    with pytest.raises(LimitReachedError, match="AGNOSHM_MAX_SUBSCRIPTIONS"):
        first.add_subscription("/s", "pkg/msg/M", HASH_A, 1, L.VOLATILE, "/a")
    assert first.topics[first.find_topic("/s")].n_subscriptions == 8
    assert first.check_consistency() == []


def test_topics_beyond_the_table_capacity_raise_limit_reached(joined):
    first, _ = joined
    for i in range(8):
        first.add_publisher(f"/p{i}", "pkg/msg/M", HASH_A, 1, L.VOLATILE, "/a")
    with pytest.raises(LimitReachedError, match="AGNOSHM_MAX_TOPICS"):
        first.add_subscription("/p8", "pkg/msg/M", HASH_A, 1, L.VOLATILE, "/a")
    assert first.check_consistency() == []


def test_check_consistency_is_empty_through_a_registry_session(joined):
    first, second = joined
    assert first.check_consistency() == []
    pub, topic = first.add_publisher("/c", "pkg/msg/M", HASH_A, 2, L.TRANSIENT_LOCAL, "/a")
    sub, same = second.add_subscription("/c", "pkg/msg/M", HASH_A, 2, L.TRANSIENT_LOCAL, "/b")
    assert topic == same
    assert first.subscriber_slots(topic) == [second.own_slot]
    assert second.check_consistency() == []
    second.remove_subscription(sub)
    first.remove_publisher(pub)
    assert first.find_topic("/c") == -1
    assert first.check_consistency() == [] and second.check_consistency() == []


def test_check_consistency_is_empty_in_normal_operation(isolated_domain, monkeypatch):
    monkeypatch.setenv("AGNOSHM_LINGER_SEC", "0")
    node = agnoshm.Node("consistent")
    registry = agnoshm.context.get_runtime().registry
    assert registry.check_consistency() == []
    pub = node.create_publisher(agnoshm.Bytes, "/normal", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/normal", 4)
    late = node.create_polling_subscription(
        agnoshm.Bytes, "/normal",
        agnoshm.QoSProfile(depth=4, durability=agnoshm.DurabilityPolicy.TRANSIENT_LOCAL))
    for i in range(10):
        pub.publish(bytes([i]) * 100)
        assert registry.check_consistency() == []
    held = [sub.take() for _ in range(4)]
    assert registry.check_consistency() == []
    node.destroy_subscription(sub)  # drains while its views live
    assert registry.check_consistency() == []
    del held
    assert late.take() is not None
    assert registry.check_consistency() == []
    node.destroy_node()
    assert registry.check_consistency() == []
    assert registry.find_topic("/normal") == -1


def test_check_consistency_reports_a_broken_endpoint_count(joined):
    first, _ = joined
    _, topic = first.add_publisher("/broken", "pkg/msg/M", HASH_A, 2, L.VOLATILE, "/a")
    first.topics[topic].n_publishers = 5
    assert any("counts disagree" in p for p in first.check_consistency())
    first.topics[topic].n_publishers = 1
    assert first.check_consistency() == []


def test_close_is_idempotent_and_safe_after_a_failed_init(config):
    sut = Registry(config)
    sut.close()
    sut.close()
    failed = Registry.__new__(Registry)
    failed.close()
    assert repr(sut).startswith(f"Registry('{registry_name(config.domain_id)}'")



def test_a_stale_handle_never_unlinks_the_registry_that_replaced_its_own(isolated_domain):
    """``agnoshm clean``'s close_if_abandoned on a handle to a registry that its last process
    closed meanwhile: the name now belongs to a new registry, which must stay."""
    agnoshm.Node("first")
    config = agnoshm.context.get_runtime().config
    stale = Registry(config)  # opened, not joined
    try:
        agnoshm.shutdown()  # the last process leaves: that registry is closed and unlinked
        node = agnoshm.Node("second")  # a new registry under the same name
        path = "/dev/shm" + registry_name(isolated_domain)
        assert os.path.exists(path)
        assert stale.close_if_abandoned() is False
        assert os.path.exists(path), "the new registry's name was unlinked"
        pub = node.create_publisher(agnoshm.Bytes, "/still", 1)
        sub = node.create_polling_subscription(agnoshm.Bytes, "/still", 1)
        pub.publish(b"works")
        assert bytes(sub.take().data) == b"works"
        node.destroy_node()
    finally:
        stale.close()
