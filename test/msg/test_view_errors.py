"""Bad input to views: each raises a typed error that names the cause, and afterwards
the publisher still works and the registry is consistent.
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
from agnoshm.msg import MessageDefinitionError  # noqa: E402

rw.register_test_package()
ALL = rw.type_name("All")


@pytest.fixture
def endpoints(isolated_domain, monkeypatch):
    monkeypatch.setenv("AGNOSHM_LINGER_SEC", "0")  # messages are left unread on purpose
    node = agnoshm.Node("errors")
    pub = node.create_publisher(ALL, "/all", 4)
    sub = node.create_polling_subscription(ALL, "/all", 4)
    yield node, pub, sub
    assert_healthy(pub, sub)


def assert_healthy(pub, sub) -> None:
    """The publisher still delivers (through a loan and the one-copy path); the registry is
    consistent; nothing of a failed one-copy publish stays allocated."""
    runtime = agnoshm.context.get_runtime()
    while sub.take() is not None:
        pass
    msg = pub.borrow_loaned_message()
    msg.s = "still works"
    msg.named_seq = [{"name": "n", "values": [1.0]}]
    pub.publish(msg)
    pub.publish({"i32": 5, "string_seq": ["x"]})
    first, second = sub.take(), sub.take()
    assert first.s == "still works" and first.named_seq[0].values.tolist() == [1.0]
    assert second.i32 == 5 and second.string_seq == ("x",)
    assert runtime.registry.check_consistency() == []


def _published_bytes(pub) -> int:
    return agnoshm.context.get_runtime().allocator.used_bytes


# --------------------------------------------------------------------------- values


WRONG_TYPE = [
    ("b", 1), ("b", "true"), ("b", None), ("i32", 1.5), ("i32", "1"), ("i32", None), ("u8", True),
    ("u64", 2.0), ("f64", "1.0"), ("f64", True), ("f32", None), ("f32", [1.0]), ("ch", "a"),
    ("by", b"ab"), ("s", b"bytes"), ("s", 5), ("s", None), ("ws", 5), ("bs", ["a"]),
    ("point", 5), ("named", "x"), ("empty", 3), ("int_array", [1.5, 0, 0]), ("int_array", "abc"),
    ("int_array", 3), ("int_array", [[1], [2], [3]]), ("bool_array", [1, 0]),
    ("bool_seq", [True, 1]), ("f64_seq", "abc"), ("f64_seq", ["a"]), ("f64_seq", None),
    ("f64_seq", [[1.0], [2.0]]), ("f64_seq", 1.0), ("u8_bseq", 7), ("u8_bseq", "ab"),
    ("string_seq", "abc"), ("string_seq", [1]), ("string_seq", [b"a"]), ("string_array", ["a", 2]),
    ("wstring_seq", [None]), ("point_seq", [5]), ("point_seq", [{"x": "a"}]),
    ("point_seq", [{"ok": 1}]), ("point_seq", [{"rgb": [1.5, 0, 0]}]), ("point_seq", "ab"),
    ("named_seq", [5]), ("named_seq", [{"name": 5}]), ("named_seq", [{"values": ["a"]}]),
    ("named_array", [{}, 5]), ("patch_seq", [{"corners": [{"x": "a"}, {}]}]),
]


@pytest.mark.parametrize("field, value", WRONG_TYPE,
                         ids=[f"{f}={v!r}" for f, v in WRONG_TYPE])
def test_wrong_python_type_raises_type_error(endpoints, field, value):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    before = msg.to_dict()[field]
    with pytest.raises(TypeError) as info:
        setattr(msg, field, value)
    assert not isinstance(info.value, agnoshm.MessageInvalidatedError)
    assert f"{ALL}.{field}" in str(info.value), str(info.value)  # names the type and field
    assert msg.to_dict()[field] == before, "a failed assignment changed the field"
    used = _published_bytes(pub)
    with pytest.raises(TypeError):
        pub.publish({field: value})  # the one-copy path gives its loan back
    assert _published_bytes(pub) == used
    pub.publish(msg)  # the loan itself is still fine
    assert sub.take() is not None


OUT_OF_RANGE = [
    ("i8", 128), ("i8", -129), ("u8", -1), ("u8", 256), ("by", 256), ("by", -1), ("ch", 256),
    ("i16", 1 << 15), ("i16", -(1 << 15) - 1), ("u16", 1 << 16), ("i32", 1 << 31),
    ("i32", -(1 << 31) - 1), ("u32", -1), ("u32", 1 << 32), ("i64", 1 << 63),
    ("i64", -(1 << 63) - 1), ("u64", -1), ("u64", 1 << 64), ("i32", np.int64(1 << 40)),
    ("f32", 3.5e38), ("f32", -1e39), ("f32", np.float64(1e300)), ("def_i8", 200),
    ("int_array", [1 << 31, 0, 0]), ("int_array", np.array([0, 0, -(1 << 40)])),
    ("u8_bseq", [256]), ("u8_bseq", [-1]), ("byte_seq", [300]), ("def_seq", [1 << 15]),
    ("def_arr", [1e39, 0.0, 0.0]), ("def_arr", np.array([0.0, -1e300, 0.0])),
    ("point", {"z": 128}), ("point", {"y": 1e39}), ("point_seq", [{"z": 200}]),
    ("point_seq", [{"y": 1e39}]), ("point_seq", [{"rgb": [0, 0, 256]}]),
    ("patch_seq", [{"tag": 256}]), ("named", {"id": 1 << 31}), ("named_seq", [{"id": -(1 << 31) - 1}]),
]


@pytest.mark.parametrize("field, value", OUT_OF_RANGE,
                         ids=[f"{f}={v!r:.30}" for f, v in OUT_OF_RANGE])
def test_out_of_range_raises_value_error(endpoints, field, value):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    before = msg.to_dict()[field]
    with pytest.raises(ValueError) as info:
        setattr(msg, field, value)
    assert "range" in str(info.value) and f"{ALL}.{field}" in str(info.value), str(info.value)
    assert msg.to_dict()[field] == before, "a failed assignment changed the field"
    with pytest.raises(ValueError):
        pub.publish({field: value})
    pub.publish(msg)
    assert sub.take() is not None


def test_errors_name_the_whole_path_and_a_failed_assignment_keeps_the_old_value(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    msg.named_seq = [{"name": "kept", "values": [1.0]}]
    msg.named_array = [{"name": "a"}, {"name": "b"}]
    used = _published_bytes(pub)
    cases = [
        ("named_seq", [{"name": "x"}, {"id": 1 << 31}], ValueError,
         f"{ALL}.named_seq[1]: {rw.PACKAGE}/msg/Named.id"),
        ("named_seq", [{}, {}, {"name": 5}], TypeError, f"{ALL}.named_seq[2]: "),
        ("named_array", [{}, {"where": {"z": 300}}], ValueError,
         f"{ALL}.named_array[1]: {rw.PACKAGE}/msg/Named.where: "),
        ("named_array", [{"nope": 1}, {}], AttributeError, f"{ALL}.named_array[0]: "),
        ("int_array", [0, 1 << 31, 0], ValueError, f"{ALL}.int_array[1]: 2147483648 is out of range"),
        ("def_arr", [0.0, 0.0, -1e39], ValueError, f"{ALL}.def_arr[2]: -1e+39 is out of range"),
        ("point", 5, TypeError, f"{ALL}.point"),
        ("point_seq", [{}, {"rgb": [0, 256, 0]}], ValueError, f"{ALL}.point_seq[1].rgb"),
    ]
    for field, value, error, start in cases:
        before = msg.to_dict()[field]
        with pytest.raises(error) as info:
            setattr(msg, field, value)
        assert start in str(info.value), (field, str(info.value))
        assert msg.to_dict()[field] == before, f"a failed assignment changed {field}"
        assert _published_bytes(pub) == used, f"a failed assignment of {field} leaked pool memory"
    pub.publish(msg)
    got = sub.take().to_dict()
    assert [n["name"] for n in got["named_seq"]] == ["kept"] and got["named_seq"][0]["values"] == [1.0]
    assert [n["name"] for n in got["named_array"]] == ["a", "b"]


def test_float32_accepts_what_float32_can_hold(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    msg.f32 = float("inf")
    msg.f32 = float("nan")
    msg.f32 = -3.4028234663852886e38
    msg.def_arr = [float("inf"), float("nan"), 1e-50]  # 1e-50 rounds to 0, like C
    pub.publish(msg)
    got = sub.take()
    assert got.f32 == -3.4028234663852886e38 and np.isinf(got.def_arr[0])


TOO_LONG = [
    ("bs", "abcdef"), ("bws", "abcde"), ("u8_bseq", [1] * 5), ("u8_bseq", b"12345"),
    ("bstring_bseq", ["a", "b", "c"]), ("bstring_bseq", ["abcd"]),
    ("bstring_array", ["abcde", ""]), ("point_bseq", [{}] * 3), ("named_bseq", [{}] * 3),
    ("int_array", [1, 2]), ("int_array", [1, 2, 3, 4]), ("string_array", ["a"]),
    ("named_array", [{}]), ("point_array", [{}, {}, {}]), ("def_arr", np.zeros(4)),
]


@pytest.mark.parametrize("field, value", TOO_LONG, ids=[f"{f}={v!r:.20}" for f, v in TOO_LONG])
def test_too_long_or_wrong_length_raises_value_error(endpoints, field, value):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    before = msg.to_dict()[field]
    with pytest.raises(ValueError) as info:
        setattr(msg, field, value)
    assert f"All.{field}" in str(info.value), str(info.value)
    assert msg.to_dict()[field] == before, "a failed assignment changed the field"
    with pytest.raises(ValueError):
        pub.publish({field: value})
    with pytest.raises(ValueError, match="bound of 4"):
        msg.alloc("u8_bseq", 5)
    for bad in (-1, 2.0, "3"):
        with pytest.raises(ValueError, match="non-negative int"):
            msg.alloc("f64_seq", bad)
    pub.publish(msg)


def test_bounds_are_inclusive(endpoints):
    node, pub, sub = endpoints
    pub.publish({"bs": "abcde", "bws": "abcd", "u8_bseq": [1, 2, 3, 4], "bstring_bseq": ["abc", ""],
                 "point_bseq": [{}, {}], "named_bseq": [{}, {}], "bstring_array": ["abcd", "abcd"]})
    got = sub.take().to_dict()
    assert got["bs"] == "abcde" and got["u8_bseq"] == [1, 2, 3, 4] and len(got["named_bseq"]) == 2


# --------------------------------------------------------------------------- unknown fields


def test_unknown_field_raises_unknown_field_error_naming_type_field_and_value(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    cases = [
        (lambda: setattr(msg, "nope", "zzz-value"), ALL),
        (lambda: setattr(msg.named, "nope", "zzz-value"), rw.type_name("Named")),
        (lambda: setattr(msg.named_seq[0] if msg.named_seq else msg.alloc("named_seq", 1)[0],
                         "nope", "zzz-value"), rw.type_name("Named")),
        (lambda: setattr(msg.empty, "nope", "zzz-value"), rw.type_name("Empty")),
        (lambda: pub.publish({"nope": "zzz-value"}), ALL),
        (lambda: pub.publish({"named": {"nope": "zzz-value"}}), rw.type_name("Named")),
        (lambda: pub.publish({"named_seq": [{"nope": "zzz-value"}]}), rw.type_name("Named")),
        (lambda: pub.publish({"point_seq": [{"nope": "zzz-value"}]}), rw.type_name("Point")),
        (lambda: pub.publish({"patch": {"corners": [{}, {"nope": "zzz-value"}]}}),
         rw.type_name("Point")),
        (lambda: setattr(msg, "empty", {"nope": "zzz-value"}), rw.type_name("Empty")),
    ]
    for i, (action, type_name) in enumerate(cases):
        with pytest.raises(agnoshm.UnknownFieldError) as info:
            action()
        assert isinstance(info.value, AttributeError)  # what rclpy raises, and hasattr() needs
        text = str(info.value)
        assert type_name in text and "'nope'" in text and "zzz-value" in text, (i, text)
    with pytest.raises(agnoshm.UnknownFieldError, match=f"{ALL} has no field 'nope'"):
        msg.alloc("nope", 3)
    with pytest.raises(agnoshm.UnknownFieldError, match=r"has no field 'nope' \(fields: b, bool_array"):
        msg.nope  # noqa: B018
    assert not hasattr(msg, "nope") and not hasattr(msg, "_nope") and hasattr(msg, "s")
    with pytest.raises(TypeError, match="not a sequence"):
        msg.alloc("s", 3)
    pub.publish(msg)


# --------------------------------------------------------------------------- after publish()


def test_message_and_fields_used_after_publish_raise(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    nested = msg.named
    element = msg.alloc("named_seq", 2)[1]
    deeper = msg.named.where
    pub.publish(msg)
    attempts = {
        "read a field": lambda: msg.i32,
        "write a field": lambda: setattr(msg, "i32", 1),
        "write a string": lambda: setattr(msg, "s", "x"),
        "write a sequence": lambda: setattr(msg, "f64_seq", [1.0]),
        "read a nested message": lambda: msg.named,
        "read through a nested view": lambda: nested.id,
        "write through a nested view": lambda: setattr(nested, "name", "x"),
        "read two levels down": lambda: deeper.x,
        "write through an element view": lambda: setattr(element, "values", [1.0]),
        "alloc": lambda: msg.alloc("f64_seq", 3),
        "alloc in a nested view": lambda: nested.alloc("values", 3),
        "to_dict": lambda: msg.to_dict(),
        "to_rosbags": lambda: msg.to_rosbags(),
        "publish twice": lambda: pub.publish(msg),
        "publish a nested view's message again": lambda: pub.publish(msg),
    }
    for what, attempt in attempts.items():
        with pytest.raises(agnoshm.MessageInvalidatedError) as info:
            attempt()
        assert "publish" in str(info.value), what
    assert repr(msg).endswith("(<published>)")  # repr never raises
    other = node.create_publisher(ALL, "/other", 1)
    with pytest.raises(agnoshm.MessageInvalidatedError):
        other.publish(msg)  # published already, and not other's loan either
    loan = pub.borrow_loaned_message()
    with pytest.raises(agnoshm.MessageInvalidatedError, match="another publisher"):
        other.publish(loan)
    pub.publish(loan)



def test_arrays_kept_from_a_loan_turn_read_only_when_it_is_published(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    values = msg.alloc("f64_seq", 3)
    values[:] = [1.0, 2.0, 3.0]
    points = msg.alloc("point_seq", 2)  # a structured array
    points["x"] = [4.0, 5.0]
    pub.publish(msg)
    with pytest.raises(ValueError, match="read-only"):
        values[0] = 99.0  # would change what the subscribers read
    with pytest.raises(ValueError, match="read-only"):
        points["x"] = 0.0
    received = sub.take()
    assert list(received.f64_seq) == [1.0, 2.0, 3.0]
    assert list(received.point_seq["x"]) == [4.0, 5.0]
    del received
    allocator = agnoshm.context.get_runtime().allocator
    for i in range(8):  # the message falls out of depth; later ones would reuse its memory
        later = pub.borrow_loaned_message()
        later.alloc("f64_seq", 3)[:] = -i
        later.alloc("point_seq", 2)["x"] = -i
        pub.publish(later)
        del later
        while sub.take() is not None:
            pass
        pub._port.reclaim()
    assert list(values) == [1.0, 2.0, 3.0]  # still this message's bytes, never reused
    assert list(points["x"]) == [4.0, 5.0]
    pinned = allocator.used_bytes
    del values, points, msg  # the last arrays gone: the memory goes back at the next reclaim
    pub._port.reclaim()
    assert allocator.used_bytes < pinned


# --------------------------------------------------------------------------- received views


def test_writing_to_a_received_view_raises(endpoints):
    node, pub, sub = endpoints
    pub.publish({"f64_seq": [1.0, 2.0], "named_seq": [{"name": "n", "values": [3.0]}],
                 "point_seq": [{"x": 1.0}], "s": "original"})
    received = sub.take()
    attempts = {
        "a field": lambda: setattr(received, "i32", 1),
        "a string": lambda: setattr(received, "s", "changed"),
        "a sequence": lambda: setattr(received, "f64_seq", [9.0]),
        "a nested message": lambda: setattr(received, "named", {}),
        "through a nested view": lambda: setattr(received.named, "id", 1),
        "through an element view": lambda: setattr(received.named_seq[0], "name", "x"),
        "an unknown field": lambda: setattr(received, "nope", 1),
        "delete a field": lambda: delattr(received, "i32"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(AttributeError) as info:
            attempt()
        if what != "delete a field":
            assert "read-only" in str(info.value), what
    assert not hasattr(received, "alloc")
    for array in (received.f64_seq, received.point_seq["x"], received.named_seq[0].values,
                  received.int_array):
        with pytest.raises(ValueError):
            array[...] = 0
        with pytest.raises(ValueError):
            array.flags.writeable = True
    assert received.s == "original" and received.f64_seq.tolist() == [1.0, 2.0]
    assert received.point_seq["x"].tolist() == [1.0]


# --------------------------------------------------------------------------- types


def test_a_type_that_cannot_be_resolved_raises_type_mismatch(endpoints):
    node, pub, sub = endpoints
    with pytest.raises(agnoshm.TypeMismatchError) as info:
        node.create_publisher(rw.type_name("Nope"), "/nope", 1)
    text = str(info.value)
    assert "unknown message type" in text and "agnoshm.register_msg(text_or_path" in text and "Nope" in text
    with pytest.raises(agnoshm.TypeMismatchError, match="did you mean std_msgs/msg/String"):
        node.create_subscription("std_msgs/msg/Strng", "/nope", lambda m: None, 1)
    with pytest.raises(agnoshm.TypeMismatchError, match="did you mean std_msgs/msg/String"):
        agnoshm.get_message("std_msgs/msg/Strng")
    for bad in ("not a type", "std_msgs/String/Extra", "Std_msgs/msg/String", 42, None):
        with pytest.raises(agnoshm.TypeMismatchError) as info:
            node.create_publisher(bad, "/nope", 1)
        assert "pkg/msg/Name" in str(info.value), bad
    assert isinstance(info.value, TypeError)  # also a TypeError, as rclpy raises
    # a registered type whose nested type nobody knows
    agnoshm.register_msg("Missing thing\nint32 x\n", "agnoshm_views_bad/msg/Holder")
    with pytest.raises(agnoshm.TypeMismatchError) as info:
        node.create_publisher("agnoshm_views_bad/msg/Holder", "/holder", 1)
    text = str(info.value)
    assert "agnoshm_views_bad/msg/Missing" in text and "used by agnoshm_views_bad/msg/Holder" in text


BAD_MSG = [
    ("int32 a\nint32\n", 2, "expected '<type> <name>'"),
    ("int32 a\nfloat64 Bad\n", 2, "invalid field name 'Bad'"),
    ("int32 a\n\n# a comment\nint33 x\n", 4, "unknown field type 'int33'"),
    ("int32[ x\n", 1, "array syntax"),
    ("uint8[0] x\n", 1, "array size"),
    ("int8 x 300\n", 1, "out of range"),
    ("bool x maybe\n", 1, "true/false"),
    ('string<=3 s "toolong"\n', 1, "longer than its bound"),
    ("int32 a\nint32 a\n", 2, "duplicate name 'a'"),
    ("uint8 lower=3\n", 1, "UPPER_CASE"),
    ("int32[2] a [1, 2, 3]\n", 1, "exactly 2 elements"),
    ("float64 x 1.0\nstd_msgs/Header h 3\n", 2, "message fields cannot have default values"),
]


@pytest.mark.parametrize("case", range(len(BAD_MSG)), ids=[r for _, _, r in BAD_MSG])
def test_a_msg_with_a_syntax_error_names_the_line(endpoints, case):
    node, pub, sub = endpoints
    text, line, reason = BAD_MSG[case]
    name = f"agnoshm_views_bad/msg/Bad{case}"
    with pytest.raises(MessageDefinitionError) as info:
        agnoshm.register_msg(text, name)
    message = str(info.value)
    assert f"{name}, line {line}:" in message and reason in message, message
    assert text.splitlines()[line - 1].strip() in message  # the offending line is quoted
    with pytest.raises(agnoshm.TypeMismatchError):
        agnoshm.get_message(name)  # nothing was registered


def test_redefining_a_type_differently_is_refused(endpoints):
    node, pub, sub = endpoints
    with pytest.raises(MessageDefinitionError, match="already defined differently"):
        agnoshm.register_msg("int64 x\n", rw.type_name("Point"))
    with pytest.raises(MessageDefinitionError, match="already defined differently"):
        agnoshm.register_msg("string data\nint8 more\n", "std_msgs/msg/String")
    assert agnoshm.register_msg(rw.TEST_PACKAGE["Point"], rw.type_name("Point")) == rw.type_name("Point")
    # the hash leaves defaults and constants out; a second definition must still agree on them
    changed_default = rw.TEST_PACKAGE["Point"].replace("float32 y 0.5", "float32 y 0.25")
    assert changed_default != rw.TEST_PACKAGE["Point"]
    with pytest.raises(MessageDefinitionError, match="already defined differently"):
        agnoshm.register_msg(changed_default, rw.type_name("Point"))
    with pytest.raises(MessageDefinitionError, match="already defined differently"):
        agnoshm.register_msg("int32 EXTRA=1\n" + rw.TEST_PACKAGE["Point"], rw.type_name("Point"))
    assert agnoshm.msg.get_definition(rw.type_name("Point")).field("y").default == 0.5


def test_a_message_of_another_type_is_refused_naming_both(endpoints):
    """rclpy refuses a message of another class; agnoshm refuses another type's loan, view,
    rosbags or rclpy message even when its fields would fit (Point into Vector3).  Dicts and
    plain objects are copied by field name."""
    node, pub, sub = endpoints
    from agnoshm.msg.types import default_registry

    rosbags_point = default_registry().rosbags.typestore.types["geometry_msgs/msg/Point"]
    vectors = node.create_publisher("geometry_msgs/msg/Vector3", "/vectors", 2)
    poses = node.create_publisher("geometry_msgs/msg/Pose", "/poses", 2)
    pose = poses.borrow_loaned_message()
    cases = [
        (lambda: vectors.publish(rosbags_point(x=1.0, y=2.0, z=3.0)), "geometry_msgs/msg/Point"),
        (lambda: vectors.publish(pose.position), "geometry_msgs/msg/Point"),  # nested in a loan
        (lambda: vectors.publish(pub.borrow_loaned_message()), ALL),
        (lambda: setattr(pose, "orientation", rosbags_point(x=1.0, y=2.0, z=3.0)),
         "geometry_msgs/msg/Point"),
        (lambda: setattr(pose, "orientation", pose.position), "geometry_msgs/msg/Point"),
    ]
    for i, (action, other) in enumerate(cases):
        with pytest.raises(agnoshm.TypeMismatchError) as info:
            action()
        assert isinstance(info.value, TypeError) and other in str(info.value), (i, str(info.value))
    pose.position = rosbags_point(x=1.0, y=2.0, z=3.0)  # the same type: copied
    vectors.publish({"x": 1.0, "y": 2.0, "z": 3.0})  # a dict: copied by field name
    other = node.create_publisher(ALL, "/all_elsewhere", 1)
    with pytest.raises(agnoshm.MessageInvalidatedError, match=f"this {ALL} was borrowed from "
                                                              "another publisher"):
        other.publish(pub.borrow_loaned_message())
    poses.publish(pose)


def test_bytes_fill_only_byte_sized_elements(endpoints):
    node, pub, sub = endpoints
    msg = pub.borrow_loaned_message()
    with pytest.raises(TypeError, match=rf"{ALL}\.f64_seq takes bytes only for byte, char or "
                                        r"uint8 elements.*np\.frombuffer\(data, dtype=np\.float64\)"):
        msg.f64_seq = np.float64(1.0).tobytes()
    with pytest.raises(TypeError, match="bytearray only for byte, char or uint8"):
        msg.def_seq = bytearray(4)
    msg.f64_seq = memoryview(np.array([1.5, 2.5]))  # a typed buffer: its elements
    msg.byte_seq = memoryview(b"\x01\x02")
    msg.u8_bseq = b"\x03"
    pub.publish(msg)
    got = sub.take()
    assert got.f64_seq.tolist() == [1.5, 2.5] and got.byte_seq.tolist() == [1, 2]
    assert got.u8_bseq.tolist() == [3]
    with pytest.raises(AttributeError, match="received messages are read-only .* alloc"):
        got.alloc("f64_seq", 3)
