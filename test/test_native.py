"""The optional native message path (agnoshm/_native) against the pure-Python reference.

* a conformance suite of the data path: every case runs on both paths (``AGNOSHM_NATIVE``
  0 and 1, inherited by the processes a test starts); the native case is skipped, saying
  why, only when the extension was not built;
* a native-path process and a pure-path process exchange messages, both ways;
* hostile channels, entries, log indices, pointers and hold counts are fed to a pure and
  a native port of one process, which must answer the same (same result, or the same
  exception with the same message), never crash;
* ``AGNOSHM_NATIVE=1`` without the extension fails naming the fix, ``auto`` runs pure
  Python, and ``agnoshm doctor`` says which path runs;
* a build without a C compiler installs, prints its one line, and runs pure Python.

Real processes and real shared memory, no mocks; processes synchronize on events and
queues (timeouts are deadlock watchdogs only).
"""

from __future__ import annotations

import gc
import inspect
import json
import os
import subprocess
import sys
import threading
import types
import weakref
from pathlib import Path

import pytest
from sources import REPO, child_cwd, child_env, copy_sources

import agnoshm
import native_workers
import workers
from agnoshm import _native
from agnoshm.errors import InvalidHandleError, LimitReachedError, MessageInvalidatedError
from agnoshm.registry import layout as L
from agnoshm.transport import loan as loan_module
from workers import TIMEOUT

TEST_DIR = Path(__file__).resolve().parent
NOT_BUILT = f"the native extension is not built here ({_native.MISSING})"
PATH_NAMES = {"0": "pure", "1": "native"}


def _native_param(value: str):
    marks = [pytest.mark.skipif(_native.MISSING is not None, reason=NOT_BUILT)] if value == "1" else []
    return pytest.param(value, id=PATH_NAMES[value], marks=marks)


@pytest.fixture(params=[_native_param("0"), _native_param("1")])
def path(request, monkeypatch, isolated_domain):
    """Run the test on one message path, in this process and the processes it starts."""
    monkeypatch.setenv("AGNOSHM_NATIVE", request.param)
    return PATH_NAMES[request.param]


def _start(target, *args):
    process = workers.context().Process(target=target, args=args)
    process.start()
    return process


def _join(*processes):
    for p in processes:
        p.join(TIMEOUT)
        assert p.exitcode == 0, f"{p.name} exited with {p.exitcode}"


def _drain(sub, into: list, expected: int) -> bool:
    """Take everything there is now; True once ``expected`` messages have arrived."""
    while (msg := sub.take()) is not None:
        into.append(workers.read_header(msg.data))
    return len(into) >= expected


# -- the extension's stub --------------------------------------------------------------------


@pytest.mark.skipif(_native.MISSING is not None, reason=NOT_BUILT)
def test_the_stub_names_exactly_what_the_extension_has():
    import ast
    import inspect

    stub = ast.parse((REPO / "agnoshm/_native/_ring.pyi").read_text())
    ring = _native._ring
    public = {name for name in dir(ring) if not name.startswith("_")}
    stubbed = set()
    for node in stub.body:
        if isinstance(node, ast.ClassDef):
            stubbed.add(node.name)
            runtime_type = getattr(ring, node.name)
            members = {n.name for n in node.body if isinstance(n, ast.FunctionDef)} | {
                n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
            have = {name for name in dir(runtime_type) if not name.startswith("_")}
            assert members - {"__new__", "__call__"} == have, node.name
            assert ("__call__" in members) == ("__call__" in vars(runtime_type)), node.name
            new = next((n for n in node.body
                        if isinstance(n, ast.FunctionDef) and n.name == "__new__"), None)
            if new is None:  # made by the extension only (a Reader's Leases)
                with pytest.raises(TypeError):
                    runtime_type()
                continue
            # constructed by the stub's keywords (nothing is read or written at construction)
            values = {"region": ring.Region(base=8, size=1 << 20), "size": 1 << 20,
                      "capacity": 1, "depth": 1,
                      "pool": types.SimpleNamespace(address=1 << 30, size=1 << 20),
                      "allocate_new": lambda nbytes: 1 << 30, "give_back": lambda address: None,
                      "frombuffer": lambda *args: None, "fallback": lambda view: None,
                      "owner": None, "address": 1 << 30, "nbytes": 64, "writable": False}
            assert isinstance(runtime_type(**{a.arg: values.get(a.arg, 8)
                                              for a in new.args.args[1:]}), runtime_type)
        elif isinstance(node, ast.FunctionDef):
            stubbed.add(node.name)
            assert inspect.isbuiltin(getattr(ring, node.name))
        elif isinstance(node, ast.AnnAssign):
            stubbed.add(node.target.id)
            assert isinstance(getattr(ring, node.target.id), int)
    assert stubbed == public


# -- (a) the data path, on both paths ---------------------------------------------------------


@pytest.mark.parametrize("pub_depth,sub_depth", [(10, 4), (3, 8)])
def test_keep_last_keeps_the_newest_depth_messages(path, pub_depth, sub_depth):
    ctx = workers.context()
    ready, out, done = ctx.Event(), ctx.Queue(), ctx.Event()
    node = agnoshm.Node("listener")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/keep_last", sub_depth)
    assert native_workers.path_of(sub) == path
    child = _start(native_workers.publish_then_wait, "/keep_last", 10, pub_depth, "volatile",
                   ready, out, done)
    ready.set()
    assert out.get(timeout=TIMEOUT) == ("published", path, 10)
    received: list = []
    _drain(sub, received, 0)
    done.set()
    _join(child)
    kept = min(pub_depth, sub_depth)
    assert received == [(1, i) for i in range(10 - kept, 10)]


def test_transient_local_late_joiner_gets_the_retained_messages(path):
    ctx = workers.context()
    ready, out, done = ctx.Event(), ctx.Queue(), ctx.Event()
    ready.set()
    child = _start(native_workers.publish_then_wait, "/latched", 12, 5, "transient_local",
                   ready, out, done)
    assert out.get(timeout=TIMEOUT) == ("published", path, 12)
    node = agnoshm.Node("late")
    qos = agnoshm.QoSProfile(depth=5, durability=agnoshm.DurabilityPolicy.TRANSIENT_LOCAL)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/latched", qos)
    received: list = []
    _drain(sub, received, 0)
    done.set()
    _join(child)
    assert received == [(1, i) for i in range(7, 12)]


def test_each_subscription_gets_every_message_once_in_order_per_publisher(path):
    ctx = workers.context()
    out, start, done = ctx.Queue(), ctx.Event(), ctx.Event()
    count = 120
    node = agnoshm.Node("listener")
    subs = [node.create_polling_subscription(agnoshm.Bytes, "/order", 256) for _ in range(2)]
    readies = [ctx.Event() for _ in range(2)]
    pubs = [_start(native_workers.publish_on_start, "/order", i, count, 256, 2, r, start, out, done)
            for i, r in enumerate(readies)]
    for r in readies:
        assert r.wait(TIMEOUT)
    start.set()
    received: list[list] = [[], []]
    workers.wait_until(lambda: all(_drain(s, got, 2 * count) for s, got in zip(subs, received)),
                       what="every message")
    reports = sorted(out.get(timeout=TIMEOUT) for _ in pubs)
    done.set()
    _join(*pubs)
    assert reports == [("published", path, 0, count), ("published", path, 1, count)]
    for got in received:
        assert len(got) == 2 * count, "a message came twice"
        for publisher in range(2):
            assert [c for p, c in got if p == publisher] == list(range(count))
    assert all(s.take() is None for s in subs)


def test_held_and_released_counts_reach_both_sides(path):
    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    release, done = ctx.Event(), ctx.Event()
    node = agnoshm.Node("talker")
    pub = node.create_publisher(agnoshm.Bytes, "/held", 3)
    child = _start(native_workers.hold_then_release, "/held", 3, ready, out, None, release, done)
    assert ready.wait(TIMEOUT)
    workers.wait_until(lambda: pub.get_subscription_count() == 1)
    for i in range(3):
        msg = pub.borrow_loaned_message()
        workers.fill(msg.alloc("data", 64), 2, i)
        pub.publish(msg)
    kind, child_path, held, record_held, headers = out.get(timeout=TIMEOUT)
    assert (kind, child_path, held, record_held) == ("holding", path, 3, 3)
    assert headers == [(2, 0), (2, 1), (2, 2)]
    for i in range(3, 5):  # two held ones leave the depth: withdrawn, kept
        pub.publish(bytes(64))
    pub._port.reclaim()
    assert pub._port.held_count() == 2
    release.set()
    assert out.get(timeout=TIMEOUT) == ("released", 0, 0)
    pub._port.reclaim()
    assert pub._port.held_count() == 0
    done.set()
    _join(child)


def test_subscribers_holding_every_entry_is_a_clear_error(path, monkeypatch):
    monkeypatch.setenv("AGNOSHM_MAX_ENTRIES", "8")
    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    release, done = ctx.Event(), ctx.Event()
    node = agnoshm.Node("talker")
    pub = node.create_publisher(agnoshm.Bytes, "/full", 8)
    child = _start(native_workers.hold_then_release, "/full", 8, ready, out, None, release, done)
    assert ready.wait(TIMEOUT)
    workers.wait_until(lambda: pub.get_subscription_count() == 1)
    for i in range(8):
        pub.publish(bytes([i]) * 32)
    assert out.get(timeout=TIMEOUT)[:3] == ("holding", path, 8)
    with pytest.raises(LimitReachedError, match="subscribers hold all 8 messages of this "
                                                "publisher: release received messages"):
        pub.publish(b"one too many")
    release.set()
    assert out.get(timeout=TIMEOUT) == ("released", 0, 0)
    pub.publish(b"room again")
    done.set()
    _join(child)


def test_publishing_from_several_threads_loses_and_repeats_nothing(path):
    """Three threads publish on one publisher, switching as often as the interpreter can,
    while the listener reclaims: the native publish() works on the port's lists under the
    port's lock, as the Python one does."""
    node = agnoshm.Node("threads")
    pub = node.create_publisher(agnoshm.Bytes, "/threads", 200)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/threads", 200)
    per_thread, threads = 60, 3
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        runners = [threading.Thread(target=lambda k=k: [
            pub.publish(bytes([k]) + i.to_bytes(4, "little")) for i in range(per_thread)])
            for k in range(threads)]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join(TIMEOUT)
    finally:
        sys.setswitchinterval(interval)
    assert pub._port._seq == per_thread * threads
    got = {k: [] for k in range(threads)}
    while (msg := sub.take()) is not None:
        data = bytes(msg.data)
        got[data[0]].append(int.from_bytes(data[1:], "little"))
    assert got == {k: list(range(per_thread)) for k in range(threads)}


def test_a_destroyed_publisher_and_its_port_are_collected(path):
    """The native port and its C writer refer to each other (the port's publish is the
    writer's send): the collector must free both."""
    node = agnoshm.Node("collected")
    pub = node.create_publisher(agnoshm.Bytes, "/collected", 3)
    pub.publish(b"one")
    port = weakref.ref(pub._port)
    assert node.destroy_publisher(pub)
    del pub
    gc.collect()
    assert port() is None


def test_a_publisher_destroyed_while_messages_are_held_leaves_them_intact(path):
    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    check, release, done = ctx.Event(), ctx.Event(), ctx.Event()
    node = agnoshm.Node("talker")
    pub = node.create_publisher(agnoshm.Bytes, "/gone", 4)
    child = _start(native_workers.hold_then_release, "/gone", 2, ready, out, check, release, done)
    assert ready.wait(TIMEOUT)
    workers.wait_until(lambda: pub.get_subscription_count() == 1)
    for i in range(2):
        msg = pub.borrow_loaned_message()
        workers.fill(msg.alloc("data", 4096), 3, i)
        pub.publish(msg)
    assert out.get(timeout=TIMEOUT)[:4] == ("holding", path, 2, 2)
    node.destroy_publisher(pub)
    other = node.create_publisher(agnoshm.Bytes, "/other", 4)  # reuses the pool
    for i in range(50):
        other.publish(bytes([0xEE]) * 4096)
    check.set()
    assert out.get(timeout=TIMEOUT) == ("intact", True)
    release.set()
    assert out.get(timeout=TIMEOUT) == ("released", 0, 0)
    done.set()
    _join(child)
    assert agnoshm.context.get_runtime().registry.check_consistency() == []


def test_a_subscription_destroyed_while_a_message_is_held_drains_then_leaves(path):
    ctx = workers.context()
    ready, out, done = ctx.Event(), ctx.Queue(), ctx.Event()
    node = agnoshm.Node("listener")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/drain", 4)
    child = _start(native_workers.publish_then_wait, "/drain", 2, 4, "volatile", ready, out, done)
    ready.set()
    assert out.get(timeout=TIMEOUT) == ("published", path, 2)
    msg = sub.take()
    registry = agnoshm.context.get_runtime().registry
    index = sub._port.index
    node.destroy_subscription(sub)
    assert registry.subscriptions[index].state == L.DRAINING
    assert workers.read_header(msg.data) == (1, 0)
    del msg
    gc.collect()
    assert registry.subscriptions[index].state == L.FREE
    done.set()
    _join(child)
    assert registry.check_consistency() == []


def test_a_received_message_keeps_its_gone_publishers_pool_mapped_until_released(path):
    ctx = workers.context()
    ready, out, done = ctx.Event(), ctx.Queue(), ctx.Event()
    node = agnoshm.Node("keeper")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/kept_pool", 4)
    child = _start(native_workers.publish_then_wait, "/kept_pool", 1, 4, "volatile", ready, out,
                   done)
    ready.set()
    assert out.get(timeout=TIMEOUT) == ("published", path, 1)
    received: list = []
    workers.wait_until(lambda: _keep(sub, received), what="the message")
    msg = received[0]
    data = msg.data  # an array over the publisher's pool: its base holds the message
    mapping = msg._owner.mapping
    assert mapping.leases == 1 and not data.flags.writeable
    with pytest.raises(ValueError):
        data.flags.writeable = True
    done.set()
    _join(child)  # the publisher's process is gone, its pool unlinked
    runtime = agnoshm.context.get_runtime()
    runtime.peers.drop_stale()  # must not unmap what a held message points into
    assert not mapping.retired and not mapping.retire()
    assert workers.read_header(data) == (1, 0)
    del msg, received
    gc.collect()
    assert mapping.leases == 1  # the array alone still holds it
    assert workers.read_header(data) == (1, 0)
    del data
    gc.collect()
    assert mapping.leases == 0
    runtime.peers.drop_stale()
    assert mapping.retired


def _keep(sub, into: list) -> bool:
    msg = sub.take()
    if msg is not None:
        into.append(msg)
    return bool(into)


@pytest.mark.skipif(_native.MISSING is not None, reason=NOT_BUILT)
def test_a_native_lease_exports_its_pool_read_only_while_it_holds_the_message(isolated_domain,
                                                                              monkeypatch):
    monkeypatch.setenv("AGNOSHM_NATIVE", "1")
    node = agnoshm.Node("exporter")
    pub = node.create_publisher(agnoshm.Bytes, "/exported", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/exported", 4)
    msg = pub.borrow_loaned_message()
    msg.data = bytes(range(64))
    pub.publish(msg)
    (lease,) = sub._port.take(1)
    assert type(lease) is _native._ring.Lease and lease.exports_pool
    pool = lease.pool
    view = memoryview(lease)
    assert view.readonly and view.obj is lease and len(view) == pool.size
    import ctypes
    with pytest.raises(TypeError, match="not writable"):  # nothing writes through it
        (ctypes.c_char * 1).from_buffer(lease)
    view.release()
    assert sub._port.held == 1 and lease.valid
    lease.release()
    lease.release()  # exactly once
    assert sub._port.held == 0 and not lease.valid
    with pytest.raises(BufferError, match="released"):
        memoryview(lease)


@pytest.mark.skipif(_native.MISSING is not None, reason=NOT_BUILT)
def test_arrays_over_a_loan_are_pool_spans_that_hold_it(isolated_domain, monkeypatch):
    """On the native path an array over a loan is numpy.frombuffer over a PoolSpan: it
    lies in the pool, keeps the loan alive, and turns read-only at publish."""
    monkeypatch.setenv("AGNOSHM_NATIVE", "1")
    node = agnoshm.Node("spans")
    pub = node.create_publisher(agnoshm.Bytes, "/spans", 4)
    msg = pub.borrow_loaned_message()
    data = msg.alloc("data", 64)
    pool = pub._port._pool
    assert type(data.base) is _native._ring.PoolSpan and data.base.owner is msg._owner
    assert pool.address <= data.ctypes.data < pool.address + pool.size and data.flags.writeable
    loan = weakref.ref(msg._owner)
    data[:] = 7
    pub.publish(msg)
    del msg
    gc.collect()
    assert loan() is not None and not data.flags.writeable  # the array holds the loan
    del data
    gc.collect()
    assert loan() is None
    span = _native._ring.PoolSpan(owner=None, address=pool.address, nbytes=8, writable=False)
    assert memoryview(span).readonly
    import ctypes
    with pytest.raises(TypeError, match="not writable"):
        (ctypes.c_char * 1).from_buffer(span)
    for bad in ({"address": 0, "nbytes": 8}, {"address": 1 << 30, "nbytes": 0}):
        with pytest.raises(ValueError, match="is no range"):
            _native._ring.PoolSpan(owner=None, writable=True, **bad)


def test_a_loan_is_the_same_on_both_paths(path):
    """A native port loans C Loans (ring.c's Writer.loan, loan.c), transport.loan.Loan's twin: a
    dropped unpublished loan gives its blocks back (the next loan gets them), a published one
    refuses to allocate with the same error, and one published while an array over it lived
    is pinned until that array is gone, then freed by the next loan."""
    node = agnoshm.Node("loans")
    pub = node.create_publisher(agnoshm.Bytes, "/loans", 2)
    port = pub._port
    msg = pub.borrow_loaned_message()
    assert type(msg._owner) is (_native._ring.Loan if path == "native" else loan_module.Loan)
    data = msg.alloc("data", 4096)
    addresses = (msg._owner.address, data.ctypes.data)
    loan = msg._owner
    del msg, data
    assert weakref.ref(loan)() is loan and loan.valid
    del loan  # never published: its blocks go back
    msg = pub.borrow_loaned_message()
    data = msg.alloc("data", 4096)
    assert (msg._owner.address, data.ctypes.data) == addresses
    loan = msg._owner
    pub.publish(msg)
    assert not loan.valid and loan.pinned and not data.flags.writeable
    with pytest.raises(MessageInvalidatedError, match="this loan was published, or agnoshm "
                                                      "shut down"):
        loan.allocate(8)
    assert port._pinned == {addresses[0]} and not port.unpinned
    del msg, data, loan
    gc.collect()
    assert port.unpinned == [addresses[0]]  # the loan's end, reported when it died
    pub.borrow_loaned_message()
    assert not port._pinned and not port.unpinned


def test_a_publisher_publishes_and_refuses_the_same_on_both_paths(path):
    """On the native path a publisher's borrow_loaned_message and publish are C (ring.c's
    Writer.borrow and publish_message), which send its own loans and hand anything else to
    the Python methods: copies, foreign and published loans, and a destroyed publisher get
    what they get on the pure path."""
    node = agnoshm.Node("front")
    pub = node.create_publisher(agnoshm.Bytes, "/front", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/front", 4)
    assert inspect.isbuiltin(pub.publish) == (path == "native")
    assert inspect.isbuiltin(pub.borrow_loaned_message) == (path == "native")
    msg = pub.borrow_loaned_message()
    msg.data = b"loan"
    pub.publish(msg)
    pub.publish(b"copy")
    pub.publish({"data": b"dict"})
    foreign = node.create_publisher(agnoshm.Bytes, "/front", 4).borrow_loaned_message()
    with pytest.raises(MessageInvalidatedError, match="borrowed from another publisher"):
        pub.publish(foreign)
    with pytest.raises(MessageInvalidatedError, match="already published"):
        pub.publish(msg)
    assert [bytes(sub.take().data) for _ in range(3)] == [b"loan", b"copy", b"dict"]
    assert node.destroy_publisher(pub)
    for call in (pub.borrow_loaned_message, lambda: pub.publish(b"late")):
        with pytest.raises(InvalidHandleError, match="publisher on /front was destroyed"):
            call()


def test_assigned_bytes_are_stored_the_same_on_both_paths(path):
    """``msg.data = bytes or bytearray`` (in C on the native path: Loan.store_sequence)
    copies the value into new storage, gives the old storage back, and refuses once the
    message is published, with the view's error."""
    node = agnoshm.Node("store")
    pub = node.create_publisher(agnoshm.Bytes, "/store", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/store", 4)
    msg = pub.borrow_loaned_message()
    msg.data = b"first, then replaced"
    first = msg._owner.blocks[-1]
    payload = bytearray(b"second")
    msg.data = payload
    payload[:] = b"SECOND"  # the message holds a copy
    assert first not in msg._owner.blocks and len(msg._owner.blocks) == 2
    assert bytes(msg.data) == b"second"
    pub.publish(msg)
    with pytest.raises(MessageInvalidatedError, match="was published and may not be used"):
        msg.data = b"late"
    assert bytes(sub.take().data) == b"second"


# -- (b) one domain, both paths ----------------------------------------------------------------

CROSS = [pytest.param("1", "0", id="native-here-pure-there",
                      marks=pytest.mark.skipif(_native.MISSING is not None, reason=NOT_BUILT)),
         pytest.param("0", "1", id="pure-here-native-there",
                      marks=pytest.mark.skipif(_native.MISSING is not None, reason=NOT_BUILT))]


@pytest.mark.parametrize("here,there", CROSS)
def test_a_native_and_a_pure_process_exchange_messages_both_ways(isolated_domain, monkeypatch,
                                                                here, there):
    count = 50
    monkeypatch.setenv("AGNOSHM_NATIVE", here)
    node = agnoshm.Node("pinger")
    qos = agnoshm.QoSProfile(depth=count)
    ping = node.create_publisher(agnoshm.Bytes, "/ping", qos)
    pong = node.create_polling_subscription(agnoshm.Bytes, "/pong", qos)
    assert native_workers.path_of(ping) == native_workers.path_of(pong) == PATH_NAMES[here]
    monkeypatch.setenv("AGNOSHM_NATIVE", there)  # what the child starts with
    ctx = workers.context()
    ready, out = ctx.Event(), ctx.Queue()
    child = _start(native_workers.echo, "/ping", "/pong", count, ready, out)
    assert ready.wait(TIMEOUT)
    assert out.get(timeout=TIMEOUT) == ("paths", PATH_NAMES[there], PATH_NAMES[there])
    workers.wait_until(lambda: ping.get_subscription_count() == 1
                       and pong.get_publisher_count() == 1)
    answers = []
    for i in range(count):
        msg = ping.borrow_loaned_message()
        workers.fill(msg.alloc("data", 100 + i), 9, i)
        ping.publish(msg)
        workers.wait_until(lambda: _drain(pong, answers, i + 1), what=f"answer {i}")
    assert answers == [(9, i) for i in range(count)]
    assert out.get(timeout=TIMEOUT) == ("answered", count)
    _join(child)


# -- (c) hostile input: the same answer from both paths -------------------------------------------


@pytest.mark.skipif(_native.MISSING is not None, reason=NOT_BUILT)
def test_hostile_channels_and_hold_counts_get_the_same_answer_from_both_paths(isolated_domain):
    examples = max(1, int(300 * float(os.environ.get("AGNOSHM_HOSTILE_EXAMPLES", "1"))))
    env = child_env(TEST_DIR, AGNOSHM_NATIVE="1", AGNOSHM_MAX_ENTRIES="8",
                    AGNOSHM_POOL_SIZE="64M")
    result = subprocess.run(
        [sys.executable, "-c", "import native_workers as n; n.main()", "differential",
         str(examples)], env=env, cwd=child_cwd(), capture_output=True, text=True,
        timeout=TIMEOUT * 3)
    output = result.stdout + result.stderr
    assert result.returncode >= 0, f"died of signal {-result.returncode}:\n{output[-4000:]}"
    assert result.returncode == 0, f"the paths answered differently:\n{output[-6000:]}"
    tally = json.loads([x for x in result.stdout.splitlines() if x.startswith("tally ")][-1][6:])
    print(f"\ndifferential: {tally}")
    assert tally.get("receive ok", 0) > 0 and tally.get("publish ok", 0) > 0
    assert tally.get("receive raised MessageCorruptedError", 0) > 0  # the views' own check
    assert tally.get("data ok", 0) > 0 and tally.get("data raised MessageCorruptedError", 0) > 0


# -- (d) the extension missing, and what doctor says -----------------------------------------------

#: Put first on sys.meta_path: the import of the extension fails as on a machine where it was
#: never built (a real ImportError from the import system; agnoshm's code is untouched).
BLOCK = r"""
import sys
class NoNativeRing:
    def find_spec(self, name, path=None, target=None):
        if name == "agnoshm._native._ring":
            raise ModuleNotFoundError("No module named 'agnoshm._native._ring'", name=name)
        return None
sys.meta_path.insert(0, NoNativeRing())
"""

TRY_INIT = BLOCK + r"""
import agnoshm
from agnoshm import _native
try:
    node = agnoshm.Node("n")
except agnoshm.NativeUnavailableError as err:  # public, and a ConfigError
    assert isinstance(err, agnoshm.ConfigError)
    print("raised", type(err).__name__, "|", err)
else:
    pub = node.create_publisher(agnoshm.Bytes, "/x", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/x", 4)
    pub.publish(b"pure")
    print("ran", type(pub._port).__name__, type(sub._port).__name__, bytes(sub.take().data))
    agnoshm.shutdown()
"""

DOCTOR = "import sys\nfrom agnoshm.cli.main import main\nsys.exit(main(['doctor']))\n"


def _python(code: str, native: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], env=child_env(AGNOSHM_NATIVE=native),
                            cwd=child_cwd(), capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode >= 0, result.stderr
    return result.stdout + result.stderr


def _doctor_line(output: str) -> tuple[str, str, str]:
    """Doctor's message-path check: (status, detail, fix or "")."""
    lines = output.splitlines()
    at = next(i for i, line in enumerate(lines) if " message path " in line)
    status, detail = lines[at].split(" message path ", 1)
    following = lines[at + 1].strip() if at + 1 < len(lines) else ""
    return status.strip(), detail.strip(), following[5:] if following.startswith("fix: ") else ""


def test_native_1_without_the_extension_fails_naming_the_fix(isolated_domain):
    output = _python(TRY_INIT, "1")
    assert "raised NativeUnavailableError | AGNOSHM_NATIVE=1, but agnoshm's native extension " \
           "agnoshm._native._ring is not built" in output, output
    assert "apt install gcc python3-dev" in output and "AGNOSHM_NATIVE=auto or 0" in output


@pytest.mark.parametrize("native", ["auto", "0"])
def test_without_the_extension_auto_and_0_run_pure_python(isolated_domain, native):
    output = _python(TRY_INIT, native)
    assert "ran PublisherPort SubscriberPort b'pure'" in output, output


def test_doctor_says_which_message_path_runs(isolated_domain):
    missing = {n: _doctor_line(_python(BLOCK + DOCTOR, n)) for n in ("auto", "0", "1")}
    assert missing["0"] == ("ok", "pure Python (AGNOSHM_NATIVE=0)", "")
    not_built = ("pure Python: the extension agnoshm._native._ring is not built (No module "
                 "named 'agnoshm._native._ring')")
    assert missing["auto"][:2] == ("WARN", not_built + "; pure Python works the same, only slower")
    assert missing["1"][:2] == ("FAIL", not_built + " and AGNOSHM_NATIVE=1 requires it")
    for status, detail, fix in (missing["auto"], missing["1"]):
        assert fix == _native.FIX
    if _native.MISSING is None:
        for native in ("auto", "1"):
            assert _doctor_line(_python(DOCTOR, native)) == (
                "ok", f"native: agnoshm._native._ring ({_native._ring.__file__}), "
                      f"AGNOSHM_NATIVE={native}", "")


# -- (e) an install without a C compiler ----------------------------------------------------------

NO_COMPILER_LINE = "agnoshm: the native message path (agnoshm._native._ring) was not built"


def test_a_build_without_a_c_compiler_installs_says_so_once_and_runs_pure_python(
        tmp_path, isolated_domain):
    src = copy_sources(tmp_path / "src")  # what a build reads; no built .so (nor .git)
    env = dict(os.environ, CC="/bin/false", LDSHARED="/bin/false")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w",
                            str(tmp_path / "wheel"), str(src)], env=env, capture_output=True,
                           text=True, timeout=600)
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-4000:]
    said = [line for line in output.splitlines() if NO_COMPILER_LINE in line]
    assert len(said) == 1, output[-4000:]
    assert "agnoshm runs in pure Python" in said[0] and "agnoshm doctor" in said[0]
    (wheel,) = (tmp_path / "wheel").glob("agnoshm-*.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=600)
    assert not list(target.glob("agnoshm/_native/*.so"))
    run_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME",)}
    run_env.update(PYTHONPATH=str(target), AGNOSHM_NATIVE="auto")
    ran = subprocess.run([sys.executable, "-c", TRY_INIT.replace(BLOCK, "") +
                          "import agnoshm; print('from', agnoshm.__file__)"],
                         env=run_env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert "ran PublisherPort SubscriberPort b'pure'" in ran.stdout, ran.stdout + ran.stderr
    assert f"from {target}" in ran.stdout, ran.stdout
    doctor = subprocess.run([sys.executable, "-c", DOCTOR], env=run_env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=TIMEOUT)
    status, detail, fix = _doctor_line(doctor.stdout)
    assert (status, fix) == ("WARN", _native.FIX), doctor.stdout
    assert detail.startswith("pure Python: the extension agnoshm._native._ring is not built")
