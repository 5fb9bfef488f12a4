"""The definition model: a message type as fields, constants and its RIHS01 hash.

Every type source (:mod:`~agnoshm.msg.rclpy_source`, :mod:`~agnoshm.msg.rosbags_source`,
:mod:`~agnoshm.msg.user_source`, :mod:`~agnoshm.msg.bytes`) gives a
:class:`MessageDefinition`; :mod:`~agnoshm.msg.types` resolves names to them.  A type is
named ``"pkg/msg/Name"`` (``"pkg/Name"`` is accepted and normalized).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Union

from agnoshm.errors import AgnoshmError
from agnoshm.msg.primitives import PRIMITIVES, TABLE

__all__ = [
    "PRIMITIVES", "STRING", "WSTRING", "EMPTY_MEMBER", "FieldType", "Field", "Constant",
    "MessageDefinition", "UnknownTypeError", "MessageDefinitionError", "Value",
    "normalize_type_name", "rclpy_type_string",
]

STRING = "string"
WSTRING = "wstring"
#: The member rosidl adds to a message without fields (one ``uint8_t``).
EMPTY_MEMBER = "structure_needs_at_least_one_member"

PACKAGE_RE = re.compile(r"^(?!.*__)(?!.*_$)[a-z][a-z0-9_]*$")
FIELD_RE = PACKAGE_RE
MESSAGE_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
CONSTANT_RE = re.compile(r"^[A-Z]([A-Z0-9_]?[A-Z0-9]+)*$")
#: The messages of a service ``pkg/srv/Name``: ``Name_Request``, ``Name_Response``,
#: ``Name_Event`` (rosidl's), and agnoshm's envelopes (:mod:`agnoshm.msg.srv`).
SERVICE_PART_RE = re.compile(r"^[A-Z][A-Za-z0-9]*_[A-Z][A-Za-z0-9]*$")

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
        if not (self.base in PRIMITIVES or self.base in (STRING, WSTRING) or _is_type_name(self.base)):
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
        return _is_type_name(self.base)

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


def rclpy_type_string(ftype: FieldType) -> str:
    """``ftype`` spelled as rclpy's ``get_fields_and_field_types()`` spells it
    (rosidl_generator_py: ``double``, ``sequence<uint8>``, ``string<10>``, ``std_msgs/Header``)."""
    if ftype.is_message:
        base = ftype.base.replace("/msg/", "/")
    elif ftype.base in (STRING, WSTRING):
        base = ftype.base + (f"<{ftype.string_bound}>" if ftype.string_bound else "")
    else:
        base = TABLE[ftype.base].idl
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


def _is_type_name(base: str) -> bool:
    return "/msg/" in base or "/srv/" in base


def normalize_type_name(name: str) -> str:
    """``"pkg/Name"`` or ``"pkg/msg/Name"`` → ``"pkg/msg/Name"``; a service's message
    ``"pkg/srv/Name_Request"`` (``_Response``, ``_Event`` ...) stays as it is; anything else
    raises ValueError."""
    parts = name.split("/") if isinstance(name, str) else []
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) == 3 and parts[1] == "srv" and PACKAGE_RE.match(parts[0]) \
            and SERVICE_PART_RE.match(parts[2]):
        return name
    if len(parts) != 3 or parts[1] != "msg" or not PACKAGE_RE.match(parts[0]) \
            or not MESSAGE_RE.match(parts[2]):
        raise ValueError(f"invalid message type name {name!r}: expected 'pkg/msg/Name' "
                         f"(package in lower_snake_case, message in UpperCamelCase)")
    return "/".join(parts)
