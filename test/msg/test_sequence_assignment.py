"""``msg.<sequence> = value`` on a loan, for sequences of primitives.

Raw data (bytes, bytearray, a C-contiguous byte memoryview, a C-contiguous numpy array of
the element dtype) is copied with one slice store; anything else takes the checked path.
Every value here is given to both the field's setter and the checked path's setter, and
both must end the same: the same elements, or the same error with the same message and
the field unchanged.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # for `import roundtrip_workers`
    sys.path.append(_HERE)

import roundtrip_workers as rw  # noqa: E402

import agnoshm  # noqa: E402
from agnoshm.msg import fields  # noqa: E402
from agnoshm.msg import layout as L  # noqa: E402
from agnoshm.msg.message import get_message, view_class  # noqa: E402

rw.register_test_package()
PRIMS = rw.type_name("Prims")
ALL = rw.type_name("All")


@pytest.fixture
def endpoints(isolated_domain, monkeypatch):
    monkeypatch.setenv("AGNOSHM_LINGER_SEC", "0")  # messages are left unread on purpose
    node = agnoshm.Node("assign")
    pub = node.create_publisher(PRIMS, "/prims", 4)
    sub = node.create_polling_subscription(PRIMS, "/prims", 4)
    return node, pub, sub


def primitive_sequences(type_name: str) -> list[L.FieldLayout]:
    return [f for f in get_message(type_name).layout.fields
            if f.value.kind == L.SEQUENCE and f.value.element.kind == L.PRIMITIVE]


def checked_setter(type_name: str, field: L.FieldLayout):
    """The setter every value went through before the raw-data path (the reference)."""
    return fields._sequence_property(type_name, field, True, view_class).fset


def outcome(setter, msg, name: str, value):
    """The field's elements after ``setter(msg, value)``, or the error and the field's
    elements (unchanged by a failed assignment)."""
    try:
        setter(msg, value)
    except Exception as err:
        return type(err), str(err), getattr(msg, name).tolist()
    return getattr(msg, name).tolist()


def raw_values() -> list:
    """Values the raw-data path takes (for some element types) and ones it hands on."""
    u8 = np.arange(250, 256, dtype=np.uint8)
    return [
        b"\x01\x02\xff", bytearray(b"\x00\x07"), memoryview(b"\x05\x06\x07"),
        memoryview(bytearray(b"\x80\x01")).cast("b"), memoryview(b"ab").cast("c"),
        memoryview(np.arange(3, dtype=np.uint8).reshape(1, 3)),  # 2-D, contiguous
        u8, u8.reshape(2, 3), np.arange(1, 4, dtype=np.int8), np.array([True, False, True]),
        np.arange(1, 4, dtype=np.int16), np.arange(3, dtype=np.uint32),
        np.arange(2, dtype=np.int64), np.arange(1, 3, dtype=np.uint64),
        np.array([1.5, -2.25], dtype=np.float32), np.array([[0.5, 1e300], [-3.0, 4.0]]),
        np.array(7.0),  # 0-d: one element, as the checked path reads it
        np.array([1.0, 3.5e38]),  # out of float32's range: an error there
        # the checked path's cases: non-contiguous, another dtype, another byte order,
        # Fortran order, Python values, typed buffers, empty values, wrong kinds
        np.arange(10, dtype=np.float64)[::3], memoryview(b"abcdef")[::2],
        np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.arange(3, dtype=">f8"),
        np.arange(3, dtype=">u2"), np.arange(250, 260, dtype=np.int64),
        memoryview(np.arange(3, dtype=np.int32)), memoryview(np.array([2.5])),
        [1, 2, 3], (0.5,), [True, False], b"", bytearray(), memoryview(b""),
        np.empty(0, dtype=np.uint8), np.empty(0), [], "abc", None, 5, 1.5, {1: 2},
        np.array([[1, 2], [3, 4]], dtype=np.uint8)[:, 0],  # a strided column
        np.ones(4, dtype=np.uint8), b"\x01\x02\x03\x04",  # past a bound of 3
    ]


def test_every_value_ends_as_the_checked_path_ends(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    for field in primitive_sequences(PRIMS):
        name = field.name
        checked = checked_setter(PRIMS, field)
        start = [1] if field.value.element.primitive != "bool" else [True]
        for value in raw_values():
            checked(msg, start)
            got = outcome(type(msg).__dict__[name].fset, msg, name, value)
            checked(msg, start)
            expected = outcome(checked, msg, name, value)
            assert got == expected, f"{name} = {value!r}"
    msg.uint8_seq = b"\x09\x08"
    msg.float64_seq = np.array([0.25, 0.5])
    msg.int16_bseq = np.array([-1, 2, 3], dtype=np.int16)
    pub.publish(msg)
    got = sub.take()
    assert got.uint8_seq.tolist() == [9, 8] and got.float64_seq.tolist() == [0.25, 0.5]
    assert got.int16_bseq.tolist() == [-1, 2, 3]


def test_a_bound_is_checked_with_the_same_error(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    msg.uint8_bseq = b"\x01\x02\x03"  # inclusive
    for value in (b"\x01\x02\x03\x04", bytearray(4), memoryview(b"abcd"),
                  np.zeros(4, dtype=np.uint8)):
        with pytest.raises(ValueError, match=rf"^{PRIMS}\.uint8_bseq: 4 elements exceed the "
                                             r"bound of 3$"):
            msg.uint8_bseq = value
        assert msg.uint8_bseq.tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match=r"float64_bseq: 4 elements exceed the bound of 3"):
        msg.float64_bseq = np.zeros(4)


def test_bytes_into_wider_elements_raise_as_before(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    with pytest.raises(TypeError, match=rf"^{PRIMS}\.int32_seq takes bytes only for byte, char "
                                        r"or uint8 elements, not int32: .*np\.int32\)$"):
        msg.int32_seq = b"\x00\x00\x00\x01"
    with pytest.raises(TypeError, match="bytearray only for byte, char or uint8"):
        msg.int8_seq = bytearray(2)


@pytest.mark.parametrize("when", ["published", "shut down"])
def test_assignment_to_a_finished_loan_raises_as_before(endpoints, when):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    field = get_message(PRIMS).layout.field("uint8_seq")
    checked = checked_setter(PRIMS, field)
    if when == "published":
        pub.publish(msg)
        message = f"this loaned {PRIMS} was published and may not be used any more"
    else:
        agnoshm.shutdown()
        message = f"agnoshm was shut down: this loaned {PRIMS}'s pool is gone"
    for value in (b"ab", bytearray(b"ab"), memoryview(b"ab"), np.zeros(2, dtype=np.uint8),
                  [1, 2], b"", np.zeros(2)):
        for setter in (type(msg).uint8_seq.fset, checked):
            with pytest.raises(agnoshm.MessageInvalidatedError) as info:
                setter(msg, value)
            assert str(info.value).startswith(message), (value, setter)


def test_a_field_assigned_from_its_own_storage_keeps_the_values(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    msg.uint8_seq = bytes(range(200))
    msg.float64_seq = np.arange(1000, dtype=np.float64)
    msg.uint8_seq = msg.uint8_seq  # copied into new storage before the old is freed
    msg.float64_seq = msg.float64_seq[10:]
    msg.int32_seq = np.arange(5, dtype=np.int32)
    msg.int32_seq = memoryview(msg.int32_seq)  # a typed buffer: the checked path
    pub.publish(msg)
    got = sub.take()
    assert got.uint8_seq.tobytes() == bytes(range(200))
    assert got.float64_seq.tolist() == list(np.arange(10, 1000, dtype=np.float64))
    assert got.int32_seq.tolist() == [0, 1, 2, 3, 4]


def test_bytes_messages_take_raw_data_and_round_trip(isolated_domain, monkeypatch):
    monkeypatch.setenv("AGNOSHM_LINGER_SEC", "0")
    node = agnoshm.Node("bytes")
    pub = node.create_publisher(agnoshm.Bytes, "/bytes", 8)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/bytes", 8)
    payloads = [b"x" * 64, bytearray(b"\x00\xff" * 3), memoryview(b"view"),
                np.frombuffer(b"numpy", dtype=np.uint8), b""]
    for payload in payloads:
        msg = pub.borrow_loaned_message()
        msg.data = payload
        pub.publish(msg)
    for payload in payloads:
        assert sub.take().data.tobytes() == bytes(payload)
    pub.publish(b"one copy")  # the one-copy path assigns the same way
    assert sub.take().data.tobytes() == b"one copy"


def test_reassigned_storage_is_freed_and_reused(endpoints):
    node, pub, sub = endpoints
    allocator = agnoshm.context.get_runtime().allocator
    msg = pub.borrow_loaned_message()
    msg.uint8_seq = b"\x00" * 100
    msg.float64_seq = np.zeros(10)
    used = allocator.used_bytes
    for i in range(500):
        msg.uint8_seq = bytes([i % 256]) * (100 + i % 7) if i % 2 else bytearray(100)
        msg.float64_seq = np.full(10 + i % 3, float(i))
        msg.uint8_seq = b"\x00" * 100
        msg.float64_seq = np.zeros(10)
    assert allocator.used_bytes == used
    msg.uint8_seq = b""  # an empty value frees the storage and leaves no pointer
    msg.float64_seq = np.empty(0)
    assert allocator.used_bytes < used and msg.uint8_seq.size == 0
    with pytest.raises(ValueError, match="exceed the bound"):
        msg.uint8_bseq = b"\x00" * 4  # a refused value allocates nothing
    assert allocator.used_bytes < used
    before = allocator.used_bytes
    dropped = pub.borrow_loaned_message()
    dropped.uint8_seq = b"\x01" * 1000
    dropped.float64_seq = np.ones(100)
    del dropped  # an unpublished loan that is dropped gives everything back
    assert allocator.used_bytes == before
