"""Hostile and malformed input: whatever another process wrote is checked before use
(DESIGN.md invariant 6: a typed error, never a crash, a hang or a read outside a
mapped pool).

* announcements: garbage records in this process's /new_publisher@pid queue;
  the listener survives and maps nothing that is not a live process's pool;
* registry records: random values in topic lists, publisher/subscription
  records, entries and process records of a live registry, then
  check_consistency, take (and reading the views), reap and repair; run in a
  child process so a crash shows as a signal;
* message views: string and sequence triples pointing outside the pool, sizes
  past its end, strings without their NUL -> MessageCorruptedError (child);
* registry headers: random magic, version, capacities and sizes ->
  RegistryCorruptedError / RegistryVersionError with a message naming the fix.

Example counts are bounded for CI (``AGNOSHM_HOSTILE_EXAMPLES`` scales them).
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agnoshm
import workers
from agnoshm import _libc
from agnoshm.config import load_config
from agnoshm.errors import RegistryCorruptedError, RegistryError, RegistryVersionError
from agnoshm.names import queue_name, registry_name
from agnoshm.registry import layout as L
from agnoshm.registry.registry import Registry
from sources import child_cwd, child_env

SCALE = float(os.environ.get("AGNOSHM_HOSTILE_EXAMPLES", "1"))
TEST_DIR = os.path.dirname(os.path.abspath(__file__))


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


def bounded(n: int):
    return settings(deadline=None, database=None, max_examples=examples(n),
                    suppress_health_check=list(HealthCheck))


# -- announcements ---------------------------------------------------------------------------------

_libc_raw = ctypes.CDLL(None, use_errno=True)
_libc_raw.mq_getattr.argtypes = [ctypes.c_int, ctypes.POINTER(_libc.mq_attr)]
_libc_raw.mq_send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint]


def _queued(mqd: int) -> int:
    attr = _libc.mq_attr()
    assert _libc_raw.mq_getattr(mqd, ctypes.byref(attr)) == 0
    return attr.mq_curmsgs


RECORD = struct.Struct("<iiQ")


def test_garbage_announcements_map_nothing(isolated_domain):
    runtime = agnoshm.init()
    mqd = _libc.mq_open(queue_name(os.getpid()).encode(), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC,
                        0, None)
    own = runtime.slot
    records = st.one_of(
        st.binary(max_size=64),
        st.builds(RECORD.pack, st.integers(-(1 << 31), (1 << 31) - 1),
                  st.integers(-(1 << 31), (1 << 31) - 1), st.integers(0, (1 << 64) - 1)),
        st.builds(lambda inc, slot: RECORD.pack(os.getpid(), slot, inc),
                  st.integers(0, 1 << 20), st.integers(-2, 300)))
    sent = 0
    try:
        @bounded(150)
        @given(st.lists(records, min_size=1, max_size=8))
        def check(batch):
            nonlocal sent
            for record in batch:
                workers.wait_until(lambda: _queued(mqd) < 8, what="the listener to drain")
                assert _libc_raw.mq_send(mqd, record, len(record), 0) == 0
                sent += 1
            workers.wait_until(lambda: _queued(mqd) == 0, what="the listener to drain")
            assert runtime.listener._thread.is_alive()
            assert runtime.peers.mapped_slots() == [own]

        check()
    finally:
        _libc.mq_close(mqd)
    print(f"\nannouncements: {sent} hostile records, listener alive, nothing mapped")


# -- registry records and message views, in a child ---------------------------------------------


def _run_child(kind: str, n: int, env_extra: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", "import hostile_workers as h; h.main()", kind, str(n)],
        env=child_env(TEST_DIR, **env_extra), cwd=child_cwd(), capture_output=True, text=True, timeout=workers.TIMEOUT * 3)
    output = result.stdout + result.stderr
    assert result.returncode >= 0, f"the {kind} fuzzer died of signal {-result.returncode}:\n{output[-4000:]}"
    assert result.returncode == 0, f"the {kind} fuzzer failed:\n{output[-4000:]}"
    line = [x for x in result.stdout.splitlines() if x.startswith("tally ")][-1]
    return json.loads(line.split(" ", 1)[1])


def test_corrupted_registry_records_raise_or_are_skipped(isolated_domain):
    tally = _run_child("registry", examples(150), {
        "AGNOSHM_MAX_PROCESSES": "4", "AGNOSHM_MAX_TOPICS": "4", "AGNOSHM_MAX_PUBLISHERS": "4",
        "AGNOSHM_MAX_SUBSCRIPTIONS": "6", "AGNOSHM_MAX_ENTRIES": "8",
        "AGNOSHM_POOL_SIZE": "64M"})
    print(f"\nregistry records: {tally}")
    assert tally.get("ok", 0) > 0


def test_corrupted_message_views_raise_message_corrupted(isolated_domain):
    tally = _run_child("views", examples(300), {"AGNOSHM_POOL_SIZE": "64M"})
    print(f"\nmessage views: {tally}")
    assert tally.get("MessageCorruptedError", 0) > 0 and tally.get("ok", 0) > 0


# -- registry headers ------------------------------------------------------------------------------


def _write_registry(domain: int, data: bytes) -> None:
    fd = _libc.shm_open(registry_name(domain).encode(), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, len(data))
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def _unlink_registry(domain: int) -> None:
    try:
        _libc.shm_unlink(registry_name(domain).encode())
    except FileNotFoundError:
        pass


def _header(**fields) -> bytes:
    config = load_config()
    header = L.Header()
    header.magic = L.MAGIC
    header.layout_version = L.LAYOUT_VERSION
    header.state = L.REGISTRY_READY
    for key in ("max_processes", "max_topics", "max_publishers", "max_subscriptions",
                "max_entries", *L.PER_TOPIC_CAPACITIES, "pool_size", "base_address"):
        setattr(header, key, getattr(config, key))
    header.total_size = L.Offsets(config).total_size
    for key, value in fields.items():
        setattr(header, key, value)
    return bytes(header).ljust(L.PAGE, b"\0")


def test_registry_of_another_version_is_refused(isolated_domain):
    _write_registry(isolated_domain, _header(layout_version=L.LAYOUT_VERSION + 1))
    try:
        with pytest.raises(RegistryVersionError, match="layout version .* run the same agnoshm"):
            Registry(load_config())
    finally:
        _unlink_registry(isolated_domain)


def test_registry_with_foreign_magic_is_refused(isolated_domain):
    _write_registry(isolated_domain, _header(magic=0x1234))
    try:
        with pytest.raises(RegistryCorruptedError, match="not an agnoshm registry.*agnoshm clean"):
            Registry(load_config())
    finally:
        _unlink_registry(isolated_domain)


@pytest.mark.parametrize("key,value", [("max_publishers_per_topic", 0),
                                       ("max_subscriptions_per_topic", 0x10000)])
def test_registry_with_impossible_per_topic_capacity_is_refused(isolated_domain, key, value):
    _write_registry(isolated_domain, _header(**{key: value}))
    try:
        with pytest.raises(RegistryCorruptedError, match=f"{key} is {value}.*agnoshm clean"):
            Registry(load_config())
    finally:
        _unlink_registry(isolated_domain)


def test_random_registry_headers_are_refused_or_reinitialized(isolated_domain):
    tried = collections_counter = {}

    @bounded(200)
    @given(st.one_of(
        st.binary(min_size=0, max_size=L.PAGE),
        st.builds(lambda version, caps, total, size: _header(
            layout_version=version, max_processes=caps[0], max_topics=caps[1],
            max_publishers=caps[2], max_subscriptions=caps[3], max_entries=caps[4],
            max_publishers_per_topic=caps[5], max_subscriptions_per_topic=caps[6],
            total_size=total)[:size],
            st.sampled_from([L.LAYOUT_VERSION, L.LAYOUT_VERSION + 1, 0, 0xFFFFFFFF]),
            st.tuples(*[st.integers(0, 0xFFFFFFFF)] * 7), st.integers(0, (1 << 64) - 1),
            st.integers(64, L.PAGE))))
    def check(data):
        _write_registry(isolated_domain, data)
        try:
            registry = Registry(load_config())
        except (RegistryCorruptedError, RegistryVersionError) as err:
            assert "agnoshm" in str(err)
            collections_counter[type(err).__name__] = collections_counter.get(type(err).__name__, 0) + 1
        except RegistryError as err:
            raise AssertionError(f"untyped refusal: {err}") from err
        else:
            # only an uninitialized object (magic 0) or a valid header may be opened
            assert registry.header.magic == L.MAGIC
            registry.close()
            collections_counter["opened"] = collections_counter.get("opened", 0) + 1
        finally:
            _unlink_registry(isolated_domain)

    check()
    print(f"\nregistry headers: {tried}")
    assert tried.get("RegistryCorruptedError", 0) > 0
