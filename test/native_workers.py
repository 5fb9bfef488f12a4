"""Child-process code for test/test_native.py: processes that run one message path each.

The path of a process is the ``AGNOSHM_NATIVE`` it was started with (spawn start
method: the child reads the environment the parent had when it started it).  Every
worker reports the class of the ports it got, so a test knows which path really ran.
The differential fuzzer (:func:`differential`) runs as ``python -c 'import native_workers
as n; n.main()' KIND EXAMPLES`` so that a crash shows as a signal.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import json
import sys

from workers import TIMEOUT, fill, read_header, wait_until


def path_of(endpoint) -> str:
    """``native`` or ``pure``: which message path an endpoint's port runs."""
    return "native" if type(endpoint._port).__name__.startswith("Native") else "pure"


def echo(ping: str, pong: str, count: int, ready, out) -> None:
    """Answer each of ``count`` messages on ``ping`` with the same bytes on ``pong``."""
    import agnoshm

    node = agnoshm.Node("echo")
    qos = agnoshm.QoSProfile(depth=count)
    pub = node.create_publisher(agnoshm.Bytes, pong, qos)
    answered = [0]

    def answer(msg) -> None:
        pub.publish(bytes(msg.data))
        answered[0] += 1

    sub = node.create_subscription(agnoshm.Bytes, ping, answer, qos)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    out.put(("paths", path_of(pub), path_of(sub)))
    ready.set()
    executor.spin_until(lambda: answered[0] >= count, TIMEOUT)
    out.put(("answered", answered[0]))
    executor.shutdown()
    node.destroy_node()
    agnoshm.shutdown()


def hold_then_release(topic: str, count: int, ready, out, check, release, done) -> None:
    """Hold ``count`` messages; report the counts; on ``check`` report whether the held
    bytes are intact; on ``release`` drop them and report again; exit on ``done``."""
    import agnoshm

    node = agnoshm.Node("holder")
    sub = node.create_polling_subscription(agnoshm.Bytes, topic, 256)
    port = sub._port
    ready.set()
    kept = []

    def take_one():
        msg = sub.take()
        if msg is not None:
            kept.append(msg)
        return len(kept) >= count

    wait_until(take_one, what="messages to hold")
    headers = [read_header(m.data) for m in kept]
    out.put(("holding", path_of(sub), port.held, port.record.held, headers))
    if check is not None:
        check.wait(TIMEOUT)
        out.put(("intact", [read_header(m.data) for m in kept] == headers
                 and all(bytes(m.data[16:]) == bytes([(h[0] + h[1]) & 0xFF]) * (len(m.data) - 16)
                         for m, h in zip(kept, headers))))
    release.wait(TIMEOUT)
    del kept[:]
    out.put(("released", port.held, port.record.held))
    done.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


def publish_then_wait(topic: str, count: int, depth: int, durability: str, ready, out,
                      done) -> None:
    """Publish ``count`` 64-byte messages (publisher id 1) at once, report, exit on ``done``."""
    import agnoshm
    from workers import _durability

    node = agnoshm.Node("talker")
    pub = node.create_publisher(agnoshm.Bytes, topic,
                                agnoshm.QoSProfile(depth=depth, durability=_durability(durability)))
    ready.wait(TIMEOUT)
    for i in range(count):
        msg = pub.borrow_loaned_message()
        fill(msg.alloc("data", 64), 1, i)
        pub.publish(msg)
    out.put(("published", path_of(pub), count))
    done.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


def publish_on_start(topic: str, publisher_id: int, count: int, depth: int, wait_subscriptions: int,
                     ready, start, out, done) -> None:
    """Publish ``count`` messages once ``start`` is set; report the path; exit on ``done``."""
    import agnoshm

    node = agnoshm.Node(f"pub{publisher_id}")
    pub = node.create_publisher(agnoshm.Bytes, topic, depth)
    wait_until(lambda: pub.get_subscription_count() >= wait_subscriptions, what="subscriptions")
    ready.set()
    start.wait(TIMEOUT)
    for i in range(count):
        msg = pub.borrow_loaned_message()
        fill(msg.alloc("data", 64 + publisher_id), publisher_id, i)
        pub.publish(msg)
    out.put(("published", path_of(pub), publisher_id, count))
    done.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


# -- the differential fuzzer: one hostile registry, both paths, the same answer ---------------

U64 = (1 << 64) - 1


def _outcome(call):
    """What ``call()`` returned, or the exception's type and message."""
    try:
        return ("ok", call())
    except Exception as err:  # noqa: BLE001 - compared, not judged
        return ("raised", type(err).__name__, str(err))


def differential(examples: int) -> bool:
    """Scribble on a live channel (ident, head, log words, entries: seq, address, size,
    timestamp) and on receipts (hold counts), then take through a pure and a native
    subscription of the same topic, and publish through a pure and a native publisher
    whose subscriptions' hold counts and topic generation were scribbled on.  Print
    ``tally`` and ``mismatch`` lines; return whether both paths always agreed."""
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    import agnoshm
    from agnoshm import context
    from agnoshm.registry import layout as L
    from agnoshm.transport.native_ports import NativePublisherPort, NativeSubscriberPort
    from agnoshm.transport.publish import PublisherPort
    from agnoshm.transport.receive import SubscriberPort

    node = agnoshm.Node("differential")
    runtime = context.get_runtime()
    assert runtime.native is not None, "run with AGNOSHM_NATIVE=1"
    pub = node.create_publisher(agnoshm.Bytes, "/differential", 8)
    bytes_type = pub.msg_type
    holder = node.create_polling_subscription(agnoshm.Bytes, "/differential", 8)
    for i in range(6):
        msg = pub.borrow_loaned_message()
        fill(msg.alloc("data", 32), 0, i)
        pub.publish(msg)
    runtime.listener.stop()  # single-threaded from here: nothing else touches the registry
    runtime.listener = None
    registry = runtime.registry
    capacity = registry.header.max_entries
    channel = registry.channel(pub._port.index)
    head_at = ctypes.addressof(channel.start) + L.ChannelHead.head.offset
    ident_at = ctypes.addressof(channel.start) + L.ChannelHead.ident.offset
    log_at = ctypes.addressof(channel.log)
    entries_at = ctypes.addressof(channel.entries)
    entry_size = ctypes.sizeof(L.Entry)
    pool = runtime.pool
    snapshot = ctypes.create_string_buffer(registry.size)
    ctypes.memmove(snapshot, registry.address, registry.size)
    # the messages' root structs (Bytes: the data sequence's triple), restored per example
    roots = [ctypes.c_uint64.from_address(entries_at + e * entry_size + 8).value
             for e in range(6)]
    root_bytes = [ctypes.string_at(root, 24) for root in roots]
    tally: collections.Counter = collections.Counter()
    mismatches: list = []

    def subscription(cls):
        starts: dict = {}
        index, topic = registry.add_subscription(
            "/differential", bytes_type.type_name, bytes_type.type_hash, 8, L.TRANSIENT_LOCAL,
            "/differential", starts)
        port = cls(runtime, index, topic, 8, starts=starts)
        port.view_as(bytes_type)  # takes hand out views, as a subscription's do
        return port

    def holds_of(port):
        return bytes(registry.memory[port._holds:port._holds + capacity * 4])

    def data_summary(array):
        interface = array.__array_interface__  # where it reads, without copying it
        return (interface["data"], interface["shape"], array.dtype.str, array.flags.writeable)

    def take_summary(port):
        views = port.take(8, True)  # a view's struct past the pool: MessageCorruptedError
        summary = [(type(view).__name__, view._owner.seq, view._address, view._owner.size,
                    view._owner.timestamp_ns, view._base, view._end, len(view._buf),
                    _outcome(lambda v=view: data_summary(v.data)))  # the C getter's, natively
                   for view in views]
        del views
        gc.collect()
        if isinstance(port, NativeSubscriberPort):
            port._reader.sync_cursors()
        return (summary, port.corrupted, port.held, holds_of(port),
                [c.cursor for c in port._channels])

    word = st.one_of(st.integers(0, U64), st.integers(0, 24),
                     st.sampled_from([U64, U64 - 1, 1 << 63, 1 << 48, (1 << 48) - 1]))
    log_word = st.one_of(word, st.builds(lambda s, e: s << L.LOG_SHIFT | e,
                                         st.integers(0, 12), st.integers(0, 2 * capacity)))
    pointer = st.one_of(st.just(0), st.integers(0, U64),
                        st.integers(pool.address - 4096, pool.address + 4096),
                        st.integers(pool.address + pool.size - 4096, pool.address + pool.size + 4096))
    channel_change = st.one_of(
        st.tuples(st.just("head"), st.just(0), word),
        st.tuples(st.just("ident"), st.just(0), word),
        st.tuples(st.just("log"), st.integers(0, capacity - 1), log_word),
        st.tuples(st.just("seq"), st.integers(0, capacity - 1), word),
        st.tuples(st.just("address"), st.integers(0, capacity - 1), pointer),
        st.tuples(st.just("size"), st.integers(0, capacity - 1), word),
        st.tuples(st.just("stamp"), st.integers(0, capacity - 1), word),
        st.tuples(st.just("hold"), st.integers(0, capacity - 1), st.integers(0, 255)),
        st.tuples(st.just("data"), st.integers(0, 5), pointer),  # a message's sequence triple
        st.tuples(st.just("count"), st.integers(0, 5), word))

    def poke(address, value, ctype=ctypes.c_uint64):
        ctype.from_address(address).value = value

    @settings(deadline=None, database=None, max_examples=examples, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(channel_change, min_size=1, max_size=6))
    # a message inside the pool whose root struct reaches past its end: MessageCorruptedError
    @example([("address", 0, pool.address + pool.size - 8), ("size", 0, 8)])
    @example([("address", 5, pool.address + pool.size - 1), ("size", 5, 1)])
    def receive(changes):
        ctypes.memmove(registry.address, snapshot, registry.size)
        for root, saved in zip(roots, root_bytes):
            ctypes.memmove(root, saved, len(saved))
        ports = [subscription(SubscriberPort), subscription(NativeSubscriberPort)]
        for port in ports:  # both at the topic's generation now (the second was listed later)
            with port._lock:
                port._refresh_channels()
        for what, i, value in changes:
            if what == "head":
                poke(head_at, value)
            elif what == "ident":
                poke(ident_at, value)
            elif what == "log":
                poke(log_at + 8 * i, value)
            elif what == "hold":
                for port in ports:
                    poke(registry.address + port._channels[0].holds + i, value, ctypes.c_uint8)
            elif what in ("data", "count"):
                poke(roots[i] + (0 if what == "data" else 8), value)
            else:
                field = {"seq": 0, "address": 8, "size": 16, "stamp": 24}[what]
                poke(entries_at + i * entry_size + field, value)
        outcomes = [_outcome(lambda p=p: take_summary(p)) for p in ports]
        tally["receive " + outcomes[0][0]] += 1
        if outcomes[0][0] == "raised":
            tally["receive raised " + outcomes[0][1]] += 1
        else:
            for view in outcomes[0][1][0]:  # msg.data of each: read, or what it raised
                tally[" ".join(("data",) + view[-1][:1 if view[-1][0] == "ok" else 2])] += 1
        if outcomes[0] != outcomes[1]:
            mismatches.append(("receive", changes, outcomes))
        for port in ports:
            port.destroyed = True
        del ports
        gc.collect()

    receive()

    def publisher(cls):
        index, topic = registry.add_publisher("/differential", bytes_type.type_name,
                                              bytes_type.type_hash, 4, L.VOLATILE, "/differential")
        return cls(runtime, index, topic, 4)

    publish_change = st.one_of(
        st.tuples(st.just("hold"), st.integers(0, capacity - 1), st.integers(0, 255)),
        st.tuples(st.just("generation"), st.just(0), word))

    def publish_summary(port, count):
        seqs = []
        for _ in range(count):
            loan = port.loan(32)
            seqs.append(port.publish(loan))
        port.reclaim()
        return seqs, port.held_count(), len(port._free_entries)

    holder_holds = registry.receipts_offset(holder._port.index) + registry.offsets.receipt.holds.offset
    generation_at = registry.address + (holder._port._generation_word << 3)

    @settings(deadline=None, database=None, max_examples=max(1, examples // 2), derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(publish_change, min_size=1, max_size=6), st.integers(1, capacity + 2))
    def send(changes, count):
        ctypes.memmove(registry.address, snapshot, registry.size)
        ports = [publisher(PublisherPort), publisher(NativePublisherPort)]
        for port in ports:
            with port._lock:
                port._refresh_subscriptions()
        for what, i, value in changes:
            if what == "hold":  # the holder subscription's count on entry i of each publisher
                for port in ports:
                    poke(registry.address + holder_holds + port.position * capacity + i, value,
                         ctypes.c_uint8)
            else:
                poke(generation_at, value)
        outcomes = [_outcome(lambda p=p: publish_summary(p, count)) for p in ports]
        tally["publish " + outcomes[0][0]] += 1
        if outcomes[0] != outcomes[1]:
            mismatches.append(("publish", changes, count, outcomes))
        for port in ports:
            port.destroyed = True

    send()
    ctypes.memmove(registry.address, snapshot, registry.size)
    print("tally", json.dumps(dict(tally)), flush=True)
    if mismatches:
        print("mismatch", json.dumps(mismatches[:5], default=repr), flush=True)
    return not mismatches


def main() -> None:
    kind, examples = sys.argv[1], int(sys.argv[2])
    import agnoshm

    try:
        agreed = {"differential": differential}[kind](examples)
    finally:
        agnoshm.shutdown()  # before exiting, however: nothing left in /dev/shm
    sys.exit(0 if agreed else 3)
