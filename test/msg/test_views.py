"""Loaned and received views of every field kind (the test package of roundtrip_workers):
reading and writing, zero copy, freeing re-assigned storage, assignment from Python
values / numpy / dicts / views / rosbags, constants, defaults, repr, to_dict/to_rosbags,
and how long a received message stays referenced.
"""

from __future__ import annotations

import array
import ctypes
import os
import subprocess
import sys
import types

import numpy as np
import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # for `import roundtrip_workers`
    sys.path.append(_HERE)

import roundtrip_workers as rw  # noqa: E402
import ros_packages  # noqa: E402
from sources import child_cwd, child_env  # noqa: E402

import agnoshm  # noqa: E402
from agnoshm.msg import convert  # noqa: E402
from agnoshm.msg import layout as L  # noqa: E402
from agnoshm.msg.primitives import TABLE  # noqa: E402
from agnoshm.msg.types import default_registry  # noqa: E402

rw.register_test_package()
ALL = rw.type_name("All")
PKG = rw.PACKAGE
DOT = PKG + ".msg."


def point(x=1.0, y=-2.5, z=-3, rgb=(1, 2, 255), ok=True) -> dict:
    return {"x": x, "y": y, "z": z, "rgb": list(rgb), "ok": ok}


def named(name="n", id=3, values=(1.5, -0.25), where=None) -> dict:
    return {"name": name, "id": id, "values": list(values), "where": where or point()}


def patch(tag=200, letter=ord("A")) -> dict:
    return {"center": point(), "corners": [point(x=2.0), point(x=3.0, ok=False)], "tag": tag,
            "letter": letter, "nothing": {}}


#: a value for every field of All (float32 values are float32-representable)
FULL = {
    "b": True, "by": 255, "ch": ord("z"), "i8": -128, "u8": 255, "i16": -32768, "u16": 65535,
    "i32": -2147483648, "u32": 4294967295, "i64": -(1 << 63), "u64": (1 << 64) - 1,
    "f32": 3.4028234663852886e38, "f64": -1.7976931348623157e308,
    "s": "héllo wörld 日本 🙂", "bs": "abcde", "ws": "wide é€日本", "bws": "wxyz",
    "point": point(), "named": named(), "empty": {}, "patch": patch(),
    "int_array": [1, -2, 3], "bool_array": [True, False], "string_array": ["", "zwei"],
    "bstring_array": ["abcd", "x"], "point_array": [point(x=4.0), point(x=5.0)],
    "named_array": [named("a"), named("b", values=())],
    "f64_seq": [0.5, -1e300, 5e-324], "u8_bseq": [0, 1, 254, 255], "bool_seq": [False, True, True],
    "byte_seq": [0, 128, 255], "string_seq": ["a", "", "ccc"], "bstring_bseq": ["ab", "xyz"],
    "wstring_seq": ["ü", "日本"], "point_seq": [point(x=6.0), point(x=7.0), point(x=8.0)],
    "point_bseq": [point(x=9.0)], "patch_seq": [patch(tag=1), patch(tag=2)],
    "named_seq": [named("c"), named("d", values=(7.0,))], "named_bseq": [named("e")],
    "empty_seq": [{}, {}], "def_i8": 1, "def_str": "set", "def_arr": [0.5, 0.25, 0.125],
    "def_seq": [-1], "def_bool": False, "def_strs": ["x"],
}


FULL_FIELD_ORDER = [f.name for f in default_registry().get(ALL).fields]
RCLPY_SPELLINGS = {
    "b": "boolean", "by": "octet", "ch": "uint8", "f32": "float", "f64": "double",
    "u64": "uint64", "s": "string", "bs": "string<5>", "ws": "wstring", "bws": "wstring<4>",
    "point": f"{PKG}/Point", "int_array": "int32[3]", "bstring_array": "string<4>[2]",
    "named_array": f"{PKG}/Named[2]", "f64_seq": "sequence<double>",
    "u8_bseq": "sequence<uint8, 4>", "bstring_bseq": "sequence<string<3>, 2>",
    "named_seq": f"sequence<{PKG}/Named>", "byte_seq": "sequence<octet>",
}


@pytest.fixture(autouse=True)
def no_linger(monkeypatch):
    """Tests leave messages unread on purpose: shutdown need not wait for a subscriber."""
    monkeypatch.setenv("AGNOSHM_LINGER_SEC", "0")


@pytest.fixture
def endpoints(isolated_domain):
    """A node with a publisher and a polling subscription of All on /all (depth 1)."""
    node = agnoshm.Node("views")
    pub = node.create_publisher(ALL, "/all", 1)
    sub = node.create_polling_subscription(ALL, "/all", 1)
    return node, pub, sub


def loaded(pub, values=FULL):
    msg = pub.borrow_loaned_message()
    for key, value in values.items():
        setattr(msg, key, value)
    return msg


def round_trip(pub, sub, values=FULL):
    pub.publish(loaded(pub, values))
    received = sub.take()
    assert received is not None
    return received


def test_the_test_package_has_every_field_kind():
    layout = agnoshm.get_message(ALL).layout
    kinds = {(f.value.kind, f.value.element.kind if f.value.element else None,
              bool(f.value.bound or f.value.string_bound)) for f in layout.fields}
    for kind in [("primitive", None, False), ("string", None, False), ("string", None, True),
                 ("wstring", None, False), ("wstring", None, True), ("message", None, False),
                 ("array", "primitive", False), ("array", "string", False),
                 ("array", "message", False), ("sequence", "primitive", False),
                 ("sequence", "primitive", True), ("sequence", "string", False),
                 ("sequence", "string", True), ("sequence", "message", False),
                 ("sequence", "message", True), ("sequence", "wstring", False)]:
        assert kind in kinds, kind
    primitives = {f.value.primitive for f in layout.fields if f.value.kind == "primitive"}
    assert primitives == {"bool", "byte", "char", "int8", "uint8", "int16", "uint16", "int32",
                          "uint32", "int64", "uint64", "float32", "float64"}
    assert not agnoshm.get_message(rw.type_name("Point")).layout.holds_pointers
    assert not agnoshm.get_message(rw.type_name("Patch")).layout.holds_pointers
    assert agnoshm.get_message(rw.type_name("Named")).layout.holds_pointers
    assert agnoshm.get_message(rw.type_name("Empty")).struct_size == 1
    assert set(FULL) == {f.name for f in layout.fields}


# --------------------------------------------------------------------------- every field kind


def _check_kinds(view, writable: bool) -> None:
    """What each field kind reads as, in a loaned (writable) or received view."""
    prefix = "Loaned" if writable else "Received"
    assert type(view).__name__ == prefix + "All"
    for name in ("b", "def_bool"):
        assert type(getattr(view, name)) is bool
    for name in ("by", "ch", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64"):
        assert type(getattr(view, name)) is int, name
    assert type(view.f32) is float and type(view.f64) is float
    for name in ("s", "bs", "ws", "bws"):
        assert type(getattr(view, name)) is str
    assert type(view.point).__name__ == prefix + "Point"
    assert type(view.named).__name__ == prefix + "Named"
    assert type(view.named.where).__name__ == prefix + "Point"
    assert type(view.empty).__name__ == prefix + "Empty"
    primitive_arrays = {"int_array": "i4", "bool_array": "?", "f64_seq": "f8", "u8_bseq": "u1",
                        "bool_seq": "?", "byte_seq": "u1", "def_arr": "f4", "def_seq": "i2"}
    for name, dtype in primitive_arrays.items():
        array = getattr(view, name)
        assert isinstance(array, np.ndarray) and array.dtype == np.dtype(dtype), name
        assert array.flags.writeable == writable, name
    assert isinstance(view.point.rgb, np.ndarray) and view.point.rgb.dtype == np.uint8
    for name in ("string_array", "bstring_array", "string_seq", "bstring_bseq", "wstring_seq",
                 "def_strs"):
        value = getattr(view, name)  # a loan's can be written element by element
        expected_type = agnoshm.msg.storage.WritableStrings if writable else tuple
        assert isinstance(value, expected_type) and all(type(v) is str for v in value), name
    for name in ("point_array", "point_seq", "point_bseq", "patch_seq", "empty_seq"):
        value = getattr(view, name)  # pointer-free messages: structured numpy arrays
        assert isinstance(value, np.ndarray) and value.dtype.names, name
        assert value.flags.writeable == writable, name
    assert view.point_seq.dtype == agnoshm.msg.numpy_dtype(agnoshm.get_message(rw.type_name("Point")).layout)
    for name in ("named_array", "named_seq", "named_bseq"):
        value = getattr(view, name)  # messages with pointers: tuples of views
        assert isinstance(value, tuple), name
        assert all(type(v).__name__ == prefix + "Named" for v in value), name


def test_every_field_kind_loaned_and_received(endpoints):
    node, pub, sub = endpoints
    msg = loaded(pub)
    _check_kinds(msg, writable=True)
    rw.assert_same(FULL, msg.to_dict(), "loaned")
    pub.publish(msg)
    received = sub.take()
    _check_kinds(received, writable=False)
    rw.assert_same(FULL, received.to_dict(), "received")
    # reads of single fields, element views and structured rows
    assert received.s == FULL["s"] and received.ws == FULL["ws"]
    assert received.named_seq[1].values.tolist() == [7.0]
    assert received.named_array[0].where.rgb.tolist() == [1, 2, 255]
    assert received.point_seq["x"].tolist() == [6.0, 7.0, 8.0]
    assert received.patch_seq[1]["corners"]["x"].tolist() == [2.0, 3.0]
    assert received.patch.corners["ok"].tolist() == [True, False]
    assert received.u64 == (1 << 64) - 1 and received.i64 == -(1 << 63)
    # spelled as rclpy spells them (rosidl_generator_py's _fields_and_field_types)
    spelled = received.get_fields_and_field_types()
    assert list(spelled) == list(FULL_FIELD_ORDER)
    assert {name: spelled[name] for name in RCLPY_SPELLINGS} == RCLPY_SPELLINGS
    assert received.seq == 1 and received.timestamp_ns > 0


def test_every_primitive_width_at_its_limits(isolated_domain):
    name = rw.type_name("Prims")
    node = agnoshm.Node("prims")
    pub = node.create_publisher(name, "/prims", 1)
    sub = node.create_polling_subscription(name, "/prims", 1)
    limits = {"bool": (False, True), "float32": (-3.4028234663852886e38, 1.401298464324817e-45),
              "float64": (-1.7976931348623157e308, 5e-324)}
    limits.update({p: (lo, hi) for p, (lo, hi) in rw._INT_RANGES.items()})
    values = {}
    for primitive in rw._PRIMITIVES:
        low, high = limits[primitive]
        values.update({f"{primitive}_v": high, f"{primitive}_arr": [low, high],
                       f"{primitive}_seq": [high, low, high], f"{primitive}_bseq": [low]})
    pub.publish(loaded(pub, values))
    received = sub.take()
    rw.assert_same(values, received.to_dict())
    for primitive in rw._PRIMITIVES:
        dtype = np.dtype(TABLE[primitive].dtype)
        for suffix in ("arr", "seq", "bseq"):
            array = getattr(received, f"{primitive}_{suffix}")
            assert array.dtype == dtype and not array.flags.writeable


def test_wstrings(isolated_domain):
    name = rw.type_name("Wide")
    node = agnoshm.Node("wide")
    pub = node.create_publisher(name, "/wide", 1)
    sub = node.create_polling_subscription(name, "/wide", 1)
    values = {"w": "日本語 é\uffee", "bw": "four", "ws_seq": ["", "ü", "€€"], "bws_seq": ["abc"],
              "ws_arr": ["x", "日"]}
    msg = loaded(pub, values)
    # stored as rosidl_runtime_c__U16String: UTF-16 units with a NUL after them
    data, size, capacity = (ctypes.c_size_t * 3).from_address(msg._address)
    assert size == len(values["w"]) and capacity == size + 1
    assert ctypes.string_at(data, 2 * (size + 1)) == values["w"].encode("utf-16-le") + b"\0\0"
    pub.publish(msg)
    rw.assert_same(values, sub.take().to_dict())


def test_empty_message(isolated_domain):
    name = rw.type_name("Empty")
    msg_type = agnoshm.get_message(name)
    assert msg_type.struct_size == 1
    node = agnoshm.Node("empty")
    pub = node.create_publisher(name, "/empty", 2)
    sub = node.create_polling_subscription(name, "/empty", 2)
    pub.publish(pub.borrow_loaned_message())
    pub.publish({})
    for _ in range(2):
        received = sub.take()
        assert received.to_dict() == {}
        assert received.get_fields_and_field_types() == {}
        assert repr(received) == DOT + "Empty()"
        rosbags = received.to_rosbags()
        assert rosbags.__msgtype__ == name
    assert sub.take() is None
    # std_msgs/Empty too, and empties nested and in sequences
    std = node.create_publisher("std_msgs/msg/Empty", "/std_empty", 1)
    std_sub = node.create_polling_subscription("std_msgs/msg/Empty", "/std_empty", 1)
    std.publish({})
    assert std_sub.take().to_dict() == {}


def test_sequences_of_empty_messages(endpoints):
    node, pub, sub = endpoints
    received = round_trip(pub, sub, {"empty_seq": [{}, {}, {}], "empty": {}})
    assert len(received.empty_seq) == 3 and received.empty_seq.dtype.itemsize == 1
    assert received.to_dict()["empty_seq"] == [{}, {}, {}]
    assert received.to_rosbags().empty_seq[0].__msgtype__ == rw.type_name("Empty")


# --------------------------------------------------------------------------- constants, defaults


def test_constants_are_class_attributes_of_the_type_and_views(endpoints):
    node, pub, sub = endpoints
    msg_type = agnoshm.get_message(ALL)
    assert (msg_type.ANSWER, msg_type.GREETING, msg_type.PI) == (42, "hello", 3.14)
    assert agnoshm.get_message(rw.type_name("Point")).MAX_Z == 100
    msg = pub.borrow_loaned_message()
    assert type(msg).ANSWER == 42 and msg.GREETING == "hello" and msg.PI == 3.14
    assert msg.point.MAX_Z == 100 and type(msg.point).MAX_Z == 100
    with pytest.raises(AttributeError):
        msg.ANSWER = 1  # a constant, not a field
    assert "ANSWER" not in msg.to_dict() and "ANSWER" not in msg.get_fields_and_field_types()
    pub.publish(msg)
    received = sub.take()
    assert type(received).ANSWER == 42 and received.GREETING == "hello"
    assert received.named.where.MAX_Z == 100
    assert received.to_rosbags().ANSWER == 42


def _check_defaults_and_zeros(view) -> None:
    values = view.to_dict()
    assert values["def_i8"] == -7 and values["def_str"] == "dflt"
    assert values["def_arr"] == [1.5, 2.5, 3.5] and values["def_seq"] == [1, -2, 3]
    assert values["def_bool"] is True and values["def_strs"] == ["a", "b,c"]
    # defaults of nested messages, also inside fixed arrays (Named.id 7, Point.y 0.5)
    assert values["named"]["id"] == 7 and values["named"]["where"]["y"] == 0.5
    assert [n["id"] for n in values["named_array"]] == [7, 7]
    assert [n["where"]["y"] for n in values["named_array"]] == [0.5, 0.5]
    assert values["point"]["y"] == 0.5 and [p["y"] for p in values["point_array"]] == [0.5, 0.5]
    assert values["patch"]["center"]["y"] == 0.5
    assert [p["y"] for p in values["patch"]["corners"]] == [0.5, 0.5]
    # everything else zero / empty
    assert values["i32"] == 0 and values["f64"] == 0.0 and values["s"] == "" and values["ws"] == ""
    assert values["b"] is False and values["point"]["x"] == 0.0 and values["named"]["name"] == ""
    assert values["int_array"] == [0, 0, 0] and values["string_array"] == ["", ""]
    for name in ("f64_seq", "string_seq", "point_seq", "named_seq", "empty_seq", "byte_seq"):
        assert values[name] == [], name


def test_default_values_applied_by_borrow_loaned_message(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    _check_defaults_and_zeros(msg)
    pub.publish(msg)
    _check_defaults_and_zeros(sub.take())
    # a loan in reused memory starts over: zeros and defaults, nothing of the last message
    for _ in range(3):
        pub.publish(loaded(pub))
        pub._port.reclaim()
    msg = pub.borrow_loaned_message()
    _check_defaults_and_zeros(msg)
    wide = node.create_publisher(rw.type_name("Wide"), "/wide", 1).borrow_loaned_message()
    assert wide.bw == "abc" and wide.w == ""


def test_bytes_by_name_in_a_fresh_process_is_agnoshm_bytes(isolated_domain):
    probe = ("import agnoshm; t = agnoshm.get_message('agnoshm/msg/Bytes'); "
             "print(t.type_name, t.struct_size, t.type_hash, t is agnoshm.Bytes)")
    out = subprocess.run([sys.executable, "-c", probe], env=child_env(), cwd=child_cwd(),
                         capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert out == ["agnoshm/msg/Bytes", "24", agnoshm.Bytes.type_hash, "True"]
    node = agnoshm.Node("bytes_by_name")
    pub = node.create_publisher("agnoshm/msg/Bytes", "/raw", 1)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/raw", 1)  # the same type
    pub.publish(b"\x00\x01\xff")
    got = sub.take()
    assert got.to_dict() == {"data": [0, 1, 255]} and repr(got) == "agnoshm.msg.Bytes(data=[0, 1, 255])"
    typestore = default_registry().rosbags.typestore
    cdr = typestore.serialize_cdr(got.to_rosbags(), "agnoshm/msg/Bytes")
    assert typestore.deserialize_cdr(cdr, "agnoshm/msg/Bytes").data.tobytes() == b"\x00\x01\xff"


# --------------------------------------------------------------------------- zero copy


def test_received_arrays_are_the_publishers_memory_read_only(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    data = msg.alloc("f64_seq", 1000)
    assert isinstance(data, np.ndarray) and data.flags.writeable and data.dtype == np.float64
    data[:] = np.arange(1000)
    points = msg.alloc("point_seq", 4)
    points["x"] = [1.0, 2.0, 3.0, 4.0]
    nested = msg.named.alloc("values", 3)
    nested[:] = 9.0
    elements = msg.alloc("named_seq", 2)
    assert all(type(e).__name__ == "LoanedNamed" for e in elements)
    elements[1].values = [5.0, 6.0]
    addresses = {name: array.ctypes.data for name, array in
                 (("f64_seq", data), ("point_seq", points), ("named.values", nested))}
    pub.publish(msg)

    received = sub.take()
    pool = agnoshm.context.get_runtime().pool
    arrays = {"f64_seq": received.f64_seq, "point_seq": received.point_seq,
              "named.values": received.named.values,
              "named_seq[1].values": received.named_seq[1].values,
              "int_array": received.int_array, "point.rgb": received.point.rgb}
    for name, array in arrays.items():
        assert pool.address <= array.ctypes.data < pool.address + pool.size, name
        if name in addresses:  # the very bytes the publisher wrote: no copy
            assert array.ctypes.data == addresses[name], name
        assert not array.flags.writeable, name
        with pytest.raises(ValueError):
            array.flags.writeable = True
        with pytest.raises(ValueError):
            array[0] = array[0]
        view = memoryview(array)
        assert view.readonly
        assert np.shares_memory(np.asarray(array), array)
    assert received.f64_seq.tolist() == list(map(float, range(1000)))
    assert received.named_seq[1].values.tolist() == [5.0, 6.0]
    # the struct itself is where the loan was, and strings point into the same pool
    assert received._address == msg._address
    text_address = ctypes.c_size_t.from_address(received._address +
                                                 received._layout.field("s").offset).value
    assert text_address == 0 or pool.address <= text_address < pool.address + pool.size


# --------------------------------------------------------------------------- freeing


REASSIGNED = {
    "s": lambda i: f"string number {i:04d}",
    "ws": lambda i: f"wide {i:04d}",
    "bs": lambda i: f"{i % 100:05d}",
    "f64_seq": lambda i: [float(i)] * 7,
    "u8_bseq": lambda i: bytes([i % 256] * 3),
    "string_seq": lambda i: [f"{i:04d}", "x" * 40],
    "wstring_seq": lambda i: [f"{i:04d}"],
    "string_array": lambda i: [f"{i:04d}", "y" * 30],
    "named": lambda i: named(f"{i:04d}", values=(float(i),) * 4),
    "named_seq": lambda i: [named(f"{i:04d}"), named("x" * 20)],
    "named_array": lambda i: [named(f"{i:04d}"), named()],
    "point_seq": lambda i: [point(x=float(i))] * 5,
    "patch_seq": lambda i: [patch(tag=i % 256)],
    "bstring_bseq": lambda i: [f"{i % 1000:03d}"],
}


@pytest.mark.parametrize("field", sorted(REASSIGNED))
def test_reassigning_frees_the_old_storage(endpoints, field):
    node, pub, sub = endpoints
    allocator = agnoshm.context.get_runtime().allocator
    make = REASSIGNED[field]
    msg = pub.borrow_loaned_message()
    setattr(msg, field, make(0))
    used = allocator.used_bytes
    for i in range(1, 1001):
        setattr(msg, field, make(i))
    assert allocator.used_bytes == used, f"{field}: {allocator.used_bytes - used} bytes leaked"
    expected = msg.to_dict()[field]
    pub.publish(msg)
    assert sub.take().to_dict()[field] == expected


def test_alloc_again_frees_the_old_storage(endpoints):
    node, pub, sub = endpoints
    allocator = agnoshm.context.get_runtime().allocator
    msg = pub.borrow_loaned_message()
    msg.alloc("f64_seq", 100)
    msg.alloc("named_seq", 3)[0].name = "x" * 100
    used = allocator.used_bytes
    for i in range(1000):
        msg.alloc("f64_seq", 100)[:] = i
        msg.alloc("named_seq", 3)[0].name = f"{i:0100d}"
    assert allocator.used_bytes == used


def test_alloc_of_strings_gives_strings_to_write_in_place(endpoints):
    node, pub, sub = endpoints
    allocator = agnoshm.context.get_runtime().allocator
    msg = pub.borrow_loaned_message()
    strings = msg.alloc("string_seq", 3)
    assert strings == ["", "", ""] and len(strings) == 3
    strings[0], strings[-1] = "first", "日本"
    assert msg.string_seq == ["first", "", "日本"] and strings[1:] == ["", "日本"]
    strings[1] = "x" * 50
    used = allocator.used_bytes
    for i in range(200):  # writing an element again frees its old text
        strings[1] = f"{i:050d}"
    assert allocator.used_bytes == used
    msg.alloc("wstring_seq", 2)[1] = "ü"
    msg.string_array[1] = "fixed"  # a fixed array of strings is written the same way
    bounded = msg.alloc("bstring_bseq", 2)
    with pytest.raises(ValueError, match=r"All\.bstring_bseq\[0\]: 4 characters exceed the bound"):
        bounded[0] = "abcd"
    with pytest.raises(TypeError, match=r"All\.string_seq\[1\] takes a str, not int 5"):
        strings[1] = 5
    with pytest.raises(IndexError, match=r"All\.string_seq\[3\]: index out of range"):
        strings[3] = "x"
    msg.string_seq = msg.string_seq  # assigning a field its own strings copies them first
    pub.publish(msg)
    with pytest.raises(agnoshm.MessageInvalidatedError):
        strings[0] = "too late"
    got = sub.take()
    assert got.string_seq == ("first", f"{199:050d}", "日本") and got.wstring_seq == ("", "ü")
    assert got.string_array == ("", "fixed")


@pytest.mark.parametrize("field, values", [
    ("f64_seq", np.arange(10_000, dtype=np.float64)), ("string_seq", [f"s{i}" for i in range(50)]),
    ("point_seq", [point(x=float(i)) for i in range(500)]),
    ("named_seq", [named(f"n{i}", values=(i, i + 1)) for i in range(50)]),
], ids=["f64_seq", "string_seq", "point_seq", "named_seq"])
def test_a_field_assigned_its_own_value_keeps_it(endpoints, field, values):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    setattr(msg, field, values)
    expected = msg.to_dict()[field]
    setattr(msg, field, getattr(msg, field))  # new storage first, then the old is freed
    assert msg.to_dict()[field] == expected
    pub.publish(msg)
    assert sub.take().to_dict()[field] == expected


def test_message_elements_start_as_fresh_messages_with_their_defaults(endpoints):
    """As rosidl's Sequence__init: each element of alloc() or of an assigned array or
    sequence of messages starts zeroed with its defaults (Point.y 0.5, Named.id 7)."""
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    msg.point_seq = [point(x=float(i), y=-1.0) for i in range(4)]
    pub.publish(msg)  # its memory goes back to the pool, holding y = -1.0
    pub._port.reclaim()
    msg = pub.borrow_loaned_message()
    rows = msg.alloc("point_seq", 4)  # reused memory: rows must not show the old -1.0
    assert rows["y"].tolist() == [0.5] * 4 and rows["x"].tolist() == [0.0] * 4
    views = msg.alloc("named_seq", 2)
    assert [v.id for v in views] == [7, 7] and [v.where.y for v in views] == [0.5, 0.5]
    msg.named_array = [{"name": "a", "id": 1}, {"name": "b", "id": 2}]
    msg.named_array = [{"name": "c"}, {}]  # elements are replaced by fresh ones, not updated
    msg.point_bseq = [{"x": 1.0}]
    msg.patch_seq = [{"tag": 3}]
    pub.publish(msg)
    got = sub.take().to_dict()
    assert [p["y"] for p in got["point_seq"]] == [0.5] * 4
    assert [n["id"] for n in got["named_seq"]] == [7, 7]
    assert [(n["name"], n["id"]) for n in got["named_array"]] == [("c", 7), ("", 7)]
    assert got["point_bseq"][0]["y"] == 0.5
    assert got["patch_seq"][0]["center"]["y"] == 0.5
    assert [c["y"] for c in got["patch_seq"][0]["corners"]] == [0.5, 0.5]


def test_standard_types_start_with_their_msg_defaults(isolated_domain):
    """geometry_msgs/Quaternion.w is 1 and (Jazzy on) NavSatStatus.status -2, with or
    without rclpy: the rosbags source adds the defaults its stores drop."""
    node = agnoshm.Node("defaults")
    poses = node.create_publisher("geometry_msgs/msg/PoseArray", "/poses", 1)
    msg = poses.borrow_loaned_message()
    assert msg.poses.size == 0
    rows = msg.alloc("poses", 3)
    assert rows["orientation"]["w"].tolist() == [1.0, 1.0, 1.0]
    rows = msg.alloc("poses", 1001)  # filled by doubling copies: an odd count ends mid-way
    assert (rows["orientation"]["w"] == 1.0).all() and not rows["position"]["x"].any()
    odometry = node.create_publisher("nav_msgs/msg/Odometry", "/odom", 1).borrow_loaned_message()
    assert odometry.pose.pose.orientation.w == 1.0 and odometry.pose.pose.orientation.x == 0.0
    path = node.create_publisher("nav_msgs/msg/Path", "/path", 1).borrow_loaned_message()
    path.poses = [{"pose": {"position": {"x": 1.0}}}]
    assert path.poses[0].pose.orientation.w == 1.0
    status = default_registry().get("sensor_msgs/msg/NavSatStatus").field("status").default
    fix = node.create_publisher("sensor_msgs/msg/NavSatFix", "/fix", 1).borrow_loaned_message()
    assert fix.status.status == (0 if status is None else status)
    if default_registry().rosbags.distro not in ("humble", "iron"):
        assert fix.status.status == -2


def test_a_published_message_gives_all_its_memory_back(endpoints):
    node, pub, sub = endpoints
    allocator = agnoshm.context.get_runtime().allocator
    before = allocator.used_bytes
    received = round_trip(pub, sub)
    assert allocator.used_bytes > before
    del received
    node.destroy_publisher(pub)  # frees its live messages: nobody holds them
    assert allocator.used_bytes == before
    msg = node.create_publisher(ALL, "/other", 1).borrow_loaned_message()
    msg.named_seq = FULL["named_seq"]
    del msg  # an unpublished loan that is dropped gives its memory back too
    assert allocator.used_bytes == before


# --------------------------------------------------------------------------- assignment


def test_assignment_from_python_and_numpy_values(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    msg.i32 = np.int16(-5)
    msg.u64 = np.uint64((1 << 64) - 1)
    msg.f64 = 3  # an int for a float, as rclpy allows
    msg.f32 = np.float32(0.1)
    msg.b = np.bool_(True)
    msg.by = b"\xff"  # one byte for a byte
    msg.int_array = (1, 2, 3)  # a tuple
    msg.bool_array = np.array([True, False])
    msg.f64_seq = np.arange(4, dtype=np.int64)  # converted
    msg.def_arr = np.array([1, 2, 3], dtype=np.float64)  # float64 -> float32, in range
    msg.u8_bseq = bytearray(b"\x01\x02")
    msg.byte_seq = memoryview(b"\x00\x80\xff")
    msg.def_seq = np.array([[1, 2], [3, 4]], dtype=np.int8)  # an array: its elements in C order
    msg.string_seq = ("a", "b")
    msg.point = point(x=8.0)
    msg.point.rgb = np.array([9, 8, 7], dtype=np.int64)
    msg.named = {"name": "partial"}  # only the given keys change
    msg.point_seq = np.zeros(2, dtype=msg.point_seq.dtype)  # a structured array of the dtype
    msg.point_bseq = [msg.point, {"x": 1.0}]  # a view and a dict (other fields zero)
    msg.named_seq = [msg.named, named("second")]
    msg.patch = patch(tag=7)
    pub.publish(msg)
    got = sub.take().to_dict()
    assert (got["i32"], got["u64"], got["f64"], got["b"], got["by"]) == (-5, (1 << 64) - 1, 3.0, True, 255)
    assert got["f32"] == float(np.float32(0.1))
    assert got["int_array"] == [1, 2, 3] and got["bool_array"] == [True, False]
    assert got["f64_seq"] == [0.0, 1.0, 2.0, 3.0] and got["def_arr"] == [1.0, 2.0, 3.0]
    assert got["u8_bseq"] == [1, 2] and got["byte_seq"] == [0, 128, 255]
    assert got["def_seq"] == [1, 2, 3, 4] and got["string_seq"] == ["a", "b"]
    assert got["point"] == point(x=8.0, rgb=(9, 8, 7))
    assert got["named"]["name"] == "partial" and got["named"]["id"] == 7  # the default stays
    assert got["point_seq"] == [point(0.0, 0.0, 0, (0, 0, 0), False)] * 2
    assert got["point_bseq"][0] == point(x=8.0, rgb=(9, 8, 7)) and got["point_bseq"][1]["x"] == 1.0
    assert [n["name"] for n in got["named_seq"]] == ["partial", "second"]
    assert got["patch"] == patch(tag=7)


def test_rows_of_floats_fill_sequences_of_all_float_messages(isolated_domain):
    """An (n, 3) array is n Points (or Point32s, Vector3s); an (n, 7) one n Poses: the
    columns are the float members in field order."""
    node = agnoshm.Node("float_rows")
    cloud_pub = node.create_publisher("sensor_msgs/msg/PointCloud", "/cloud", 1)
    cloud_sub = node.create_polling_subscription("sensor_msgs/msg/PointCloud", "/cloud", 1)
    cloud = cloud_pub.borrow_loaned_message()
    xyz = np.arange(12, dtype=np.float64).reshape(4, 3)
    cloud.points = xyz
    poses = node.create_publisher("geometry_msgs/msg/PoseArray", "/poses", 1).borrow_loaned_message()
    poses.poses = np.array([[1, 2, 3, 0, 0, 0, 1]] * 2)  # ints are fine for float members
    assert poses.poses["orientation"]["w"].tolist() == [1.0, 1.0]
    assert poses.poses["position"]["z"].tolist() == [3.0, 3.0]
    points_before = cloud.to_dict()["points"]
    with pytest.raises(ValueError, match=r"PointCloud\.points\[1\]: 1e\+39 \(column 1\) is out "
                                         r"of range for float32"):
        cloud.points = np.array([[0.0, 0.0, 0.0], [1.0, 1e39, 0.0]])
    with pytest.raises(TypeError, match=r"PoseArray\.poses\[0\] takes a geometry_msgs/msg/Pose"):
        poses.poses = np.zeros((2, 3))  # 3 columns for 7 members: not rows of Poses
    assert cloud.to_dict()["points"] == points_before
    cloud_pub.publish(cloud)
    got = cloud_sub.take()
    assert np.column_stack([got.points[c] for c in "xyz"]).tolist() == xyz.tolist()


def test_an_image_from_a_numpy_frame(isolated_domain):
    node = agnoshm.Node("camera")
    pub = node.create_publisher("sensor_msgs/msg/Image", "/img", 1)
    sub = node.create_polling_subscription("sensor_msgs/msg/Image", "/img", 1)
    frame = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    pub.publish({"header": {"frame_id": "cam"}, "height": 4, "width": 5, "encoding": "rgb8",
                 "step": 15, "data": frame})
    received = sub.take()
    assert received.data.reshape(4, 5, 3).tolist() == frame.tolist()
    assert received.header.frame_id == "cam"


def test_republishing_a_received_message_copies_it(endpoints):
    node, pub, sub = endpoints
    received = round_trip(pub, sub)
    pub.publish(received)  # the one-copy path from a view
    again = sub.take()
    rw.assert_same(FULL, again.to_dict())
    assert again._address != received._address
    msg = pub.borrow_loaned_message()
    msg.named_seq = received.named_seq  # tuples of views
    msg.point_seq = received.point_seq  # a read-only structured array
    msg.named = received.named
    pub.publish(msg)
    got = sub.take().to_dict()
    assert got["named_seq"] == FULL["named_seq"] and got["point_seq"] == FULL["point_seq"]
    assert got["named"] == FULL["named"]


def test_assignment_from_rosbags_messages(endpoints):
    node, pub, sub = endpoints
    received = round_trip(pub, sub)
    rosbags = received.to_rosbags()  # the test package is registered in the store on demand
    assert type(rosbags).__name__ == ALL.replace("/", "__")
    assert rosbags.by == -1  # rosbags keeps byte as int8: 255 is -1, the same bits
    assert rosbags.byte_seq.dtype == np.int8 and rosbags.byte_seq.tolist() == [0, -128, -1]
    pub.publish(rosbags)  # and back: the octets come back as 0..255
    rw.assert_same(FULL, sub.take().to_dict())
    msg = pub.borrow_loaned_message()
    msg.named = rosbags.named
    msg.named_seq = rosbags.named_seq
    msg.point_seq = rosbags.point_seq
    msg.patch = rosbags.patch
    pub.publish(msg)
    got = sub.take().to_dict()
    for name in ("named", "named_seq", "point_seq", "patch"):
        assert got[name] == FULL[name], name

    typestore = default_registry().rosbags.typestore
    Pose = typestore.types["geometry_msgs/msg/Pose"]
    Point = typestore.types["geometry_msgs/msg/Point"]
    Quaternion = typestore.types["geometry_msgs/msg/Quaternion"]
    odom = node.create_publisher("nav_msgs/msg/Odometry", "/odom", 1)
    odom_sub = node.create_polling_subscription("nav_msgs/msg/Odometry", "/odom", 1)
    loan = odom.borrow_loaned_message()
    loan.pose.pose = Pose(position=Point(x=1.0, y=2.0, z=3.0),
                          orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0))
    loan.pose.covariance = np.eye(6).reshape(-1)
    odom.publish(loan)
    got = odom_sub.take()
    assert got.pose.pose.position.to_dict() == {"x": 1.0, "y": 2.0, "z": 3.0}
    assert got.pose.pose.orientation.w == 1.0 and got.pose.covariance[7] == 1.0

    bytes_pub = node.create_publisher("std_msgs/msg/ByteMultiArray", "/bytes", 1)
    bytes_sub = node.create_polling_subscription("std_msgs/msg/ByteMultiArray", "/bytes", 1)
    ByteMultiArray = typestore.types["std_msgs/msg/ByteMultiArray"]
    Layout = typestore.types["std_msgs/msg/MultiArrayLayout"]
    bytes_pub.publish(ByteMultiArray(layout=Layout(dim=[], data_offset=0),
                                     data=np.array([-56, 0, 127], dtype=np.int8)))
    assert bytes_sub.take().data.tolist() == [200, 0, 127]


@pytest.mark.ros
@ros_packages.needs("std_msgs.msg", "sensor_msgs.msg")
def test_assignment_from_rclpy_messages(endpoints):
    from std_msgs.msg import String

    node, pub, sub = endpoints
    string_pub = node.create_publisher(String, "/chatter", 1)
    string_sub = node.create_polling_subscription("std_msgs/msg/String", "/chatter", 1)
    string_pub.publish(String(data="hello"))
    received = string_sub.take()
    assert received.data == "hello"
    assert received.to_ros() == String(data="hello")

    from sensor_msgs.msg import Image
    from std_msgs.msg import ByteMultiArray

    octets = ByteMultiArray(data=[b"\x00", b"\x80", b"\xff"])  # rclpy: 1-byte bytes
    octets.layout.data_offset = 3
    image = Image(height=2, width=3, encoding="rgb8", step=9, data=bytes(range(18)))
    for ros_msg in (octets, image):
        typed_pub = node.create_publisher(type(ros_msg), "/typed", 1)
        typed_sub = node.create_polling_subscription(type(ros_msg), "/typed", 1)
        typed_pub.publish(ros_msg)  # the bridge's ROS 2 → agnoshm path
        received = typed_sub.take()
        assert received.to_ros() == ros_msg  # and agnoshm → ROS 2
        typed_pub.destroy()
        typed_sub.destroy()
    assert received.data.tolist() == list(range(18))


class _RosShaped(types.SimpleNamespace):
    """Holds ``ros_value``'s output for nested messages where rclpy's classes are absent."""


def _ros_shaped(view):
    return convert.to_ros(view, lambda type_name: _RosShaped)


def _check_ros_struct(value, struct: L.StructLayout, where: str) -> None:
    assert isinstance(value, _RosShaped), where
    for field in () if struct.is_empty else struct.fields:
        _check_ros_types(getattr(value, field.name), field.value, f"{where}.{field.name}")


def _check_ros_types(value, layout: L.ValueLayout, where: str) -> None:
    """Each value is of the Python type rosidl_generator_py's setters assert."""
    kind = layout.kind
    if kind == L.MESSAGE:
        _check_ros_struct(value, layout.struct, where)
    elif kind == L.PRIMITIVE:
        expected = {"bool": bool, "byte": bytes, "float32": float, "float64": float,
                    "wchar": str}.get(layout.primitive, int)
        assert type(value) is expected, (where, value)
        assert expected is not bytes or len(value) == 1, where
    elif kind in (L.ARRAY, L.SEQUENCE) and layout.element.kind == L.PRIMITIVE:
        primitive = layout.element.primitive
        code = TABLE[primitive].array_typecode
        if code is None:  # bool, byte: lists
            assert isinstance(value, list), where
            for i, item in enumerate(value):
                _check_ros_types(item, layout.element, f"{where}[{i}]")
        elif kind == L.ARRAY:  # a numpy copy of rclpy's dtype
            assert isinstance(value, np.ndarray) and value.flags.writeable and value.flags.owndata
            assert value.dtype == np.dtype(TABLE[primitive].dtype), where
        else:
            assert isinstance(value, array.array) and value.typecode == code, where
    elif kind in (L.ARRAY, L.SEQUENCE):
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            _check_ros_types(item, layout.element, f"{where}[{i}]")
    else:
        assert isinstance(value, str), where


@pytest.mark.parametrize("name", ["All", "Prims", "Patch"])
def test_values_in_rclpys_types_and_back(isolated_domain, name):
    """What ``to_ros()`` hands rclpy's setters (octets as 1-byte bytes, numeric sequences as
    array.array, fixed numeric arrays as numpy copies) and what an rclpy message brings back
    (``publish(rclpy_msg)``, the bridge's path): the same message."""
    type_name = rw.type_name(name)
    node = agnoshm.Node("ros_shaped")
    pub = node.create_publisher(type_name, "/shaped", 1)
    sub = node.create_polling_subscription(type_name, "/shaped", 1)
    for index in range(3):
        values = rw.message_values(type_name, 2026, index)
        pub.publish(loaded(pub, values))
        shaped = _ros_shaped(sub.take())
        _check_ros_struct(shaped, agnoshm.get_message(type_name).layout, name)
        pub.publish(shaped)
        rw.assert_same(values, sub.take().to_dict())


def test_octets_and_wchars_as_rclpy_holds_them(endpoints):
    """rclpy holds a ``byte`` as a 1-byte bytes and an IDL wchar as a 1-character str."""
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    msg.by = b"\xfe"
    msg.byte_seq = [b"\x00", b"\x80", b"\xff"]
    msg.patch.tag = b"\x07"
    msg.patch_seq = [{"tag": b"\x09"}]
    pub.publish(msg)
    got = sub.take()
    assert (got.by, got.byte_seq.tolist(), got.patch.tag, got.patch_seq[0]["tag"]) == \
        (254, [0, 128, 255], 7, 9)
    prims = node.create_publisher(rw.type_name("Prims"), "/prims", 1)
    loan = prims.borrow_loaned_message()
    loan.byte_arr = [b"a", b"\x00"]
    loan.byte_bseq = np.array([b"x", b"y"], dtype="S1")
    assert (loan.byte_arr.tolist(), loan.byte_bseq.tolist()) == ([97, 0], [120, 121])
    for bad, error, text in [([b"ab"], TypeError, r"byte_seq\[0\] takes an int \(byte\), not bytes b'ab'"),
                             ([b""], TypeError, r"byte_seq\[0\] takes an int \(byte\), not bytes b''"),
                             (["a"], TypeError, r"byte_seq\[0\] takes an int \(byte\), not str"),
                             ([b"a", 256], ValueError, r"byte_seq\[1\]: 256 is out of range")]:
        loan_all = pub.borrow_loaned_message()
        with pytest.raises(error, match=text):
            loan_all.byte_seq = bad


# --------------------------------------------------------------------------- repr, conversions


def test_repr_like_rclpy(endpoints):
    node, pub, sub = endpoints
    values = {"named": named("n", 3, (1.5, 2.0), point(1.0, 0.5, -2, (1, 2, 3), True)),
              "string_seq": ["a", "b"], "bool_seq": [True, False], "f64_seq": [0.5, 1.0],
              "point_seq": [point(2.0, 0.5, 0, (0, 0, 0), False)], "byte_seq": [1, 255]}
    msg = loaded(pub, values)
    text = repr(msg)
    expected_named = (f"named={DOT}Named(name='n', id=3, values=[1.5, 2.0], where={DOT}Point(x=1.0, "
                      f"y=0.5, z=-2, rgb=array([1, 2, 3], dtype=uint8), ok=True))")
    assert text.startswith(f"{DOT}All(b=False, by=0, ch=0, i8=0, ")
    for part in (expected_named, "s=''", "int_array=array([0, 0, 0], dtype=int32)",
                 "bool_array=[False, False]", "string_array=['', '']", "string_seq=['a', 'b']",
                 "bool_seq=[True, False]", "f64_seq=[0.5, 1.0]", "u8_bseq=[]", "byte_seq=[1, 255]",
                 f"empty={DOT}Empty()",
                 f"point_seq=[{DOT}Point(x=2.0, y=0.5, z=0, rgb=array([0, 0, 0], dtype=uint8), ok=False)]",
                 "def_arr=array([1.5, 2.5, 3.5], dtype=float32)", "def_strs=['a', 'b,c']",
                 f"patch={DOT}Patch(center={DOT}Point(x=0.0, y=0.5, "):
        assert part in text, part
    assert text.endswith("def_bool=True, def_strs=['a', 'b,c'])")
    pub.publish(msg)
    assert repr(msg) == f"{DOT}All(<published>)"
    received = sub.take()
    assert repr(received) == text  # received and loaned views print the same
    msg = pub.borrow_loaned_message()
    msg.f64_seq = np.arange(100.0)
    assert "f64_seq=[0.0, 1.0, 2.0, " in repr(msg) and "31.0, ...]" in repr(msg)
    # a standard type, exactly as rclpy prints it
    string_pub = node.create_publisher("std_msgs/msg/String", "/s", 1)
    string_sub = node.create_polling_subscription("std_msgs/msg/String", "/s", 1)
    string_pub.publish({"data": "it's"})
    assert repr(string_sub.take()) == "std_msgs.msg.String(data=\"it's\")"


def test_to_dict_is_plain_python(endpoints):
    node, pub, sub = endpoints
    values = round_trip(pub, sub).to_dict()

    def check(value, path):
        if isinstance(value, dict):
            for key, item in value.items():
                check(item, f"{path}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                check(item, f"{path}[{i}]")
        else:
            assert type(value) in (bool, int, float, str), f"{path}: {type(value)}"
    check(values, "msg")
    rw.assert_same(FULL, values)


def test_to_rosbags_and_cdr(endpoints):
    node, pub, sub = endpoints
    received = round_trip(pub, sub)
    typestore = default_registry().rosbags.typestore
    rosbags = received.to_rosbags()
    assert rosbags.__msgtype__ == ALL
    assert isinstance(rosbags.f64_seq, np.ndarray) and rosbags.f64_seq.dtype == np.float64
    assert rosbags.f64_seq.flags.owndata or rosbags.f64_seq.base is not None  # a copy ...
    assert not np.shares_memory(rosbags.f64_seq, received.f64_seq)  # ... not the pool
    assert rosbags.named_seq[1].__msgtype__ == rw.type_name("Named")
    assert rosbags.point_seq[0].rgb.tolist() == [1, 2, 255]
    rw.assert_same(FULL, rw.rosbags_to_plain(rosbags, received._layout))
    # through CDR (All holds wstrings, which rosbags cannot serialize: Named and JointState)
    for name, values in ((rw.type_name("Named"), named()),
                         ("sensor_msgs/msg/JointState",
                          {"header": {"stamp": {"sec": 1, "nanosec": 2}, "frame_id": "base"},
                           "name": ["a", "b"], "position": [0.5, 1.5], "velocity": [],
                           "effort": [1.0, 2.0]})):
        topic = "/cdr_" + name.rsplit("/", 1)[1]
        other = node.create_publisher(name, topic, 1)
        other_sub = node.create_polling_subscription(name, topic, 1)
        other.publish(values)
        got = other_sub.take()
        raw = typestore.serialize_cdr(got.to_rosbags(), name)
        back = typestore.deserialize_cdr(raw, name)
        rw.assert_same(values, rw.rosbags_to_plain(back, got._layout))


def test_equality_of_views(endpoints):
    node, pub, sub = endpoints
    received = round_trip(pub, sub)
    msg = loaded(pub)
    assert msg == received and received == msg
    msg.i32 = 1
    assert msg != received
    with pytest.raises(TypeError):
        hash(received)


# --------------------------------------------------------------------------- references


DERIVED = {
    "the view": lambda r: r,
    "a primitive sequence": lambda r: r.f64_seq,
    "a slice of it": lambda r: r.f64_seq[1:2],
    "np.asarray of it": lambda r: np.asarray(r.f64_seq),
    "a memoryview of it": lambda r: memoryview(r.f64_seq),
    "a fixed array": lambda r: r.int_array,
    "a nested view": lambda r: r.named,
    "a nested view's array": lambda r: r.named.values,
    "a nested fixed array": lambda r: r.point.rgb,
    "an element view": lambda r: r.named_seq[0],
    "an element view's array": lambda r: r.named_seq[0].values,
    "a structured array": lambda r: r.point_seq,
    "a structured column": lambda r: r.point_seq["rgb"],
    "a structured fixed array": lambda r: r.point_array,
}


@pytest.mark.parametrize("what", list(DERIVED))
def test_anything_derived_keeps_the_message_referenced(endpoints, what):
    node, pub, sub = endpoints
    port = pub._port
    kept = DERIVED[what](round_trip(pub, sub))  # only `kept` survives
    pub.publish(pub.borrow_loaned_message())  # the first message falls out of depth 1
    port.reclaim()
    assert port.held_count() == 1, f"{what} does not keep the message referenced"
    if isinstance(kept, np.ndarray) and kept.size and not kept.dtype.names:
        assert not kept.flags.writeable
    del kept
    port.reclaim()
    assert port.held_count() == 0, f"dropping {what} does not release the message"
    assert sub._port.record.held == 0


def test_copies_do_not_keep_the_message_referenced(endpoints):
    node, pub, sub = endpoints
    port = pub._port
    received = round_trip(pub, sub)
    copies = [received.s, received.to_dict(), received.f64_seq.copy(), received.string_seq,
              received.to_rosbags(), received.i64, received.f64_seq.tolist()]
    del received
    pub.publish(pub.borrow_loaned_message())
    port.reclaim()
    assert port.held_count() == 0
    assert copies[0] == FULL["s"] and copies[2].tolist() == FULL["f64_seq"]


def test_a_held_message_is_never_overwritten(endpoints):
    node, pub, sub = endpoints
    received = round_trip(pub, sub)
    values = received.f64_seq
    named_values = received.named_seq[1].values
    del received
    for _ in range(5):  # reuse the pool's memory as hard as possible
        pub.publish(loaded(pub, {"f64_seq": [-1.0] * 3, "named_seq": [named("z")] * 2}))
        pub._port.reclaim()
    assert values.tolist() == FULL["f64_seq"]
    assert named_values.tolist() == [7.0]
