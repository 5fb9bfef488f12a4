"""Child-process fuzzers for test/test_hostile_input.py.

A fuzzer that could crash the interpreter (a read outside a mapping) runs in its
own process: ``python -c 'import hostile_workers as h; h.main()' KIND EXAMPLES``.
It runs hypothesis inside, catches what each example raises, prints one line
``tally <json>`` (exception type -> count) and exits 0; it exits 3 if an example
raised an exception of a type the contract does not allow.  A signal (SIGSEGV,
SIGBUS) shows up as a negative exit status: the test fails on it.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import json
import os
import struct
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

U32 = st.integers(0, 0xFFFFFFFF)
U64 = st.integers(0, (1 << 64) - 1)

tally: collections.Counter = collections.Counter()
unexpected: list[str] = []


def _settings(examples: int):
    return settings(deadline=None, database=None, max_examples=examples, derandomize=True,
                    suppress_health_check=list(HealthCheck))


def _classify(err: BaseException, allowed: tuple) -> None:
    tally[type(err).__name__] += 1
    if not isinstance(err, allowed):
        unexpected.append(f"{type(err).__name__}: {err}")


# -- registry records -------------------------------------------------------------------------


def registry_fuzz(examples: int) -> None:
    import agnoshm
    from agnoshm import context
    from agnoshm.errors import AgnoshmError
    from agnoshm.registry import layout as L
    from workers import fill

    node = agnoshm.Node("hostile")
    pub = node.create_publisher(agnoshm.Bytes, "/hostile", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/hostile", 8)
    node.create_polling_subscription(agnoshm.Bytes, "/hostile_other", 4)
    runtime = context.get_runtime()
    runtime.listener.stop()  # single-threaded from here: nothing else touches the registry
    runtime.listener = None
    registry = runtime.registry
    port = sub._port
    for i in range(3):
        msg = pub.borrow_loaned_message()
        fill(msg.alloc("data", 64), 0, i)
        pub.publish(msg)
    snapshot = ctypes.create_string_buffer(registry.size)
    ctypes.memmove(snapshot, registry.address, registry.size)
    h = registry.header

    def field_targets():
        """(address, ctypes type) of every field a hostile process could scribble on."""
        targets = []

        def add(record, name):
            field = getattr(type(record), name)
            ctype = next(dict(k._fields_)[name] for k in type(record).__mro__
                         if name in dict(getattr(k, "_fields_", ())))
            if issubclass(ctype, ctypes.Array):  # each element (Entry.refs: its words)
                for i in range(ctype._length_):
                    targets.append((ctypes.addressof(record) + field.offset
                                    + i * ctypes.sizeof(ctype._type_), ctype._type_))
            else:
                targets.append((ctypes.addressof(record) + field.offset, ctype))

        for t in range(h.max_topics):
            for name in ("state", "n_publishers", "n_subscriptions", "generation"):
                add(registry.topics[t], name)
            base = ctypes.addressof(registry.topics[t])
            topic_record = registry.offsets.topic_record
            for pos in (0, 1, 2, h.max_publishers_per_topic - 1):
                targets.append((base + topic_record.publishers.offset + 4 * pos, ctypes.c_uint32))
            for pos in (0, 1, 2, 64, h.max_subscriptions_per_topic - 1):
                targets.append((base + topic_record.subscriptions.offset + 4 * pos,
                                ctypes.c_uint32))
        for r in list(registry.publishers)[:4]:
            for name in ("state", "topic", "process", "depth", "incarnation", "position"):
                add(r, name)
        for r in list(registry.subscriptions)[:4]:
            for name in ("state", "topic", "process", "depth", "bit", "held", "incarnation"):
                add(r, name)
        for p in range(2):
            channel = registry.channel(p)
            for name in ("ident", "head"):
                add(channel.start, name)
            for i in range(6):
                targets.append((ctypes.addressof(channel.log) + 8 * i, ctypes.c_uint64))
            for e in channel.entries[:6]:
                for name in ("seq", "address", "size"):
                    add(e, name)
        for s in range(2):
            receipts = registry.receipts(s)
            for i in range(3):
                targets.append((ctypes.addressof(receipts.cursors) + 8 * i, ctypes.c_uint64))
            for i in range(6):
                targets.append((ctypes.addressof(receipts.holds) + i, ctypes.c_uint8))
        for p in list(registry.processes)[:3]:
            # not pid: reaping a "dead" record unlinks the objects named after its pid
            for name in ("state", "incarnation", "backend", "pool_address", "pool_size"):
                add(p, name)
        return targets

    targets = field_targets()
    values = st.one_of(U64, st.integers(0, 300), st.sampled_from([0, 1, 2, 0xFFFFFFFF,
                                                                 (1 << 64) - 1]))

    @_settings(examples)
    @given(st.lists(st.tuples(st.integers(0, len(targets) - 1), values), min_size=1, max_size=6))
    def check(corruptions):
        for which, value in corruptions:
            address, ctype = targets[which]
            ctype.from_address(address).value = value & ((1 << (8 * ctypes.sizeof(ctype))) - 1)
        port._generation = -1
        for operation in (registry.check_consistency, lambda: _take_all(port),
                          registry.reap_dead, lambda: _locked_repair(registry)):
            try:
                operation()
                tally["ok"] += 1
            except Exception as err:  # noqa: BLE001 - classified
                _classify(err, (AgnoshmError, ValueError, OSError))
        gc.collect()  # release every lease taken from the corrupted registry
        ctypes.memmove(registry.address, snapshot, registry.size)
        port._generation = -1

    check()


def _take_all(port) -> None:
    import agnoshm

    from agnoshm.msg.message import get_message

    bytes_type = get_message(agnoshm.Bytes)
    leases = port.take(8)
    for lease in leases:
        bytes(bytes_type.received(lease).data[:16])
    del leases


def _locked_repair(registry) -> None:
    with registry.lock:
        registry.repair()


# -- message views ------------------------------------------------------------------------------


def views_fuzz(examples: int) -> None:
    import agnoshm
    from agnoshm.msg.checks import MessageCorruptedError
    from agnoshm.msg.message import get_message

    node = agnoshm.Node("hostile_views")
    joint = get_message("sensor_msgs/msg/JointState")
    text = get_message("std_msgs/msg/String")
    pubs = {t: node.create_publisher(t, f"/hv_{i}", 4) for i, t in enumerate((joint, text))}
    subs = {t: node.create_polling_subscription(t, f"/hv_{i}", 4)
            for i, t in enumerate((joint, text))}
    pool = agnoshm.context.get_runtime().pool
    end = pool.address + pool.size

    pointer = st.one_of(
        st.just(0), U64,
        st.integers(pool.address - 4096, pool.address + 4096),
        st.integers(end - 4096, end + 4096),
        st.integers(pool.address, end))
    size = st.one_of(st.integers(0, 64), st.integers(0, 1 << 40), U64)
    triple = st.tuples(pointer, size, size)

    @_settings(examples)
    @given(st.sampled_from(["joint", "text"]), st.integers(0, 7), triple, st.booleans())
    def check(kind, which, values, drop_nul):
        msg_type = joint if kind == "joint" else text
        msg = pubs[msg_type].borrow_loaned_message()
        if kind == "joint":
            msg.header.frame_id = "base_link"
            msg.name = ["a", "bb", "ccc"]
            msg.position = [1.0, 2.0, 3.0]
            # triples: frame_id, name, position, velocity, effort, name[0..2]
            name_data = struct.unpack_from("=Q", pool.buffer, msg._address + 32 - pool.address)[0]
            places = [msg._address + 8, msg._address + 32, msg._address + 56, msg._address + 80,
                      msg._address + 104, name_data, name_data + 24, name_data + 48]
        else:
            msg.data = "hello"
            places = [msg._address] * 8
        place = places[which]
        data, _, _ = struct.unpack_from("=QQQ", pool.buffer, place - pool.address)
        if drop_nul and kind == "text":
            ctypes.memset(data + 5, ord("x"), 1)  # "hello" loses its terminator
        else:
            struct.pack_into("=QQQ", pool.buffer, place - pool.address, *values)
        pubs[msg_type].publish(msg)
        received = subs[msg_type].take()
        assert received is not None
        try:
            received.to_dict()
            tally["ok"] += 1
        except Exception as err:  # noqa: BLE001 - classified
            _classify(err, (MessageCorruptedError,))
        del received, msg

    check()


def main() -> None:
    kind, examples = sys.argv[1], int(sys.argv[2])
    import agnoshm

    {"registry": registry_fuzz, "views": views_fuzz}[kind](examples)
    agnoshm.shutdown()
    print("tally", json.dumps(dict(tally)), flush=True)
    if unexpected:
        print("unexpected", json.dumps(unexpected[:20]), flush=True)
        os._exit(3)
