"""Shared by the message tests, and the code their spawned children run.

* :data:`TEST_PACKAGES`: two packages of ``.msg`` definitions with every field kind,
  ``agnoshm_views_test`` (the views' tests) and ``agnoshm_test_msgs`` (padding traps),
  registered with :func:`register_test_package`, in the parent and in each child;
  both are proven against rosidl_generator_c and round-tripped;
* :class:`Values`: seeded random *valid* values for any type, made from its C
  layout (``agnoshm.msg.layout_of``); the same seed gives the same values in
  every process;
* :func:`assert_same`: a deep comparison that compares floats bit for bit;
* :func:`rosbags_to_plain`: a rosbags message as the plain values ``to_dict()`` gives;
* :func:`publish_values` / :func:`take_values`: children of the cross-process round trips.

The tests put this folder on ``sys.path``; spawned children inherit it.
"""

from __future__ import annotations

import math
import os
import random
import struct

TIMEOUT = float(os.environ.get("AGNOSHM_TEST_TIMEOUT", "120"))

PACKAGE = "agnoshm_views_test"
_PRIMITIVES = ("bool", "byte", "char", "int8", "uint8", "int16", "uint16", "int32", "uint32",
               "int64", "uint64", "float32", "float64")

#: name -> .msg text; every field kind, constants and defaults
TEST_PACKAGE: dict[str, str] = {
    "Empty": "# a message without fields\n",
    # pointer-free: sequences of it are structured numpy arrays
    "Point": """\
uint8 MAX_Z=100
float64 x
float32 y 0.5
int8 z
uint8[3] rgb
bool ok
""",
    # pointer-free, with nested pointer-free messages, a fixed array of them, byte, char, Empty
    "Patch": """\
Point center
Point[2] corners
byte tag
char letter
Empty nothing
""",
    # holds pointers: sequences of it are tuples of views
    "Named": """\
string name
int32 id 7
float64[] values
Point where
""",
    "Wide": """\
wstring w
wstring<=4 bw "abc"
wstring[] ws_seq
wstring<=3[<=2] bws_seq
wstring[2] ws_arr
""",
    # every primitive as a scalar, a fixed array, an unbounded and a bounded sequence
    "Prims": "".join(f"{p} {p}_v\n{p}[2] {p}_arr\n{p}[] {p}_seq\n{p}[<=3] {p}_bseq\n"
                     for p in _PRIMITIVES),
    "All": """\
int32 ANSWER=42
string GREETING="hello"
float64 PI=3.14
bool b
byte by
char ch
int8 i8
uint8 u8
int16 i16
uint16 u16
int32 i32
uint32 u32
int64 i64
uint64 u64
float32 f32
float64 f64
string s
string<=5 bs
wstring ws
wstring<=4 bws
Point point
Named named
Empty empty
Patch patch
int32[3] int_array
bool[2] bool_array
string[2] string_array
string<=4[2] bstring_array
Point[2] point_array
Named[2] named_array
float64[] f64_seq
uint8[<=4] u8_bseq
bool[] bool_seq
byte[] byte_seq
string[] string_seq
string<=3[<=2] bstring_bseq
wstring[] wstring_seq
Point[] point_seq
Point[<=2] point_bseq
Patch[] patch_seq
Named[] named_seq
Named[<=2] named_bseq
Empty[] empty_seq
int8 def_i8 -7
string def_str "dflt"
float32[3] def_arr [1.5, 2.5, 3.5]
int16[] def_seq [1, -2, 3]
bool def_bool true
string[] def_strs ["a", "b,c"]
""",
    "Rest": """# the string kinds All leaves out
string[<=3] string_bseq ["x"]
string<=4[] bstring_seq
wstring<=3[2] bwstring_array
wstring<=2[<=2] bwstring_bseq
""",
}


#: A second package with every field kind, written around padding traps (odd members
#: between wide ones, empty messages inside structs), with constants and defaults.
LAYOUT_PACKAGE = "agnoshm_test_msgs"
LAYOUT_MSGS: dict[str, str] = {
    "Empty": "# a message without fields\n",
    "Primitives": """\
bool FLAG_ON=true
byte BYTE_MAX=255
char CHAR_A=65
int8 INT8_MIN=-128
uint64 UINT64_MAX=18446744073709551615
float32 HALF=0.5
float64 PI=3.14159
string GREETING="hello world"

bool flag true
float64 f64 2.5
uint8 u8 200
int32 i32 -32
int16 i16
int64 i64 -64
byte b 7
uint16 u16
char c 65
float32 f32 1.5
int8 i8 -8
uint64 u64 64
uint32 u32
bool tail_flag
""",
    "Strings": """\
string DEFAULT_NAME='agnoshm'
uint8 before
string s "default"
string<=10 bounded "abc"
uint8 between
wstring w
wstring<=7 bounded_w
bool after
""",
    "Arrays": """\
bool[3] flags [true, false, true]
int16[3] shorts
uint8 odd
float64[2] doubles [1.0, 2.0]
char[5] chars
string[2] names ["a", "b,c"]
byte[4] raw
string<=5[3] short_names
wstring[2] wnames
wstring<=3[2] short_wnames
uint8 odd2
Primitives[2] prims
Empty[3] empties
int64[1] one
float32[3] floats
uint16 tail
""",
    "Sequences": """\
int32[] ints
float64[<=4] bounded_doubles
bool[] flags
byte[] raw
char[<=3] chars
uint8 odd
string[] names
string[<=3] bounded_names ["x", "y"]
string<=8[] names_bounded
string<=8[<=3] both_bounded
wstring[] wnames
wstring<=4[<=2] bounded_wnames
Primitives[] prims
Primitives[<=2] bounded_prims
builtin_interfaces/Time[<=5] stamps
Empty[] empties
int8[] with_default [1, 2, 3]
float32[<=2] floats
""",
    "Everything": """\
uint8 KIND_A=1
std_msgs/Header header
uint8 small
Primitives prims
Empty empty
int16 after_empty
Empty[2] empties
Strings strings
uint8 small2
Arrays arrays
Sequences sequences
geometry_msgs/Pose pose
Empty last_empty
uint8 tail
""",
    "Tiny": """\
uint8 a
Empty e
uint8 b
""",
}

#: package name -> {message name: .msg text}: both test packages
TEST_PACKAGES = {PACKAGE: TEST_PACKAGE, LAYOUT_PACKAGE: LAYOUT_MSGS}


def type_name(name: str) -> str:
    return f"{PACKAGE}/msg/{name}"


def register_test_package(registry=None) -> list[str]:
    """Register both :data:`TEST_PACKAGES` in ``registry`` (default: agnoshm's) in this
    process (idempotent); return the type names."""
    import agnoshm

    register = agnoshm.register_msg if registry is None else registry.register_msg
    return [register(text, f"{package}/msg/{name}")
            for package, messages in TEST_PACKAGES.items() for name, text in messages.items()]


def has_wstring(layout) -> bool:
    """True if a wstring is anywhere in the struct ``layout`` (rosbags cannot serialize it)."""
    for field in () if layout.is_empty else layout.fields:
        value = field.value
        while value.kind in ("array", "sequence"):
            value = value.element
        if value.kind == "wstring" or (value.kind == "message" and has_wstring(value.struct)):
            return True
    return False


# --------------------------------------------------------------------------- values

_INT_RANGES = {"byte": (0, 0xFF), "char": (0, 0xFF), "int8": (-0x80, 0x7F), "uint8": (0, 0xFF),
               "int16": (-0x8000, 0x7FFF), "uint16": (0, 0xFFFF), "int32": (-(1 << 31), (1 << 31) - 1),
               "uint32": (0, (1 << 32) - 1), "int64": (-(1 << 63), (1 << 63) - 1),
               "uint64": (0, (1 << 64) - 1)}
_F64_SPECIAL = (0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 2.2250738585072014e-308,
                1.7976931348623157e308, -1.7976931348623157e308)
_F32_MAX = 3.4028234663852886e38
_F32_SPECIAL = (0.0, -0.0, math.inf, -math.inf, math.nan, 1.401298464324817e-45,
                1.1754943508222875e-38, _F32_MAX, -_F32_MAX)
_TEXT = "abcXYZ019 _-./é€日本語\u00ff🙂"  # UTF-8 of 1 to 4 bytes
_WIDE = "abcXYZ019 _-é€日本語\u00ff\uffee"  # the Basic Multilingual Plane: one UTF-16 unit each


def f32(value: float) -> float:
    """``value`` rounded to the nearest float32 (as Python float)."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


class Values:
    """Seeded random valid values for message types, as the plain dicts ``to_dict()`` gives."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def message(self, layout) -> dict:
        if layout.is_empty:
            return {}
        return {f.name: self.value(f.value) for f in layout.fields}

    def value(self, value):
        kind = value.kind
        if kind == "primitive":
            return self.primitive(value.primitive)
        if kind == "string":
            return self.text(_TEXT, value.string_bound, ascii_only=bool(value.string_bound))
        if kind == "wstring":
            return self.text(_WIDE, value.string_bound)
        if kind == "message":
            return self.message(value.struct)
        if kind == "array":
            return [self.value(value.element) for _ in range(value.count)]
        element = value.element
        longest = 300 if element.kind == "primitive" and element.size == 1 else 5
        n = self.rng.randint(0, min(value.bound, longest) if value.bound else longest)
        return [self.value(element) for _ in range(n)]

    def primitive(self, primitive: str):
        rng = self.rng
        if primitive == "bool":
            return rng.random() < 0.5
        if primitive in _INT_RANGES:
            low, high = _INT_RANGES[primitive]
            if rng.random() < 0.2:
                return rng.choice((low, high, 0))
            return rng.randint(low, high)
        special = rng.random() < 0.15
        if primitive == "float32":
            if special:
                return rng.choice(_F32_SPECIAL)
            return f32(rng.uniform(-1.0, 1.0) * 10.0 ** rng.randint(-44, 37))
        if special:
            return rng.choice(_F64_SPECIAL)
        return rng.uniform(-1.0, 1.0) * 10.0 ** rng.randint(-300, 300)

    def text(self, alphabet: str, bound: int, ascii_only: bool = False) -> str:
        if ascii_only:
            alphabet = "".join(c for c in alphabet if ord(c) < 128)
        n = self.rng.randint(0, bound or 12)
        return "".join(self.rng.choice(alphabet) for _ in range(n))


def message_values(name: str, seed, index: int = 0) -> dict:
    """The values of message ``index`` of type ``name`` for ``seed`` (the same in every process)."""
    from agnoshm.msg import layout_of

    return Values(f"{seed}:{name}:{index}").message(layout_of(name))


# --------------------------------------------------------------------------- comparing


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def assert_same(expected, actual, path: str = "msg") -> None:
    """Deep equality of plain values; floats must match bit for bit (NaN, -0.0 included)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected a dict, got {actual!r:.80}"
        assert list(actual) == list(expected), f"{path}: fields {list(actual)} != {list(expected)}"
        for key, item in expected.items():
            assert_same(item, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {type(actual).__name__}"
        assert len(actual) == len(expected), f"{path}: {len(actual)} elements != {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_same(e, a, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert type(actual) is float, f"{path}: expected float {expected!r}, got {actual!r}"
        assert _bits(actual) == _bits(expected), f"{path}: {actual!r} != {expected!r} (bits)"
    else:
        assert type(actual) is type(expected) and actual == expected, \
            f"{path}: {actual!r} ({type(actual).__name__}) != {expected!r} ({type(expected).__name__})"


def rosbags_to_plain(message, layout) -> dict:
    """A rosbags message as plain values, shaped like ``to_dict()`` of the same type.

    rosbags keeps a ``byte`` as int8 (ROS 1 meaning); ROS 2 and agnoshm as an octet, 0..255.
    """
    if layout.is_empty:
        return {}
    return {f.name: _plain(getattr(message, f.name), f.value) for f in layout.fields}


def _plain(value, layout):
    kind = layout.kind
    if kind == "message":
        return rosbags_to_plain(value, layout.struct)
    if kind in ("array", "sequence"):
        return [_plain(v, layout.element) for v in value]
    if kind == "primitive":
        primitive = layout.primitive
        if primitive == "bool":
            return bool(value)
        if primitive in ("float32", "float64"):
            return float(value)
        return int(value) & 0xFF if primitive == "byte" else int(value)
    return value


# --------------------------------------------------------------------------- children


def publish_values(names: list[str], seed, count: int, out, done) -> None:
    """Publish ``count`` seeded messages of each type on ``/rt<i>`` through loans; report the
    pool; stay alive (the subscribers read our pool) until ``done``."""
    import agnoshm
    from agnoshm.msg.coerce import assign

    register_test_package()
    node = agnoshm.Node("roundtrip_pub")
    runtime = agnoshm.context.get_runtime()
    for i, name in enumerate(names):
        pub = node.create_publisher(name, f"/rt{i}", count)
        for k in range(count):
            msg = pub.borrow_loaned_message()
            assign(msg, message_values(name, seed, k))
            pub.publish(msg)
    out.put(("published", os.getpid(), runtime.pool.address, runtime.pool.size))
    done.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


def take_values(names: list[str], count: int, inbox, out) -> None:
    """Subscribe to ``/rt<i>``; once the parent's pool arrives on ``inbox`` (it has published
    by then), take ``count`` messages per type and report each ``to_dict()`` and whether its
    arrays lie, read-only, in the publisher's pool."""
    import agnoshm

    register_test_package()
    node = agnoshm.Node("roundtrip_sub")
    subs = [node.create_polling_subscription(name, f"/rt{i}", count) for i, name in enumerate(names)]
    out.put(("ready", os.getpid()))
    pool_address, pool_size = inbox.get(timeout=TIMEOUT)
    results = []
    for name, sub in zip(names, subs):
        taken = []
        for _ in range(count):
            msg = sub.take()
            if msg is None:
                taken.append(None)
                continue
            in_pool = [pool_address <= a.ctypes.data < pool_address + pool_size
                       and not a.flags.writeable for a in _arrays(msg) if a.size]
            taken.append((msg.to_dict(), in_pool, type(msg).__name__))
            del msg
        results.append((name, taken))
    out.put(("taken", results))
    node.destroy_node()
    agnoshm.shutdown()


def _arrays(view):
    """The numpy arrays of ``view``'s primitive sequences and arrays (top level)."""
    import numpy as np

    found = []
    for field in () if view._layout.is_empty else view._layout.fields:
        value = getattr(view, field.name)
        if isinstance(value, np.ndarray):
            found.append(value)
    return found
