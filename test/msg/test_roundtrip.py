"""Every standard type (builtin_interfaces, std_msgs, geometry_msgs, sensor_msgs, nav_msgs)
and the test package, with seeded random valid values: through a loan and back, through
the one-copy paths (dict, rosbags message), through rosbags' CDR, and across processes.

Floats are compared bit for bit (NaN, -0.0, infinities and subnormals included): the
views store them in place, so nothing may round them.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # for `import roundtrip_workers`, here and in spawned children
    sys.path.append(_HERE)

import roundtrip_workers as rw  # noqa: E402

import agnoshm  # noqa: E402
from agnoshm.msg import layout_of  # noqa: E402
from agnoshm.msg.coerce import assign  # noqa: E402
from agnoshm.msg.types import default_registry  # noqa: E402

SEED = 20240607
PACKAGES = ("builtin_interfaces", "std_msgs", "geometry_msgs", "sensor_msgs", "nav_msgs")
STANDARD_TYPES = [n for n in default_registry().names() if n.split("/")[0] in PACKAGES]
TEST_TYPES = rw.register_test_package()
ALL_TYPES = STANDARD_TYPES + TEST_TYPES
CROSS_PROCESS_TYPES = ["sensor_msgs/msg/Image", "sensor_msgs/msg/PointCloud2",
                       "nav_msgs/msg/Odometry", "sensor_msgs/msg/JointState",
                       rw.type_name("All"), rw.type_name("Prims")]
MESSAGES = 3  # per type: through a loan, one-copy from a dict, one-copy from rosbags


def test_the_type_list_is_complete():
    assert len(STANDARD_TYPES) >= 90, STANDARD_TYPES
    for name in ("builtin_interfaces/msg/Time", "std_msgs/msg/Header", "std_msgs/msg/Empty",
                 "geometry_msgs/msg/PoseWithCovarianceStamped", "sensor_msgs/msg/Image",
                 "sensor_msgs/msg/PointCloud2", "nav_msgs/msg/Odometry", "nav_msgs/msg/Path"):
        assert name in STANDARD_TYPES


def _cdr_round_trip(view, name: str):
    """``view`` → rosbags → CDR bytes → rosbags message."""
    typestore = default_registry().rosbags.typestore
    return typestore.deserialize_cdr(typestore.serialize_cdr(view.to_rosbags(), name), name)


@pytest.mark.parametrize("name", ALL_TYPES)
def test_round_trip(isolated_domain, name):
    layout = layout_of(name)
    cdr = not rw.has_wstring(layout)  # rosbags has no wstring: no CDR for those types
    values = [rw.message_values(name, SEED, k) for k in range(MESSAGES)]
    node = agnoshm.Node("roundtrip")
    pub = node.create_publisher(name, "/rt", MESSAGES)
    sub = node.create_polling_subscription(name, "/rt", MESSAGES)

    # 1. through a loan: assign the dict field by field, read it back before publishing
    msg = pub.borrow_loaned_message()
    for key, value in values[0].items():
        setattr(msg, key, value)
    rw.assert_same(values[0], msg.to_dict(), "loaned")
    pub.publish(msg)
    # 2. the one-copy path from a dict
    pub.publish(values[1])
    # 3. the one-copy path from a rosbags message (from CDR, so byte is rosbags' int8)
    if cdr:
        typestore = default_registry().rosbags.typestore
        from_cdr = typestore.deserialize_cdr(
            typestore.serialize_cdr(_rosbags_message(values[2], name), name), name)
        pub.publish(from_cdr)
    else:
        msg = pub.borrow_loaned_message()
        assign(msg, values[2])
        pub.publish(msg)

    for k, expected in enumerate(values):
        received = sub.take()
        assert received is not None, f"message {k} of {name} was not received"
        assert type(received).__name__ == "Received" + name.rsplit("/", 1)[1]
        rw.assert_same(expected, received.to_dict(), f"received[{k}]")
        if cdr:
            back = _cdr_round_trip(received, name)
            rw.assert_same(expected, rw.rosbags_to_plain(back, layout), f"cdr[{k}]")
        del received
    assert sub.take() is None


def _rosbags_message(values: dict, name: str):
    """A rosbags message holding ``values`` (built through a loan of a throwaway publisher)."""
    node = agnoshm.Node("builder")
    pub = node.create_publisher(name, "/builder", 1)
    msg = pub.borrow_loaned_message()
    assign(msg, values)
    built = msg.to_rosbags()
    msg._owner.discard()
    node.destroy_node()
    return built


def test_cdr_bytes_equal_rosbags_own_serialization(isolated_domain):
    """The CDR of to_rosbags() equals rosbags' CDR of a message it built itself."""
    typestore = default_registry().rosbags.typestore
    Image = typestore.types["sensor_msgs/msg/Image"]
    Header = typestore.types["std_msgs/msg/Header"]
    Time = typestore.types["builtin_interfaces/msg/Time"]
    data = np.arange(2 * 3 * 3, dtype=np.uint8)
    reference = Image(header=Header(stamp=Time(sec=5, nanosec=6), frame_id="cam"), height=2,
                      width=3, encoding="rgb8", is_bigendian=0, step=9, data=data)
    node = agnoshm.Node("n")
    pub = node.create_publisher(Image, "/img", 1)  # a rosbags class as the type
    sub = node.create_polling_subscription("sensor_msgs/msg/Image", "/img", 1)
    pub.publish(reference)
    received = sub.take()
    assert typestore.serialize_cdr(received.to_rosbags(), "sensor_msgs/msg/Image") == \
        typestore.serialize_cdr(reference, "sensor_msgs/msg/Image")


# --------------------------------------------------------------------------- across processes


def _context():
    import multiprocessing

    return multiprocessing.get_context("spawn")


def _join(process):
    process.join(rw.TIMEOUT)
    assert process.exitcode == 0, f"{process.name} exited with {process.exitcode}"


def test_child_publishes_parent_receives_in_place(isolated_domain, backend):
    ctx = _context()
    out, done = ctx.Queue(), ctx.Event()
    node = agnoshm.Node("roundtrip_sub")
    subs = [node.create_polling_subscription(name, f"/rt{i}", MESSAGES)
            for i, name in enumerate(CROSS_PROCESS_TYPES)]
    child = ctx.Process(target=rw.publish_values, args=(CROSS_PROCESS_TYPES, SEED, MESSAGES, out, done))
    child.start()
    try:
        kind, pid, pool_address, pool_size = out.get(timeout=rw.TIMEOUT)
        assert kind == "published" and pid == child.pid
        own = agnoshm.context.get_runtime().pool
        arrays = 0
        for name, sub in zip(CROSS_PROCESS_TYPES, subs):
            for k in range(MESSAGES):
                received = sub.take()
                assert received is not None, f"{name}[{k}] not received"
                rw.assert_same(rw.message_values(name, SEED, k), received.to_dict(), f"{name}[{k}]")
                for array in rw._arrays(received):
                    if array.size:  # read in place in the child's pool, read-only
                        assert pool_address <= array.ctypes.data < pool_address + pool_size
                        assert not own.address <= array.ctypes.data < own.address + own.size
                        assert not array.flags.writeable
                        arrays += 1
                del received
        assert arrays > 0
        assert all(sub.take() is None for sub in subs)
    finally:
        done.set()
        _join(child)


def test_parent_publishes_child_receives(isolated_domain):
    ctx = _context()
    inbox, out = ctx.Queue(), ctx.Queue()
    node = agnoshm.Node("roundtrip_pub")
    pubs = [node.create_publisher(name, f"/rt{i}", MESSAGES) for i, name in enumerate(CROSS_PROCESS_TYPES)]
    child = ctx.Process(target=rw.take_values, args=(CROSS_PROCESS_TYPES, MESSAGES, inbox, out))
    child.start()
    try:
        kind, pid = out.get(timeout=rw.TIMEOUT)  # its subscriptions exist: publish
        assert kind == "ready" and pid == child.pid
        for pub in pubs:
            assert pub.get_subscription_count() == 1
        for name, pub in zip(CROSS_PROCESS_TYPES, pubs):
            for k in range(MESSAGES):
                msg = pub.borrow_loaned_message()
                assign(msg, rw.message_values(name, SEED, k))
                pub.publish(msg)
        pool = agnoshm.context.get_runtime().pool
        inbox.put((pool.address, pool.size))
        kind, results = out.get(timeout=rw.TIMEOUT)
        assert kind == "taken"
        arrays = 0
        for name, taken in results:
            assert len(taken) == MESSAGES
            for k, item in enumerate(taken):
                assert item is not None, f"{name}[{k}] not received by the child"
                values, in_pool, class_name = item
                assert class_name == "Received" + name.rsplit("/", 1)[1]
                rw.assert_same(rw.message_values(name, SEED, k), values, f"{name}[{k}]")
                assert all(in_pool), f"{name}[{k}]: an array outside our pool or writable"
                arrays += len(in_pool)
        assert arrays > 0
    finally:
        _join(child)
