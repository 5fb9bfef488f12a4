"""Layout rules and type sources, with hand-computed expectations (no ROS tooling needed).

The same rules are proven against gcc-compiled rosidl_generator_c headers in
test_layout_against_c.py.
"""

from __future__ import annotations

import ctypes
import warnings

import numpy as np
import pytest

from agnoshm.msg import layout as L
from agnoshm.msg.layout import layout_of, numpy_dtype
from agnoshm.msg.types import (
    EMPTY_MEMBER, STANDARD_DEFAULTS, Field, FieldType, MessageDefinition, MessageDefinitionError,
    TypeRegistry, UnknownTypeError, normalize_type_name, parse_msg,
)

LP64 = ctypes.sizeof(ctypes.c_void_p) == 8 and ctypes.alignment(ctypes.c_double) == 8
pytestmark = pytest.mark.skipif(not LP64, reason="hand-computed offsets are for LP64 (x86_64/aarch64)")


@pytest.fixture
def registry() -> TypeRegistry:
    return TypeRegistry(distro="jazzy", use_rclpy=False)


def offsets(layout) -> list[tuple[str, int, int]]:
    return [(f.name, f.offset, f.size) for f in layout.fields]


def define(registry: TypeRegistry, text: str, name: str = "t_pkg/msg/T"):
    registry.register_msg(text, name)
    return layout_of(name, registry=registry)


# --------------------------------------------------------------------------- layout rules


def test_primitives_take_natural_alignment(registry):
    layout = define(registry, """\
bool flag
float64 f64
uint8 u8
int32 i32
int16 i16
int64 i64
byte b
uint16 u16
char c
float32 f32
int8 i8
uint64 u64
uint32 u32
bool tail_flag
""")
    assert offsets(layout) == [
        ("flag", 0, 1), ("f64", 8, 8), ("u8", 16, 1), ("i32", 20, 4), ("i16", 24, 2),
        ("i64", 32, 8), ("b", 40, 1), ("u16", 42, 2), ("c", 44, 1), ("f32", 48, 4),
        ("i8", 52, 1), ("u64", 56, 8), ("u32", 64, 4), ("tail_flag", 68, 1)]
    assert (layout.size, layout.alignment) == (72, 8)  # 69 rounded up to 8
    assert {f.kind for f in layout.fields} == {L.PRIMITIVE}
    assert [f.value.c_type for f in layout.fields][:3] == ["bool", "double", "uint8_t"]
    # .msg byte and char are both unsigned char in C
    assert layout.field("b").value.c_type == layout.field("c").value.c_type == "uint8_t"
    assert not layout.holds_pointers


def test_size_is_rounded_to_alignment(registry):
    layout = define(registry, "int32 a\nuint8 b\n")
    assert offsets(layout) == [("a", 0, 4), ("b", 4, 1)]
    assert (layout.size, layout.alignment) == (8, 4)
    layout = define(registry, "uint8 a\nuint8 b\nuint8 c\n", "t_pkg/msg/Bytes3")
    assert (layout.size, layout.alignment) == (3, 1)


def test_strings_and_wstrings_are_pointer_size_capacity(registry):
    layout = define(registry, """\
uint8 before
string s
string<=10 bounded
uint8 between
wstring w
wstring<=7 bounded_w
bool after
""")
    assert offsets(layout) == [("before", 0, 1), ("s", 8, 24), ("bounded", 32, 24),
                               ("between", 56, 1), ("w", 64, 24), ("bounded_w", 88, 24),
                               ("after", 112, 1)]
    assert (layout.size, layout.alignment) == (120, 8)
    assert [f.kind for f in layout.fields[1:3]] == [L.STRING_KIND, L.STRING_KIND]
    assert layout.field("bounded").value.string_bound == 10
    assert layout.field("w").kind == L.WSTRING_KIND
    assert layout.field("bounded_w").value.string_bound == 7
    assert layout.field("w").value.c_type == "rosidl_runtime_c__U16String"
    assert layout.holds_pointers


def test_empty_message_is_one_uint8(registry):
    layout = define(registry, "# nothing here\n", "t_pkg/msg/Nothing")
    assert layout.is_empty
    assert offsets(layout) == [(EMPTY_MEMBER, 0, 1)]
    assert (layout.size, layout.alignment) == (1, 1)
    assert layout.definition.fields == ()
    std_empty = layout_of("std_msgs/msg/Empty", registry=registry)
    assert (std_empty.size, std_empty.is_empty) == (1, True)


def test_nested_messages_are_inline(registry):
    header = layout_of("std_msgs/msg/Header", registry=registry)
    assert offsets(header) == [("stamp", 0, 8), ("frame_id", 8, 24)]
    assert (header.size, header.alignment) == (32, 8)
    stamp = header.field("stamp")
    assert stamp.kind == L.MESSAGE and stamp.struct.type_name == "builtin_interfaces/msg/Time"
    assert stamp.value.c_type == "builtin_interfaces__msg__Time"

    registry.register_msg("", "t_pkg/msg/Nothing")
    layout = define(registry, "t_pkg/Nothing e\nuint8 a\nNothing f\nint16 b\n", "t_pkg/msg/WithEmpty")
    assert offsets(layout) == [("e", 0, 1), ("a", 1, 1), ("f", 2, 1), ("b", 4, 2)]
    assert (layout.size, layout.alignment) == (6, 2)


def test_fixed_arrays_are_inline(registry):
    layout = define(registry, """\
uint8 a
int16[3] b
uint8 c
float64[2] d
bool[3] e
string[2] names
geometry_msgs/Point[2] points
uint8 z
""")
    assert offsets(layout) == [("a", 0, 1), ("b", 2, 6), ("c", 8, 1), ("d", 16, 16),
                               ("e", 32, 3), ("names", 40, 48), ("points", 88, 48), ("z", 136, 1)]
    assert (layout.size, layout.alignment) == (144, 8)
    b = layout.field("b")
    assert (b.kind, b.count, b.element.kind, b.element.size, b.alignment) == (L.ARRAY, 3, L.PRIMITIVE, 2, 2)
    points = layout.field("points")
    assert points.element.kind == L.MESSAGE and points.element.struct.size == 24
    assert points.value.c_type == "geometry_msgs__msg__Point"
    assert layout.field("names").value.holds_pointers
    assert not points.value.holds_pointers


def test_sequences_bounded_or_not_are_pointer_size_capacity(registry):
    layout = define(registry, """\
uint8 a
int32[] ints
float64[<=4] bounded
string[] names
string<=8[<=3] both
wstring[] wnames
std_msgs/Header[] headers
builtin_interfaces/Time[<=5] stamps
char[] chars
""")
    assert offsets(layout) == [("a", 0, 1)] + [
        (n, 8 + 24 * i, 24) for i, n in enumerate(
            ["ints", "bounded", "names", "both", "wnames", "headers", "stamps", "chars"])]
    assert (layout.size, layout.alignment) == (200, 8)
    bounded = layout.field("bounded")
    assert (bounded.kind, bounded.bound, bounded.element.primitive) == (L.SEQUENCE, 4, "float64")
    assert layout.field("ints").bound == 0
    both = layout.field("both")
    assert (both.bound, both.element.kind, both.element.string_bound) == (3, L.STRING_KIND, 8)
    assert layout.field("headers").element.struct.size == 32
    c_types = [f.value.c_type for f in layout.fields[1:]]
    assert c_types == [
        "rosidl_runtime_c__int32__Sequence", "rosidl_runtime_c__double__Sequence",
        "rosidl_runtime_c__String__Sequence", "rosidl_runtime_c__String__Sequence",
        "rosidl_runtime_c__U16String__Sequence", "std_msgs__msg__Header__Sequence",
        "builtin_interfaces__msg__Time__Sequence", "rosidl_runtime_c__uint8__Sequence"]


def test_idl_only_primitives(registry):
    """wchar (uint16_t) and float128 (long double) come only from IDL/rclpy classes."""
    definition = MessageDefinition("t_pkg/msg/Idl", (
        Field("a", FieldType("uint8")), Field("w", FieldType("wchar")),
        Field("x", FieldType("float128")), Field("b", FieldType("uint8"))))
    layout = layout_of(definition, registry=registry)
    long_double = ctypes.sizeof(ctypes.c_longdouble)
    align = ctypes.alignment(ctypes.c_longdouble)
    assert offsets(layout)[:2] == [("a", 0, 1), ("w", 2, 2)]
    assert layout.field("x").offset == align and layout.field("x").size == long_double
    assert layout.alignment == max(align, 2)
    assert layout.field("w").value.c_type == "uint16_t"


def test_standard_types(registry):
    """A few standard messages, offsets worked out by hand."""
    image = layout_of("sensor_msgs/msg/Image", registry=registry)
    assert offsets(image) == [("header", 0, 32), ("height", 32, 4), ("width", 36, 4),
                              ("encoding", 40, 24), ("is_bigendian", 64, 1), ("step", 68, 4),
                              ("data", 72, 24)]
    assert image.size == 96
    imu = layout_of("sensor_msgs/msg/Imu", registry=registry)
    assert [f.offset for f in imu.fields] == [0, 32, 64, 136, 160, 232, 256] and imu.size == 328
    pc2 = layout_of("sensor_msgs/msg/PointCloud2", registry=registry)
    assert offsets(pc2) == [("header", 0, 32), ("height", 32, 4), ("width", 36, 4),
                            ("fields", 40, 24), ("is_bigendian", 64, 1), ("point_step", 68, 4),
                            ("row_step", 72, 4), ("data", 80, 24), ("is_dense", 104, 1)]
    assert pc2.size == 112
    nav = layout_of("sensor_msgs/msg/NavSatStatus", registry=registry)
    assert offsets(nav) == [("status", 0, 1), ("service", 2, 2)] and nav.size == 4


def test_layout_is_cached_and_unknown_nested_types_are_named(registry):
    assert layout_of("std_msgs/msg/Header", registry=registry) is \
        layout_of("std_msgs/Header", registry=registry)
    registry.register_msg("t_pkg/Missing m\n", "t_pkg/msg/Broken")
    with pytest.raises(UnknownTypeError, match="t_pkg/msg/Missing.*used by t_pkg/msg/Broken"):
        layout_of("t_pkg/msg/Broken", registry=registry)


def test_recursive_types_are_refused(registry):
    registry.register_msg("t_pkg/Loop[] children\n", "t_pkg/msg/Loop")
    with pytest.raises(ValueError, match="recursive"):
        layout_of("t_pkg/msg/Loop", registry=registry)


# --------------------------------------------------------------------------- numpy


def test_numpy_dtype_of_pointer_free_layouts(registry):
    pose = layout_of("geometry_msgs/msg/PoseWithCovariance", registry=registry)
    dtype = numpy_dtype(pose)
    assert dtype.itemsize == pose.size == 344
    assert dtype.fields["covariance"][0] == np.dtype(("<f8", (36,)))
    assert dtype.fields["covariance"][1] == 56
    assert dtype["pose"]["orientation"].fields["w"][1] == 24

    registry.register_msg("", "t_pkg/msg/Nothing")
    layout = define(registry, "bool a\nint16[3] b\nuint8 c\nfloat64 d\nt_pkg/Nothing e\nuint32 f\n",
                    "t_pkg/msg/Flat")
    dtype = numpy_dtype(layout)
    assert [dtype.fields[f.name][1] for f in layout.fields] == [f.offset for f in layout.fields]
    assert dtype.itemsize == layout.size == 32
    buffer = np.zeros(1, dtype)
    buffer["b"] = [1, -2, 3]
    buffer["d"] = 2.5
    raw = buffer.tobytes()
    assert np.frombuffer(raw[2:8], "<i2").tolist() == [1, -2, 3]
    assert np.frombuffer(raw[16:24], "<f8")[0] == 2.5


def test_numpy_dtype_refuses_pointers(registry):
    with pytest.raises(ValueError, match="holds pointers.*frame_id"):
        numpy_dtype(layout_of("std_msgs/msg/Header", registry=registry))


# --------------------------------------------------------------------------- .msg parsing


def test_parse_constants_defaults_and_types():
    definition = parse_msg("""\
# comment line
int8 NEG=-1          # trailing comment
uint8 HEX=0x10
string NAME="a b"
bool ON=True
float64 PI=3.14
bool flag true
int32[3] arr [1, 2, 3]
string<=5[<=2] names ["a,b", 'c']
float32 x 1.5
string s 'hi there'
Other nested
other_pkg/Thing thing
""", "my_pkg/msg/M")
    assert [(c.name, c.type, c.value) for c in definition.constants] == [
        ("NEG", "int8", -1), ("HEX", "uint8", 16), ("NAME", "string", "a b"),
        ("ON", "bool", True), ("PI", "float64", 3.14)]
    fields = {f.name: f for f in definition.fields}
    assert fields["flag"].default is True
    assert fields["arr"].type == FieldType("int32", array_size=3) and fields["arr"].default == (1, 2, 3)
    assert fields["names"].type == FieldType("string", 5, sequence=True, sequence_bound=2)
    assert fields["names"].default == ("a,b", "c")
    assert fields["x"].default == 1.5 and fields["s"].default == "hi there"
    assert fields["nested"].type.base == "my_pkg/msg/Other"
    assert fields["thing"].type.base == "other_pkg/msg/Thing"
    assert str(fields["names"].type) == "string<=5[<=2]"
    assert str(fields["thing"].type) == "other_pkg/Thing"
    # round trip through .msg text
    again = parse_msg(definition.to_msg(), "my_pkg/msg/M")
    assert again.fields == definition.fields and again.constants == definition.constants


@pytest.mark.parametrize("line, reason", [
    ("int32", "expected '<type> <name>'"),
    ("int33 x", "unknown field type 'int33'"),
    ("string<=0 s", "string bound"),
    ("int32[0] a", "array size"),
    ("int32[<=x] a", "sequence bound"),
    ("uint8 x 256", "out of range"),
    ("int8 x -129", "out of range"),
    ("bool b maybe", "bool value"),
    ("float64 f abc", "must be a number"),
    ("int32 Bad=1", "invalid constant name"),
    ("int32 BadName", "invalid field name"),
    ("int32 bad__name", "invalid field name"),
    ("std_msgs/Header h 5", "cannot have default"),
    ("int32[2] a [1, 2, 3]", "exactly 2 elements"),
    ("int32[<=1] a [1, 2]", "at most 1"),
    ("string<=2 s 'abc'", "longer than its bound"),
    ("std_msgs/Header[] X=1", "primitive or string type"),
    ("int32]x a", "bad array syntax"),
])
def test_parse_errors_name_source_line_and_reason(line, reason):
    with pytest.raises(MessageDefinitionError) as info:
        parse_msg(f"# header\nint32 ok\n{line}\n", "my_pkg/msg/Bad")
    message = str(info.value)
    assert "my_pkg/msg/Bad, line 3" in message and reason in message, message
    assert isinstance(info.value, ValueError)


def test_parse_duplicate_names():
    with pytest.raises(MessageDefinitionError, match="line 2: duplicate name 'a'"):
        parse_msg("int32 a\nfloat64 a\n", "my_pkg/msg/Dup")


def test_type_names_are_normalized():
    assert normalize_type_name("std_msgs/String") == "std_msgs/msg/String"
    assert normalize_type_name("std_msgs/msg/String") == "std_msgs/msg/String"
    for bad in ("String", "std_msgs/srv/X", "Std/Name", "std_msgs/string", "a/b/c/d"):
        with pytest.raises(ValueError, match="invalid message type name"):
            normalize_type_name(bad)


# --------------------------------------------------------------------------- registry


def test_register_msg_file_and_package(registry, tmp_path):
    package = tmp_path / "folder_name"
    (package / "msg").mkdir(parents=True)
    (package / "package.xml").write_text("<package format='3'><name>my_robot_msgs</name></package>")
    (package / "msg" / "Wheel.msg").write_text("float64 speed\nstring name\n")
    (package / "msg" / "Robot.msg").write_text("uint8 MAX_WHEELS=4\nWheel[<=4] wheels\nstd_msgs/Header header\n")
    assert sorted(registry.register_package(package)) == ["my_robot_msgs/msg/Robot", "my_robot_msgs/msg/Wheel"]
    robot = layout_of("my_robot_msgs/msg/Robot", registry=registry)
    assert offsets(robot) == [("wheels", 0, 24), ("header", 24, 32)]
    assert robot.field("wheels").element.struct.size == 32
    assert registry.get("my_robot_msgs/msg/Robot").constants[0].value == 4

    single = tmp_path / "other_pkg" / "msg" / "Point2.msg"
    single.parent.mkdir(parents=True)
    single.write_text("float32 x\nfloat32 y\n")
    assert registry.register_msg(single) == "other_pkg/msg/Point2"
    assert registry.register_msg(str(single)) == "other_pkg/msg/Point2"  # same again: no-op
    assert layout_of("other_pkg/msg/Point2", registry=registry).size == 8


def test_register_errors(registry, tmp_path):
    bad = tmp_path / "p" / "msg" / "Bad.msg"
    bad.parent.mkdir(parents=True)
    bad.write_text("int32 a\nint32 b c d\n")
    with pytest.raises(MessageDefinitionError, match=r"Bad\.msg, line 2: int32 value"):
        registry.register_msg(bad)
    with pytest.raises(MessageDefinitionError, match="needs type_name"):
        registry.register_msg("int32 a")
    loose = tmp_path / "Loose.msg"
    loose.write_text("int32 a\n")
    with pytest.raises(MessageDefinitionError, match="pass type_name"):
        registry.register_msg(loose)
    with pytest.raises(MessageDefinitionError, match="already defined differently"):
        registry.register_msg("int32 data\n", "std_msgs/msg/String")
    registry.register_msg("string data  # same as the standard one\n", "std_msgs/msg/String")
    with pytest.raises(MessageDefinitionError, match="no msg/"):
        registry.register_package(tmp_path / "nothing")


def test_unknown_type_error_says_how_to_fix(registry):
    with pytest.raises(UnknownTypeError) as info:
        registry.get("std_msgs/msg/Strin")
    message = str(info.value)
    assert "'std_msgs/msg/Strin'" in message and "std_msgs/msg/String" in message
    assert "register_msg" in message and "ROS_DISTRO" in message
    assert isinstance(info.value, LookupError)
    assert "std_msgs/msg/Strin" not in registry and "std_msgs/msg/String" in registry


def test_distro_selection(monkeypatch):
    monkeypatch.setenv("ROS_DISTRO", "humble")
    assert TypeRegistry(use_rclpy=False).rosbags.store_name == "ros2_humble"
    monkeypatch.delenv("ROS_DISTRO")
    from rosbags.typesys import Stores
    newest = [s for s in Stores if s.name.startswith("ROS2_")][-1].value
    assert TypeRegistry(use_rclpy=False).rosbags.store_name == newest
    monkeypatch.setenv("ROS_DISTRO", "rolling")
    assert TypeRegistry(use_rclpy=False).rosbags.store_name == newest
    monkeypatch.setenv("ROS_DISTRO", "nosuchdistro")
    with pytest.warns(UserWarning, match="nosuchdistro"):
        assert TypeRegistry(use_rclpy=False).rosbags.store_name == newest
    assert TypeRegistry(distro="iron", use_rclpy=False).rosbags.store_name == "ros2_iron"


@pytest.mark.parametrize("distro", ["humble", "iron", "jazzy", "kilted"])
def test_standard_types_get_their_msg_defaults_from_the_rosbags_source(distro):
    registry = TypeRegistry(distro=distro, use_rclpy=False)
    quaternion = registry.get("geometry_msgs/msg/Quaternion")
    assert [f.default for f in quaternion.fields] == [0.0, 0.0, 0.0, 1.0]
    assert "float64 w 1.0" in quaternion.to_msg().splitlines()
    # sensor_msgs/NavSatStatus has "int8 status -2" from Jazzy on, no default before
    status = registry.get("sensor_msgs/msg/NavSatStatus").field("status").default
    assert status == (None if distro in ("humble", "iron") else -2)
    assert registry.get("std_msgs/msg/Header").field("frame_id").default is None
    # every entry of the table names a field of the type the store has, with a value of its kind
    for (type_name, field_name), (value, since) in STANDARD_DEFAULTS.items():
        if type_name not in registry.rosbags.typestore.fielddefs:
            assert since == "jazzy" and distro in ("humble", "iron"), type_name
            continue
        field = registry.get(type_name).field(field_name)
        kind = {"float64": float, "bool": bool, "int8": int, "uint8": int}[field.type.base]
        assert type(value) is kind and not field.type.is_array, (type_name, field_name)


# --------------------------------------------------------------------------- RIHS01


def test_hashes_equal_rosbags_and_published_values(registry):
    typestore = registry.rosbags.typestore
    has_char = {"std_msgs/msg/Char", "rmw_dds_common/msg/Gid", "service_msgs/msg/ServiceEventInfo",
                "rmw_dds_common/msg/NodeEntitiesInfo", "rmw_dds_common/msg/ParticipantEntitiesInfo"}
    for name in registry.names():
        if name not in has_char and name != "agnoshm/msg/Bytes":
            assert registry.type_hash(name) == typestore.hash_rihs01(name), name
    # values ROS 2 (Jazzy) publishes; rosbags hashes .msg char as IDL char, ROS 2 as uint8
    assert registry.type_hash("std_msgs/msg/String") == \
        "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
    assert registry.type_hash("std_msgs/msg/Byte") == \
        "RIHS01_41e1a3345f73fe93ede006da826a6ee274af23dd4653976ff249b0f44e3e798f"
    assert registry.type_hash("std_msgs/msg/Char") == \
        "RIHS01_3ad2d04dd29ba19d04b16659afa3ccaedd691914b02a64e82e252f2fa6a586a9"
    assert registry.type_hash("service_msgs/msg/ServiceEventInfo") == \
        "RIHS01_41bcbbe07a75c9b52bc96bfd5c24d7f0fc0a08c0cb7921b3373c5732345a6f45"


def test_bytes_is_an_ordinary_type_every_registry_knows(registry):
    from rosbags.typesys import get_types_from_msg

    definition = registry.get("agnoshm/msg/Bytes")
    assert "agnoshm/msg/Bytes" in registry.names() and registry.get("agnoshm/Bytes") is definition
    assert [(f.name, str(f.type)) for f in definition.fields] == [("data", "uint8[]")]
    assert offsets(layout_of(definition, registry=registry)) == [("data", 0, 24)]
    typestore = registry.rosbags.typestore
    typestore.register(get_types_from_msg("uint8[] data", "agnoshm/msg/Bytes"))
    assert definition.type_hash == typestore.hash_rihs01("agnoshm/msg/Bytes")
    registry.register_msg("uint8[] data", "agnoshm/msg/Bytes")  # the same definition: fine
    with pytest.raises(MessageDefinitionError, match="already defined differently"):
        registry.register_msg("int8[] data", "agnoshm/msg/Bytes")


def test_user_type_hash_equals_rosbags_for_the_same_text(registry):
    from rosbags.typesys import get_types_from_msg

    text = "uint8 K=1\nstd_msgs/Header header\nstring<=5[<=3] names\nint32[4] arr\nbyte b 3\n"
    registry.register_msg(text, "hash_pkg/msg/Thing")
    typestore = TypeRegistry(distro="jazzy", use_rclpy=False).rosbags.typestore
    typestore.register(get_types_from_msg(text, "hash_pkg/msg/Thing"))
    assert registry.type_hash("hash_pkg/msg/Thing") == typestore.hash_rihs01("hash_pkg/msg/Thing")
    # wstrings (which rosbags cannot hash) get their own type ids
    registry.register_msg("wstring a\n", "hash_pkg/msg/W")
    registry.register_msg("string a\n", "hash_pkg/msg/S")
    assert registry.type_hash("hash_pkg/msg/W") != registry.type_hash("hash_pkg/msg/S")


# --------------------------------------------------------------------------- rclpy classes


class BasicType:
    def __init__(self, typename):
        self.typename = typename


class UnboundedString:
    pass


class BoundedWString:
    def __init__(self, maximum_size):
        self.maximum_size = maximum_size


class NamespacedType:
    def __init__(self, namespaces, name):
        self.namespaces, self.name = namespaces, name

    def namespaced_name(self):
        return (*self.namespaces, self.name)


class Array:
    def __init__(self, value_type, size):
        self.value_type, self.size = value_type, size


class BoundedSequence:
    def __init__(self, value_type, maximum_size):
        self.value_type, self.maximum_size = value_type, maximum_size


class UnboundedSequence:
    def __init__(self, value_type):
        self.value_type = value_type


def _fake_rclpy_class(module, name, fields, slot_types, constants=None, defaults=None):
    """A class shaped like rosidl_generator_py's output (metaclass properties for constants)."""
    namespace = {name_: property(lambda cls, v=value: v) for name_, value in (constants or {}).items()}
    namespace.update({f"{k.upper()}__DEFAULT": property(lambda cls, v=v: v)
                      for k, v in (defaults or {}).items()})
    meta = type(f"Metaclass_{name}", (type,), namespace)
    return meta(name, (), {
        "__module__": module, "SLOT_TYPES": tuple(slot_types),
        "get_fields_and_field_types": classmethod(lambda cls: dict(fields)),
    })


def test_rclpy_classes_are_described_from_slot_types(registry):
    cls = _fake_rclpy_class(
        "fake_msgs.msg._thing", "Thing",
        {"header": "std_msgs/Header", "flag": "boolean", "raw": "octet[4]", "name": "string",
         "w": "wstring<3>", "values": "sequence<double, 5>", "points": "sequence<geometry_msgs/Point>"},
        [NamespacedType(["std_msgs", "msg"], "Header"), BasicType("boolean"),
         Array(BasicType("octet"), 4), UnboundedString(), BoundedWString(3),
         BoundedSequence(BasicType("double"), 5),
         UnboundedSequence(NamespacedType(["geometry_msgs", "msg"], "Point"))],
        constants={"LIMIT": 7}, defaults={"flag": True})
    definition = registry.get(cls)
    assert definition.type_name == "fake_msgs/msg/Thing" and definition.source == "rclpy"
    assert [str(f.type) for f in definition.fields] == [
        "std_msgs/Header", "bool", "byte[4]", "string", "wstring<=3", "float64[<=5]",
        "geometry_msgs/Point[]"]
    assert definition.field("flag").default is True
    assert [(c.name, c.value) for c in definition.constants] == [("LIMIT", 7)]
    assert definition.type_hash.startswith("RIHS01_")
    layout = layout_of(cls, registry=registry)
    assert offsets(layout) == [("header", 0, 32), ("flag", 32, 1), ("raw", 33, 4), ("name", 40, 24),
                               ("w", 64, 24), ("values", 88, 24), ("points", 112, 24)]


def test_rclpy_and_rosbags_sources_agree_on_hashes(registry):
    """rclpy shows .msg char as uint8 and byte as octet; the hash must not depend on the source."""
    char = _fake_rclpy_class("std_msgs.msg._char", "Char", {"data": "uint8"}, [BasicType("uint8")])
    byte = _fake_rclpy_class("std_msgs.msg._byte", "Byte", {"data": "octet"}, [BasicType("octet")])
    header = _fake_rclpy_class(
        "std_msgs.msg._header", "Header", {"stamp": "builtin_interfaces/Time", "frame_id": "string"},
        [NamespacedType(["builtin_interfaces", "msg"], "Time"), UnboundedString()])
    fresh = TypeRegistry(distro="jazzy", use_rclpy=False)
    for cls, name in ((char, "std_msgs/msg/Char"), (byte, "std_msgs/msg/Byte"),
                      (header, "std_msgs/msg/Header")):
        assert fresh.get(cls).type_hash == registry.type_hash(name)


def test_rclpy_source_comes_first(registry):
    class Source:
        def get(self, name):
            if name == "std_msgs/msg/String":
                return MessageDefinition(name, (Field("data", FieldType("string")),), source="rclpy")
            return None

    registry._rclpy = Source()
    assert registry.get("std_msgs/msg/String").source == "rclpy"
    assert registry.get("std_msgs/msg/Header").source.startswith("rosbags:")


def test_without_rclpy_the_rclpy_source_is_skipped():
    registry = TypeRegistry(distro="jazzy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert registry.get("std_msgs/msg/String").source in ("rclpy", "rosbags:ros2_jazzy")
