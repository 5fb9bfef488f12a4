""".msg text -> :class:`~agnoshm.msg.definition.MessageDefinition` (without its hash).

Parsed here, following the rules of ``rosidl_adapter`` (the parser ROS 2 itself uses),
because rosbags' ``.msg`` parser has no ``wstring``, drops default values and accepts
malformed lines.
"""

from __future__ import annotations

import re
from typing import Any

from agnoshm.msg.definition import (
    CONSTANT_RE, FIELD_RE, MESSAGE_RE, PACKAGE_RE, STRING, WSTRING, Constant, Field, FieldType,
    MessageDefinition, MessageDefinitionError, Value, normalize_type_name,
)
from agnoshm.msg.primitives import INT_RANGES, MSG_PRIMITIVES

__all__ = ["parse_msg"]

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
    elif base not in MSG_PRIMITIVES and base not in (STRING, WSTRING):
        parts = base.split("/")
        if len(parts) == 3 and parts[1] == "srv":  # a service's message (agnoshm's envelopes)
            try:
                return FieldType(normalize_type_name(base), string_bound, array_size, sequence,
                                 sequence_bound)
            except ValueError as exc:
                raise _LineError(str(exc)) from None
        if len(parts) == 1:
            parts = [package, parts[0]]
        elif len(parts) == 3 and parts[1] == "msg":
            parts = [parts[0], parts[2]]
        if len(parts) != 2 or not PACKAGE_RE.match(parts[0]) or not MESSAGE_RE.match(parts[1]):
            raise _LineError(
                f"unknown field type {base!r}: expected a primitive ({', '.join(MSG_PRIMITIVES)}), "
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
    if base in INT_RANGES:
        try:
            value = int(text, 0)
        except ValueError:
            try:
                value = int(text)
            except ValueError:
                raise _LineError(f"{base} value must be an integer, not {text!r}") from None
        low, high = INT_RANGES[base]
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
                if type_text not in MSG_PRIMITIVES and type_text not in (STRING, WSTRING):
                    raise _LineError(f"constant {name} must have a primitive or string type, "
                                     f"not {type_text!r}")
                if not CONSTANT_RE.match(name):
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
            if not FIELD_RE.match(name):
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

