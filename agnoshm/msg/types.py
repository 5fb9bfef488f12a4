"""Message type sources, turned into one uniform :class:`MessageDefinition`.

A type is named ``"pkg/msg/Name"`` (``"pkg/Name"`` is accepted and
normalized). :class:`TypeRegistry` resolves a name from these sources, in
this order:

1. agnoshm's own type, ``agnoshm/msg/Bytes`` (:mod:`agnoshm.msg.bytes`). No
   other source is asked for it: an rclpy-style lookup imports ``agnoshm.msg``
   and takes ``Bytes``, which asks this registry again.
2. **rclpy message classes**, when ``import rclpy`` works (tried lazily, once):
   ``Name`` from the module ``pkg.msg`` (:func:`ros_message_class`, what
   ``rosidl_runtime_py.utilities.get_message`` does; that package is not on
   PyPI), described from ``get_fields_and_field_types()`` and ``SLOT_TYPES``.
3. **rosbags type stores** (pure Python, every standard interface package):
   the store of ``ROS_DISTRO`` (``Stores.ROS2_<DISTRO>``), else the newest ROS 2
   store that the installed rosbags ships. The stores keep no field defaults;
   the few the standard packages have are in :data:`STANDARD_DEFAULTS`.
4. **user definitions** registered with :meth:`TypeRegistry.register_msg` (text
   or a ``.msg`` file) or :meth:`TypeRegistry.register_package` (a package
   folder with ``msg/*.msg``).

``.msg`` text is parsed here, following the rules of ``rosidl_adapter`` (the
parser ROS 2 itself uses), because rosbags' ``.msg`` parser has no ``wstring``,
drops default values and accepts malformed lines.

Every definition carries its RIHS01 type hash, computed as
``rosidl_generator_type_description`` does: sha256 of the JSON type
description (fields with type id, capacity, string capacity and nested type
name; referenced types sorted by name; no default values, no constants).
As in ROS 2, a ``.msg`` ``char`` is hashed as ``uint8`` (``rosidl_adapter``
translates it to IDL ``uint8``) and ``byte`` as ``octet``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import json
import os
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from agnoshm.errors import AgnoshmError
from agnoshm.msg.bytes import BYTES_DEFINITION, BYTES_TYPE_NAME

__all__ = [
    "PRIMITIVES", "STRING", "WSTRING", "EMPTY_MEMBER", "STANDARD_DEFAULTS",
    "FieldType", "Field", "Constant", "MessageDefinition",
    "UnknownTypeError", "MessageDefinitionError",
    "TypeRegistry", "default_registry", "get_definition", "type_hash",
    "register_msg", "register_package", "normalize_type_name", "parse_msg", "ros_message_class",
]

#: Primitive type names (``.msg`` spelling; ``wchar`` and ``float128`` only come from IDL).
PRIMITIVES = (
    "bool", "byte", "char", "int8", "uint8", "int16", "uint16", "int32", "uint32",
    "int64", "uint64", "float32", "float64", "float128", "wchar",
)
STRING = "string"
WSTRING = "wstring"
#: The member rosidl adds to a message without fields (one ``uint8_t``).
EMPTY_MEMBER = "structure_needs_at_least_one_member"

_PACKAGE_RE = re.compile(r"^(?!.*__)(?!.*_$)[a-z][a-z0-9_]*$")
_FIELD_RE = _PACKAGE_RE
_MESSAGE_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_CONSTANT_RE = re.compile(r"^[A-Z]([A-Z0-9_]?[A-Z0-9]+)*$")

Value = Union[bool, int, float, str]


class UnknownTypeError(AgnoshmError, LookupError):
    """Raised when no type source knows a message type."""


class MessageDefinitionError(AgnoshmError, ValueError):
    """Raised when ``.msg`` text is malformed or contradicts a known definition."""


# --------------------------------------------------------------------------- description


@dataclass(frozen=True)
class FieldType:
    """The type of one field.

    :param base: a primitive name (:data:`PRIMITIVES`), ``"string"``,
        ``"wstring"`` or a message type name ``"pkg/msg/Name"``.
    :param string_bound: for strings and wstrings, the maximum length; 0 = unbounded.
    :param array_size: > 0 for a fixed-size array ``T[N]``.
    :param sequence: True for a sequence ``T[]`` or ``T[<=N]``.
    :param sequence_bound: for a bounded sequence, its maximum size; 0 = unbounded.
    """

    base: str
    string_bound: int = 0
    array_size: int = 0
    sequence: bool = False
    sequence_bound: int = 0

    def __post_init__(self) -> None:
        if not (self.base in PRIMITIVES or self.base in (STRING, WSTRING) or "/msg/" in self.base):
            raise ValueError(f"not a field type: {self.base!r}")
        if self.string_bound and self.base not in (STRING, WSTRING):
            raise ValueError(f"only strings have a bound, not {self.base!r}")
        if self.array_size and self.sequence:
            raise ValueError("a field is a fixed array or a sequence, not both")
        if self.sequence_bound and not self.sequence:
            raise ValueError("sequence_bound needs sequence=True")

    @property
    def is_primitive(self) -> bool:
        return self.base in PRIMITIVES

    @property
    def is_string(self) -> bool:
        """True for ``string`` and ``wstring`` (bounded or not)."""
        return self.base in (STRING, WSTRING)

    @property
    def is_message(self) -> bool:
        return "/msg/" in self.base

    @property
    def is_array(self) -> bool:
        return self.array_size > 0

    @property
    def is_sequence(self) -> bool:
        return self.sequence

    @property
    def element(self) -> FieldType:
        """The type of one element (the type itself when it is no array or sequence)."""
        return FieldType(self.base, self.string_bound)

    def __str__(self) -> str:
        """The ``.msg`` spelling: ``uint8[]``, ``string<=5[<=3]``, ``std_msgs/Header[2]``."""
        if self.is_message:
            text = self.base.replace("/msg/", "/")
        else:
            text = self.base + (f"<={self.string_bound}" if self.string_bound else "")
        if self.array_size:
            text += f"[{self.array_size}]"
        elif self.sequence:
            text += f"[<={self.sequence_bound}]" if self.sequence_bound else "[]"
        return text


_RCLPY_BASIC_NAMES = {"bool": "boolean", "byte": "octet", "char": "uint8", "float32": "float",
                      "float64": "double", "float128": "long double"}


def rclpy_type_string(ftype: FieldType) -> str:
    """``ftype`` spelled as rclpy's ``get_fields_and_field_types()`` spells it
    (rosidl_generator_py: ``double``, ``sequence<uint8>``, ``string<10>``, ``std_msgs/Header``)."""
    if ftype.is_message:
        base = ftype.base.replace("/msg/", "/")
    elif ftype.base in (STRING, WSTRING):
        base = ftype.base + (f"<{ftype.string_bound}>" if ftype.string_bound else "")
    else:
        base = _RCLPY_BASIC_NAMES.get(ftype.base, ftype.base)
    if ftype.is_array:
        return f"{base}[{ftype.array_size}]"
    if ftype.is_sequence:
        return f"sequence<{base}, {ftype.sequence_bound}>" if ftype.sequence_bound \
            else f"sequence<{base}>"
    return base


@dataclass(frozen=True)
class Field:
    """One field: its name, type and default value (``None`` when the definition gives none)."""

    name: str
    type: FieldType
    default: Any = None


@dataclass(frozen=True)
class Constant:
    """A constant of a message (``int8 STATUS_FIX=0``): a class attribute, not part of the layout."""

    name: str
    type: str
    value: Value


@dataclass(frozen=True)
class MessageDefinition:
    """A message type: ordered fields, constants and its RIHS01 hash.

    A message without fields has ``fields == ()``; its C struct still holds one
    ``uint8_t`` :data:`EMPTY_MEMBER` (see :mod:`agnoshm.msg.layout`).
    """

    type_name: str
    fields: tuple[Field, ...]
    constants: tuple[Constant, ...] = ()
    type_hash: str = ""
    source: str = ""

    @property
    def package(self) -> str:
        return self.type_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.type_name.rsplit("/", 1)[1]

    def field(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"{self.type_name} has no field {name!r} "
                       f"(fields: {', '.join(f.name for f in self.fields) or 'none'})")

    def nested_types(self) -> list[str]:
        """Message types used by the fields, in field order, without repeats."""
        return list(dict.fromkeys(f.type.base for f in self.fields if f.type.is_message))

    def to_msg(self) -> str:
        """This definition as ``.msg`` text (what ``rosidl translate`` reads)."""
        lines = [f"{c.type} {c.name}={_format_value(c.value, c.type)}" for c in self.constants]
        for field in self.fields:
            line = f"{field.type} {field.name}"
            if field.default is not None:
                line += " " + _format_value(field.default, field.type.base)
            lines.append(line)
        return "\n".join(lines) + "\n"


def _format_value(value: Any, base: str) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_value(v, base) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if base in (STRING, WSTRING):
        return '"' + str(value).replace('"', '\\"') + '"'
    return repr(value)


def normalize_type_name(name: str) -> str:
    """``"pkg/Name"`` or ``"pkg/msg/Name"`` → ``"pkg/msg/Name"``; anything else raises ValueError."""
    parts = name.split("/") if isinstance(name, str) else []
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or parts[1] != "msg" or not _PACKAGE_RE.match(parts[0]) \
            or not _MESSAGE_RE.match(parts[2]):
        raise ValueError(f"invalid message type name {name!r}: expected 'pkg/msg/Name' "
                         f"(package in lower_snake_case, message in UpperCamelCase)")
    return "/".join(parts)


# --------------------------------------------------------------------------- .msg parser

_INT_RANGES = {
    "byte": (0, 255), "char": (0, 255),
    **{f"int{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)},
    **{f"uint{b}": (0, 2 ** b - 1) for b in (8, 16, 32, 64)},
}
_MSG_PRIMITIVES = ("bool", "byte", "char", "int8", "uint8", "int16", "uint16", "int32",
                   "uint32", "int64", "uint64", "float32", "float64")
_COMPAT_TYPES = {"time": "builtin_interfaces/msg/Time", "duration": "builtin_interfaces/msg/Duration"}
_ARRAY_RE = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<bound><=)?(?P<size>[^\]]*)\]$")


class _LineError(ValueError):
    """A problem with one line; the parser adds where it is."""


def _parse_type(text: str, package: str) -> FieldType:
    array_size = sequence_bound = 0
    sequence = False
    match = _ARRAY_RE.match(text)
    if match:
        base, size = match["base"], match["size"]
        if match["bound"] or not size:
            sequence = True
            if match["bound"] or size:
                sequence_bound = _positive(size, f"sequence bound in {text!r}")
        else:
            array_size = _positive(size, f"array size in {text!r}")
    elif "[" in text or "]" in text:
        raise _LineError(f"bad array syntax {text!r}: use T[N], T[] or T[<=N]")
    else:
        base = text
    string_bound = 0
    if base.startswith(("string<=", "wstring<=")):
        base, _, bound = base.partition("<=")
        string_bound = _positive(bound, f"string bound in {text!r}")
    elif base in _COMPAT_TYPES:
        base = _COMPAT_TYPES[base]
    elif base not in _MSG_PRIMITIVES and base not in (STRING, WSTRING):
        parts = base.split("/")
        if len(parts) == 1:
            parts = [package, parts[0]]
        elif len(parts) == 3 and parts[1] == "msg":
            parts = [parts[0], parts[2]]
        if len(parts) != 2 or not _PACKAGE_RE.match(parts[0]) or not _MESSAGE_RE.match(parts[1]):
            raise _LineError(
                f"unknown field type {base!r}: expected a primitive ({', '.join(_MSG_PRIMITIVES)}), "
                f"string, wstring, string<=N, or a message type 'pkg/Name' / 'Name'")
        base = f"{parts[0]}/msg/{parts[1]}"
    return FieldType(base, string_bound, array_size, sequence, sequence_bound)


def _positive(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise _LineError(f"{what} must be an integer > 0")
    return value


def _parse_scalar(base: str, text: str, string_bound: int = 0) -> Value:
    if base == "bool":
        if text.lower() not in ("true", "false", "1", "0"):
            raise _LineError(f"bool value must be true/false/1/0, not {text!r}")
        return text.lower() in ("true", "1")
    if base in _INT_RANGES:
        try:
            value = int(text, 0)
        except ValueError:
            try:
                value = int(text)
            except ValueError:
                raise _LineError(f"{base} value must be an integer, not {text!r}") from None
        low, high = _INT_RANGES[base]
        if not low <= value <= high:
            raise _LineError(f"{base} value {value} is out of range [{low}, {high}]")
        return value
    if base in ("float32", "float64"):
        try:
            return float(text)
        except ValueError:
            raise _LineError(f"{base} value must be a number, not {text!r}") from None
    # string / wstring: optional outer quotes, escaped inner quotes
    for quote in ('"', "'"):
        if len(text) >= 2 and text[0] == quote and text[-1] == quote:
            text = text[1:-1]
            if re.search(rf"(?<!\\){quote}", text):
                raise _LineError(f"unescaped {quote} inside a string value")
            text = text.replace("\\" + quote, quote)
            break
    if string_bound and len(text) > string_bound:
        raise _LineError(f"string value {text!r} is longer than its bound {string_bound}")
    return text


def _split_array_value(text: str) -> list[str]:
    """Split ``[a, "b,c", 'd']`` into element texts (quotes kept)."""
    if not (text.startswith("[") and text.endswith("]")):
        raise _LineError(f"array default must be written [a, b, ...], not {text!r}")
    body, items, current, quote = text[1:-1], [], "", ""
    i = 0
    while i < len(body):
        char = body[i]
        if quote:
            current += char
            if char == "\\" and i + 1 < len(body):
                current += body[i + 1]
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote, current = char, current + char
        elif char == ",":
            items.append(current.strip())
            current = ""
        else:
            current += char
        i += 1
    if quote:
        raise _LineError(f"unterminated string in {text!r}")
    if current.strip() or items:
        items.append(current.strip())
    return items


def _parse_default(ftype: FieldType, text: str) -> Any:
    if ftype.is_message:
        raise _LineError("message fields cannot have default values")
    if not (ftype.is_array or ftype.is_sequence):
        return _parse_scalar(ftype.base, text, ftype.string_bound)
    items = _split_array_value(text)
    if ftype.is_array and len(items) != ftype.array_size:
        raise _LineError(f"default of {ftype} must have exactly {ftype.array_size} elements, "
                         f"not {len(items)}")
    if ftype.sequence_bound and len(items) > ftype.sequence_bound:
        raise _LineError(f"default of {ftype} must have at most {ftype.sequence_bound} elements")
    return tuple(_parse_scalar(ftype.base, item, ftype.string_bound) for item in items)


def parse_msg(text: str, type_name: str, *, source: str | None = None) -> MessageDefinition:
    """Parse ``.msg`` text into a :class:`MessageDefinition` (without its hash).

    :param type_name: the type being defined, ``"pkg/msg/Name"``; unqualified
        nested types resolve to its package.
    :param source: what to call the text in errors (a file path); default the type name.
    :raises MessageDefinitionError: naming the source, line number and reason.
    """
    type_name = normalize_type_name(type_name)
    package = type_name.split("/", 1)[0]
    where = source or type_name
    fields: list[Field] = []
    constants: list[Constant] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.replace("\t", " ").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            type_text, _, rest = line.partition(" ")
            rest = rest.strip()
            if not rest:
                raise _LineError("expected '<type> <name>' or '<type> <NAME>=<value>'")
            if "=" in rest:
                name, _, value = rest.partition("=")
                name, value = name.strip(), value.strip()
                if type_text not in _MSG_PRIMITIVES and type_text not in (STRING, WSTRING):
                    raise _LineError(f"constant {name} must have a primitive or string type, "
                                     f"not {type_text!r}")
                if not _CONSTANT_RE.match(name):
                    raise _LineError(f"invalid constant name {name!r}: use UPPER_CASE")
                if not value:
                    raise _LineError(f"constant {name} has no value")
                constant = Constant(name, type_text, _parse_scalar(type_text, value))
                if name in seen:
                    raise _LineError(f"duplicate name {name!r}")
                seen.add(name)
                constants.append(constant)
                continue
            name, _, default_text = rest.partition(" ")
            ftype = _parse_type(type_text, package)
            if not _FIELD_RE.match(name):
                raise _LineError(f"invalid field name {name!r}: use lower_snake_case "
                                 f"(a-z, 0-9, single underscores, not at the end)")
            if name in seen:
                raise _LineError(f"duplicate name {name!r}")
            seen.add(name)
            default_text = default_text.strip()
            default = _parse_default(ftype, default_text) if default_text else None
            fields.append(Field(name, ftype, default))
        except (_LineError, ValueError) as exc:
            raise MessageDefinitionError(
                f"{where}, line {number}: {exc}\n    {raw.strip()}") from None
    return MessageDefinition(type_name, tuple(fields), tuple(constants), source=source or "<text>")


# --------------------------------------------------------------------------- RIHS01

_TYPE_IDS = {
    "int8": 2, "uint8": 3, "int16": 4, "uint16": 5, "int32": 6, "uint32": 7,
    "int64": 8, "uint64": 9, "float32": 10, "float64": 11, "float128": 12,
    "char": 3,  # .msg char is IDL uint8 (rosidl_adapter), so ROS 2 hashes it as uint8
    "wchar": 14, "bool": 15, "byte": 16,
}


def _field_description(name: str, ftype: FieldType) -> dict:
    if ftype.is_message:
        type_id = 1
    elif ftype.is_string:
        type_id = {(STRING, False): 17, (WSTRING, False): 18,
                   (STRING, True): 21, (WSTRING, True): 22}[ftype.base, bool(ftype.string_bound)]
    else:
        type_id = _TYPE_IDS[ftype.base]
    if ftype.is_array:
        type_id += 48
    elif ftype.is_sequence:
        type_id += 96 if ftype.sequence_bound else 144
    return {
        "name": name,
        "type": {
            "type_id": type_id,
            "capacity": ftype.array_size or ftype.sequence_bound,
            "string_capacity": ftype.string_bound,
            "nested_type_name": ftype.base if ftype.is_message else "",
        },
    }


def _struct_description(definition: MessageDefinition) -> dict:
    fields = [(f.name, f.type) for f in definition.fields] or [(EMPTY_MEMBER, FieldType("uint8"))]
    return {"type_name": definition.type_name,
            "fields": [_field_description(name, ftype) for name, ftype in fields]}


# --------------------------------------------------------------------------- sources


#: The field defaults of the standard interface packages, which rosbags' stores
#: drop: ``(type, field) -> (value, first distro that has it)``. This is every
#: field default in the ``.msg`` files of ros2/common_interfaces,
#: ros2/rcl_interfaces, ros2/geometry2, ros2/rmw_dds_common,
#: ros2/unique_identifier_msgs and ros2/rosbag2 (branches humble to rolling).
#: NavSatStatus got its default in Jazzy.
STANDARD_DEFAULTS: dict[tuple[str, str], tuple[Value, str]] = {
    ("geometry_msgs/msg/Quaternion", "x"): (0.0, "humble"),
    ("geometry_msgs/msg/Quaternion", "y"): (0.0, "humble"),
    ("geometry_msgs/msg/Quaternion", "z"): (0.0, "humble"),
    ("geometry_msgs/msg/Quaternion", "w"): (1.0, "humble"),
    ("sensor_msgs/msg/NavSatStatus", "status"): (-2, "jazzy"),
    ("rcl_interfaces/msg/ParameterDescriptor", "read_only"): (False, "humble"),
    ("rcl_interfaces/msg/ParameterDescriptor", "dynamic_typing"): (False, "humble"),
    ("type_description_interfaces/msg/FieldType", "type_id"): (0, "jazzy"),
}


class _RosbagsSource:
    """Definitions from a rosbags type store, with :data:`STANDARD_DEFAULTS` applied."""

    def __init__(self, distro: str | None):
        try:
            from rosbags.typesys import Stores, get_typestore
        except ImportError as exc:
            raise ImportError(f"agnoshm takes the standard message types from rosbags, which is "
                              f"not importable ({exc}): pip install 'rosbags>=0.10'") from exc

        ros2 = [s for s in Stores if s.name.startswith("ROS2_")]
        wanted = (distro if distro is not None else os.environ.get("ROS_DISTRO", "")).strip().lower()
        store = next((s for s in ros2 if s.name == f"ROS2_{wanted.upper()}"), None)
        if store is None:
            if wanted and wanted != "rolling":
                warnings.warn(
                    f"ROS_DISTRO={wanted!r} has no rosbags type store (known: "
                    f"{', '.join(s.name[5:].lower() for s in ros2)}); using the newest, "
                    f"{ros2[-1].name[5:].lower()}. Upgrade rosbags (pip install -U rosbags) "
                    f"if {wanted} is newer.", stacklevel=4)
            store = ros2[-1]
        self.store_name = store.value
        self.typestore = get_typestore(store)
        self.distro = store.name[5:].lower()
        order = [s.name[5:].lower() for s in ros2]
        self._defaults = {key: value for key, (value, since) in STANDARD_DEFAULTS.items()
                          if since in order and order.index(since) <= order.index(self.distro)}

    def names(self) -> list[str]:
        return sorted(self.typestore.fielddefs)

    def get(self, name: str) -> MessageDefinition | None:
        entry = self.typestore.fielddefs.get(name)
        if entry is None:
            return None
        constants, fielddefs = entry
        fields = tuple(Field(fname, _from_rosbags_desc(desc), self._defaults.get((name, fname)))
                       for fname, desc in fielddefs)
        if len(fields) == 1 and fields[0].name == EMPTY_MEMBER:
            fields = ()
        return MessageDefinition(
            name, fields, tuple(Constant(n, t, v) for n, t, v in constants),
            source=f"rosbags:{self.store_name}")


def _from_rosbags_desc(desc: Any) -> FieldType:
    from rosbags.interfaces import Nodetype

    kind, rest = desc
    if kind == Nodetype.NAME:
        return FieldType(rest)
    if kind == Nodetype.BASE:
        base, bound = rest
        return FieldType(base, bound if base in (STRING, WSTRING) else 0)
    element, count = rest
    inner = _from_rosbags_desc(element)
    if kind == Nodetype.ARRAY:
        return dataclasses.replace(inner, array_size=count)
    return dataclasses.replace(inner, sequence=True, sequence_bound=count)


_IDL_PRIMITIVES = {
    "boolean": "bool", "octet": "byte", "float": "float32", "double": "float64",
    "long double": "float128", "wchar": "wchar",
    **{p: p for p in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")},
}


def _from_slot_type(slot: Any) -> FieldType:
    """A ``rosidl_parser.definition`` type (from an rclpy class's ``SLOT_TYPES``) → FieldType."""
    kind = type(slot).__name__
    if kind == "BasicType":
        if slot.typename not in _IDL_PRIMITIVES:
            raise TypeError(f"IDL type {slot.typename!r} has no agnoshm layout")
        return FieldType(_IDL_PRIMITIVES[slot.typename])
    if kind in ("UnboundedString", "BoundedString", "UnboundedWString", "BoundedWString"):
        return FieldType(WSTRING if "WString" in kind else STRING,
                         getattr(slot, "maximum_size", 0) if kind.startswith("Bounded") else 0)
    if kind == "NamespacedType":
        return FieldType("/".join(slot.namespaced_name()))
    inner = _from_slot_type(slot.value_type)
    if kind == "Array":
        return dataclasses.replace(inner, array_size=slot.size)
    if kind == "UnboundedSequence":
        return dataclasses.replace(inner, sequence=True)
    if kind == "BoundedSequence":
        return dataclasses.replace(inner, sequence=True, sequence_bound=slot.maximum_size)
    raise TypeError(f"unsupported IDL type {slot!r}")


def _is_message_class(obj: Any) -> bool:
    return isinstance(obj, type) and hasattr(obj, "SLOT_TYPES") \
        and hasattr(obj, "get_fields_and_field_types")


def _class_type_name(cls: type) -> str:
    package, namespace = cls.__module__.split(".")[:2]
    return f"{package}/{namespace}/{cls.__name__}"


def _from_message_class(cls: type) -> MessageDefinition:
    """Describe a rosidl_generator_py message class (rclpy)."""
    names = list(cls.get_fields_and_field_types())
    fields = []
    for name, slot in zip(names, cls.SLOT_TYPES):
        default = getattr(cls, f"{name.upper()}__DEFAULT", None)
        fields.append(Field(name, _from_slot_type(slot),
                            tuple(default) if isinstance(default, list) else default))
    constants = []
    for name, attr in vars(type(cls)).items():
        if isinstance(attr, property) and not name.endswith("__DEFAULT") and _CONSTANT_RE.match(name):
            value = getattr(cls, name)
            ctype = {bool: "bool", int: "int64", float: "float64", str: "string"}.get(type(value), "string")
            constants.append(Constant(name, ctype, value))  # .msg types are not kept by rclpy
    return MessageDefinition(_class_type_name(cls), tuple(fields), tuple(constants), source="rclpy")


def ros_message_class(name: str) -> type:
    """The rclpy (rosidl_generator_py) class of ``"pkg/msg/Name"``: ``Name`` from the
    module ``pkg.msg``, as ``rosidl_runtime_py.utilities.get_message`` finds it.

    :raises ImportError: the package ``pkg`` is not importable (not installed, or ROS 2
        not sourced).
    :raises AttributeError: ``pkg.msg`` has no message class ``Name``.
    """
    package, namespace, message = normalize_type_name(name).split("/")
    cls = getattr(importlib.import_module(f"{package}.{namespace}"), message, None)
    if not _is_message_class(cls):
        raise AttributeError(f"module {package}.{namespace} has no ROS 2 message class {message}")
    return cls


class _RclpySource:
    """Definitions from rclpy message classes, when ROS 2 is installed."""

    def __init__(self) -> None:
        import rclpy  # noqa: F401  (fails fast without ROS)

    def get(self, name: str) -> MessageDefinition | None:
        try:
            cls = ros_message_class(name)
        except (AttributeError, ImportError, ValueError):
            return None
        return _from_message_class(cls)


# --------------------------------------------------------------------------- registry


class TypeRegistry:
    """Resolves message type names to :class:`MessageDefinition` (with RIHS01 hash).

    :param distro: rosbags store to use (``"humble"``, ``"jazzy"`` ...); default
        ``ROS_DISTRO``, else the newest.
    :param use_rclpy: look types up in rclpy first when ``import rclpy`` works.
    """

    def __init__(self, distro: str | None = None, *, use_rclpy: bool = True):
        self._distro = distro
        self._rclpy: _RclpySource | None | bool = None if use_rclpy else False
        self._rosbags: _RosbagsSource | None = None
        self._user: dict[str, MessageDefinition] = {}
        self._builtin = {BYTES_TYPE_NAME: parse_msg(BYTES_DEFINITION, BYTES_TYPE_NAME,
                                                    source="agnoshm (built in)")}
        self._cache: dict[str, MessageDefinition] = {}
        self._lock = threading.RLock()

    # sources -------------------------------------------------------------

    @property
    def rosbags(self) -> _RosbagsSource:
        """The rosbags store in use (``.typestore``, ``.store_name``)."""
        if self._rosbags is None:
            self._rosbags = _RosbagsSource(self._distro)
        return self._rosbags

    def _rclpy_source(self) -> _RclpySource | None:
        if self._rclpy is None:
            try:
                self._rclpy = _RclpySource()
            except Exception:  # noqa: BLE001  (no ROS 2 here: the next sources serve)
                self._rclpy = False
        return self._rclpy or None

    def _raw(self, name: str) -> MessageDefinition | None:
        """The definition without hash, from the first source that knows ``name``."""
        found = self._builtin.get(name)
        if found is None:
            rclpy_source = self._rclpy_source()
            found = rclpy_source.get(name) if rclpy_source else None
        if found is None:
            found = self.rosbags.get(name)
        if found is None:
            found = self._user.get(name)
        return found

    # lookup --------------------------------------------------------------

    def get(self, msg_type: str | type | MessageDefinition) -> MessageDefinition:
        """The definition of ``msg_type``: a name, an rclpy message class or a definition.

        :raises UnknownTypeError: no source knows the type or one of its nested types.
        """
        if isinstance(msg_type, MessageDefinition):
            msg_type = msg_type.type_name
        if _is_message_class(msg_type):
            name = _class_type_name(msg_type)
            with self._lock:
                if name not in self._cache:
                    self._cache[name] = self._hashed(_from_message_class(msg_type))
                return self._cache[name]
        try:
            name = normalize_type_name(msg_type)
        except ValueError as exc:
            raise UnknownTypeError(str(exc)) from None
        with self._lock:
            if name not in self._cache:
                raw = self._raw(name)
                if raw is None:
                    raise UnknownTypeError(self._unknown_message(name))
                self._cache[name] = self._hashed(raw)
            return self._cache[name]

    def __contains__(self, msg_type: object) -> bool:
        try:
            self.get(msg_type)  # type: ignore[arg-type]
        except UnknownTypeError:
            return False
        return True

    def type_hash(self, msg_type: str | type) -> str:
        """The RIHS01 hash string (``"RIHS01_<64 hex>"``) of ``msg_type``."""
        return self.get(msg_type).type_hash

    def names(self) -> list[str]:
        """Every type name the rosbags store, the user registrations and agnoshm know."""
        return sorted(set(self.rosbags.names()) | set(self._user) | set(self._builtin))

    def _unknown_message(self, name: str, needed_by: str | None = None) -> str:
        sources = ["rosbags store " + self.rosbags.store_name]
        if self._rclpy_source():
            sources.insert(0, "rclpy")
        if self._user:
            sources.append(f"{len(self._user)} registered type(s)")
        similar = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.75)
        return (
            f"unknown message type {name!r}" + (f" (used by {needed_by})" if needed_by else "")
            + f"; looked in: {', '.join(sources)}. To fix: check the spelling ('pkg/msg/Name'"
            + (f"; did you mean {' or '.join(similar)}?" if similar else "")
            + "), register its definition with agnoshm.register_msg(text_or_path, "
            "type_name) or register_package(folder); or set ROS_DISTRO to the distro that "
            "defines it (or source ROS 2 so rclpy provides it).")

    def _hashed(self, definition: MessageDefinition) -> MessageDefinition:
        """``definition`` with its RIHS01 hash (resolving every nested type)."""
        structs: dict[str, dict] = {}
        pending = [definition]
        while pending:
            current = pending.pop()
            if current.type_name in structs:
                continue
            structs[current.type_name] = _struct_description(current)
            for nested in current.nested_types():
                if nested not in structs:
                    cached = self._cache.get(nested) or self._raw(nested)
                    if cached is None:
                        raise UnknownTypeError(self._unknown_message(nested, current.type_name))
                    pending.append(cached)
        top = definition.type_name
        description = {
            "type_description": structs[top],
            "referenced_type_descriptions": [structs[n] for n in sorted(structs) if n != top],
        }
        digest = hashlib.sha256(json.dumps(description).encode()).hexdigest()
        return dataclasses.replace(definition, type_hash=f"RIHS01_{digest}")

    # user definitions ----------------------------------------------------

    def register_msg(self, text_or_path: str | os.PathLike, type_name: str | None = None) -> str:
        """Register a ``.msg`` definition; return its type name.

        :param text_or_path: ``.msg`` text, or the path of a ``.msg`` file (a
            ``Path``, or a string naming an existing file).
        :param type_name: ``"pkg/msg/Name"``; for a file in ``<pkg>/msg/`` it
            defaults to ``<pkg>/msg/<file stem>``.
        :raises MessageDefinitionError: bad syntax (with file/type and line), or a
            different definition is already known under that name.
        """
        path = _as_path(text_or_path)
        if path is not None:
            text = path.read_text(encoding="utf-8")
            if type_name is None:
                package = path.parent.parent.name if path.parent.name == "msg" else ""
                if not package:
                    raise MessageDefinitionError(
                        f"cannot tell the type name of {path}: pass type_name='pkg/msg/Name' "
                        f"or put the file in <pkg>/msg/")
                type_name = f"{package}/msg/{path.stem}"
        else:
            text = str(text_or_path)
            if type_name is None:
                raise MessageDefinitionError("register_msg(text) needs type_name='pkg/msg/Name'")
        try:
            name = normalize_type_name(type_name)
        except ValueError as exc:
            raise MessageDefinitionError(str(exc)) from None
        definition = parse_msg(text, name, source=str(path) if path else None)
        self._add(definition)
        return name

    def register_package(self, folder: str | os.PathLike) -> list[str]:
        """Register every ``msg/*.msg`` of a package folder; return the type names.

        The package name is ``<name>`` of its ``package.xml`` if there is one,
        else the folder's name.
        """
        folder = Path(folder)
        msg_dir = folder / "msg"
        files = sorted(msg_dir.glob("*.msg"))
        if not files:
            raise MessageDefinitionError(f"{folder} has no msg/*.msg files")
        package = folder.resolve().name
        manifest = folder / "package.xml"
        if manifest.exists():
            match = re.search(r"<name>\s*([^<\s]+)\s*</name>", manifest.read_text(encoding="utf-8"))
            if match:
                package = match.group(1)
        definitions = [parse_msg(f.read_text(encoding="utf-8"), f"{package}/msg/{f.stem}",
                                 source=str(f)) for f in files]
        for definition in definitions:
            self._add(definition)
        return [d.type_name for d in definitions]

    def _add(self, definition: MessageDefinition) -> None:
        name = definition.type_name
        with self._lock:
            known = self._cache.get(name) or self._user.get(name) or self._raw(name)
            if known is not None:
                if _shape(known) != _shape(definition):
                    raise MessageDefinitionError(
                        f"{name} is already defined differently (by {known.source}):\n"
                        f"{known.to_msg()}--- new definition ({definition.source}):\n"
                        f"{definition.to_msg()}Choose another type name.")
                return
            self._user[name] = definition


def _shape(definition: MessageDefinition) -> tuple:
    """What must agree for two definitions to be the same type: what the hash covers,
    and the default values and constants, which the hash leaves out."""
    defaults = tuple((f.name, _comparable(f.default)) for f in definition.fields)
    constants = tuple((c.name, c.type, _comparable(c.value)) for c in definition.constants)
    return _struct_description(definition), defaults, constants


def _comparable(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _as_path(value: str | os.PathLike) -> Path | None:
    if isinstance(value, os.PathLike):
        return Path(value)
    if isinstance(value, str) and "\n" not in value and value.endswith(".msg") and Path(value).is_file():
        return Path(value)
    return None


# --------------------------------------------------------------------------- module API

_default: TypeRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> TypeRegistry:
    """The process-wide registry (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = TypeRegistry()
        return _default


def get_definition(msg_type: str | type) -> MessageDefinition:
    """:meth:`TypeRegistry.get` on the default registry."""
    return default_registry().get(msg_type)


def type_hash(msg_type: str | type) -> str:
    """:meth:`TypeRegistry.type_hash` on the default registry."""
    return default_registry().type_hash(msg_type)


def register_msg(text_or_path: str | os.PathLike, type_name: str | None = None) -> str:
    """:meth:`TypeRegistry.register_msg` on the default registry."""
    return default_registry().register_msg(text_or_path, type_name)


def register_package(folder: str | os.PathLike) -> list[str]:
    """:meth:`TypeRegistry.register_package` on the default registry."""
    return default_registry().register_package(folder)
