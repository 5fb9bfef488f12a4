"""Value coercion: what a field accepts, checked and converted before the pool is touched.

Primitives (:func:`coerce_primitive`), flat sources of primitive elements
(:func:`primitive_source`), sequences of strings and lengths, and whole messages: a dict,
another view, a rosbags or rclpy message, or any object with the fields as attributes
(:func:`assign` into a loaned view, :func:`assign_structured` into a pointer-free row).
"""

from __future__ import annotations

import math

import numpy as np

from agnoshm.errors import TypeMismatchError, UnknownFieldError
from agnoshm.msg import layout as L
from agnoshm.msg.definition import EMPTY_MEMBER, normalize_type_name
from agnoshm.msg.primitives import FLOAT32_MAX, INT_RANGES, TABLE
from agnoshm.msg.rclpy_source import class_type_name, is_message_class

__all__ = ["OCTETS", "add_path", "assign", "assign_structured", "check_message_type",
           "check_sequence_elements", "check_sequence_length", "check_sequence_value",
           "coerce_primitive", "float_rows", "message_fields", "message_type_name",
           "primitive_source", "short_repr"]


def message_fields(view):
    """The fields of a view a user sees (none for a message without fields)."""
    return view._layout.fields if not view._layout.is_empty else ()


def coerce_primitive(primitive: str, value, where: str):
    """Check ``value`` for a ``primitive`` field; return it as Python bool/int/float.

    :raises TypeError: a value of the wrong kind.
    :raises ValueError: an integer or float32 out of range.
    """
    if primitive == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where} takes a bool, not {type(value).__name__} {value!r}")
        return bool(value)
    if primitive in INT_RANGES:
        if primitive == "byte" and isinstance(value, (bytes, bytearray)) and len(value) == 1:
            value = value[0]  # rclpy's octet: a 1-byte bytes
        elif primitive == "wchar" and isinstance(value, str) and len(value) == 1:
            value = ord(value)  # rclpy's wchar: a 1-character str
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{where} takes an int ({primitive}), not {type(value).__name__} {value!r}")
        low, high = INT_RANGES[primitive]
        if not low <= value <= high:
            raise ValueError(f"{where}: {value} is out of range for {primitive} ({low}..{high})")
        return int(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where} takes a float ({primitive}), not {type(value).__name__} {value!r}")
    value = float(value)
    if primitive == "float32" and math.isfinite(value) and abs(value) > FLOAT32_MAX:
        raise ValueError(f"{where}: {value} is out of range for float32")
    return value



def add_path(err: Exception, where: str) -> None:
    """Start the message of ``err`` (a bad value met inside a nested message) with the outer
    field ``where``, so that it names the whole path (``All.named_seq[2]: Named.id ...``)."""
    if err.args and isinstance(err.args[0], str) and not err.args[0].startswith(where):
        err.args = (f"{where}: {err.args[0]}",) + err.args[1:]



def check_sequence_value(values, where: str) -> None:
    """An array or sequence field takes a sized collection of elements, never a str.

    :raises TypeError: for a str (it would be split into characters), or a value without a length.
    """
    if isinstance(values, str) or not hasattr(values, "__len__"):
        raise TypeError(f"{where} takes a sequence (list, tuple, numpy array), not "
                        f"{type(values).__name__} {values!r:.60}")


def check_sequence_elements(values, element: L.ValueLayout, where: str):
    """Check every element of a sequence or array of strings up front, so that a bad one
    leaves the field as it was; return the strings as a list (a snapshot: they may be
    the field's own, about to be freed).

    :raises TypeError: a str (not a sequence), a value without a length, a non-str element.
    :raises ValueError: an element longer than its bound.
    """
    check_sequence_value(values, where)
    if element.kind in (L.STRING_KIND, L.WSTRING_KIND):
        bound = element.string_bound
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise TypeError(f"{where}[{i}] takes a str, not {type(value).__name__} {value!r:.60}")
            if bound and len(value) > bound:
                raise ValueError(f"{where}[{i}]: {len(value)} characters exceed the bound of "
                                 f"{bound} ({value[:40]!r}...)")
        return list(values)
    return values


_ONE_BYTE_STRINGS = np.dtype("S1")
OCTETS = ("byte", "char", "uint8")  # the element types a bytes value fills, one byte each


def primitive_source(values, element: L.ValueLayout, where: str) -> np.ndarray:
    """``values`` for primitive elements as a flat numpy array, checked for kind and range
    (before any storage is touched).

    :raises TypeError: a str, a value without a length, or elements of the wrong kind.
    :raises ValueError: an element out of range for its type (integers, float32).
    """
    if isinstance(values, memoryview) and values.format not in ("B", "b", "c"):
        values = np.asarray(values)  # a typed buffer: its elements, not its bytes
    if isinstance(values, (bytes, bytearray, memoryview)):
        if element.primitive not in OCTETS:
            raise TypeError(
                f"{where} takes {type(values).__name__} only for byte, char or uint8 elements, "
                f"not {element.primitive}: for raw {element.primitive} data pass "
                f"np.frombuffer(data, dtype=np.{np.dtype(TABLE[element.primitive].dtype).name})")
        source = np.frombuffer(values, dtype=np.uint8)
    elif isinstance(values, np.ndarray):
        source = values.reshape(-1)  # an image's (h, w, 3) array: its elements in C order
    else:
        check_sequence_value(values, where)
        source = np.asarray(values)
        if source.ndim != 1:
            raise TypeError(f"{where} takes a flat sequence of {element.primitive}, not nested "
                            f"{type(values).__name__} {values!r:.60}")
    primitive = element.primitive
    target = np.dtype(TABLE[primitive].dtype)
    if primitive == "byte" and source.dtype == _ONE_BYTE_STRINGS and (
            isinstance(values, np.ndarray) or all(len(v) == 1 for v in values)):
        source = source.view(np.uint8)  # rclpy's octets: 1-byte bytes objects
    elif source.dtype.kind in "fOSU" and primitive in INT_RANGES \
            and not isinstance(values, np.ndarray):
        # Python ints past int64 (uint64 values) make numpy pick float64 or object: check them
        # one by one instead, exactly
        source = np.array([coerce_primitive(primitive, v, f"{where}[{i}]")
                           for i, v in enumerate(values)], dtype=target)
    if source.size and source.dtype != target:
        if primitive == "bool":
            if source.dtype.kind != "b":
                raise TypeError(f"{where} takes bools, not dtype {source.dtype}")
        elif primitive in INT_RANGES:
            if source.dtype.kind not in "iub":
                raise TypeError(f"{where} takes ints ({primitive}), not dtype {source.dtype}")
            low, high = INT_RANGES[primitive]
            if source.min() < low or source.max() > high:
                bad = int(np.flatnonzero((source < low) | (source > high))[0])
                raise ValueError(f"{where}[{bad}]: {source[bad].item()} is out of range for "
                                 f"{primitive} ({low}..{high})")
        elif source.dtype.kind not in "iuf":
            raise TypeError(f"{where} takes floats ({primitive}), not dtype {source.dtype}")
        elif primitive == "float32" and source.dtype.kind == "f":
            too_big = np.isfinite(source) & (np.abs(source) > FLOAT32_MAX)
            if too_big.any():
                bad = int(np.flatnonzero(too_big)[0])
                raise ValueError(f"{where}[{bad}]: {source[bad].item()} is out of range for "
                                 f"float32 (|x| <= {FLOAT32_MAX:.7g}, or inf/nan)")
    return source.astype(target, copy=False)



def _float_leaves(dtype: np.dtype) -> int:
    """How many float members a structured dtype has in all, or 0 if any member is not a
    float (or is an array)."""
    count = 0
    for name in dtype.names:
        member = dtype.fields[name][0]
        if member.names:
            inner = _float_leaves(member)
            if not inner:
                return 0
            count += inner
        elif member.kind == "f" and not member.shape:
            count += 1
        else:
            return 0
    return count


def float_rows(values, dtype: np.dtype) -> bool:
    """True for a plain 2-D numeric array whose rows give every member of an all-float
    message, in field order."""
    return isinstance(values, np.ndarray) and values.dtype.names is None and values.ndim == 2 \
        and values.dtype.kind in "iuf" and values.shape[1] == _float_leaves(dtype) > 0



def check_sequence_length(field: L.FieldLayout, count: int, where: str) -> None:
    """:raises ValueError: for a length that is not a non-negative int, or past the bound."""
    bound = field.value.bound
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
        raise ValueError(f"{where}: the length must be a non-negative int, not {count!r}")
    if bound and count > bound:
        raise ValueError(f"{where}: {count} elements exceed the bound of {bound}")



def assign(view, value) -> None:
    """Copy ``value`` into the loaned ``view``: a dict, another view, a rosbags or rclpy
    message, or any object with the fields as attributes.

    :raises UnknownFieldError: (an ``AttributeError``) for a dict key that is not a field.
    :raises TypeError / ValueError: for a field value of the wrong kind or range.
    """
    if isinstance(value, np.void) and value.dtype.names:
        value = _row_dict(value)  # one element of a structured array
    if isinstance(value, dict):
        names = {f.name for f in message_fields(view)}
        for key, item in value.items():
            if key not in names:
                raise UnknownFieldError(
                    f"{view._type_name} has no field {key!r} (fields: {', '.join(sorted(names)) or 'none'});"
                    f" cannot set it to {short_repr(item)}")
            setattr(view, key, item)
        return
    if value is None or isinstance(value, _NOT_MESSAGES):
        raise TypeError(f"{view._type_name} takes a message (a dict, a view, a rosbags or rclpy "
                        f"message), not {type(value).__name__} {short_repr(value)}")
    check_message_type(value, view._type_name, view._type_name)
    from_rosbags = _is_rosbags(value)
    for field in message_fields(view):
        try:
            item = getattr(value, field.name)
        except AttributeError:
            raise TypeError(f"cannot copy {type(value).__name__} into {view._type_name}: it has no "
                            f"field {field.name!r}") from None
        if from_rosbags:
            item = _from_rosbags_bytes(item, field.value)
        setattr(view, field.name, item)


def message_type_name(value) -> str | None:
    """The ROS type name of a view, rosbags message or rclpy message; None for anything
    else (dicts and plain objects are copied by field name)."""
    name = getattr(type(value), "_type_name", None)  # an agnoshm view
    if isinstance(name, str) and hasattr(value, "_layout"):
        return name
    name = getattr(type(value), "__msgtype__", None) or getattr(value, "__msgtype__", None)
    if isinstance(name, str):  # rosbags
        try:
            return normalize_type_name(name)
        except ValueError:
            return None
    if is_message_class(type(value)):  # rclpy
        return class_type_name(type(value))
    return None


def check_message_type(value, expected: str, where: str) -> None:
    """:raises TypeMismatchError: if ``value`` is a message of another type than ``expected``
    (rclpy refuses it too), naming both."""
    found = message_type_name(value)
    if found is not None and found != expected:
        prefix = "" if where == expected else f"{where}: "
        raise TypeMismatchError(f"{prefix}expected a {expected} message, got a {found} "
                                f"({type(value).__name__}); pass a dict of its fields to "
                                f"convert it on purpose")


_NOT_MESSAGES = (bool, int, float, complex, str, bytes, bytearray, memoryview, list, tuple, set,
                 np.ndarray, np.generic)


def _row_dict(row: np.void) -> dict:
    """A structured-array element as a dict of its fields (an empty message's placeholder dropped)."""
    return {name: row[name] for name in row.dtype.names if name != EMPTY_MEMBER}


def _is_rosbags(value) -> bool:
    return isinstance(getattr(type(value), "__msgtype__", None), str) or \
        isinstance(getattr(value, "__msgtype__", None), str)


# rosbags keeps a .msg ``byte`` as int8 (its ROS 1 meaning: -128..127, int8 arrays); in ROS 2 it
# is an octet (0..255), which agnoshm stores as uint8.  The bits are the same: reinterpret them.


def _from_rosbags_bytes(item, layout: L.ValueLayout):
    if layout.kind == L.PRIMITIVE and layout.primitive == "byte":
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool) and -128 <= item < 0:
            return int(item) + 256
    elif layout.kind in (L.ARRAY, L.SEQUENCE) and layout.element.kind == L.PRIMITIVE \
            and layout.element.primitive == "byte":
        if isinstance(item, np.ndarray) and item.dtype == np.int8:
            return item.view(np.uint8)
        if isinstance(item, (list, tuple)):
            return [v + 256 if isinstance(v, (int, np.integer)) and -128 <= v < 0 else v
                    for v in item]
    return item


def assign_structured(target: np.ndarray, value, struct: L.StructLayout, where: str) -> None:
    """Write one pointer-free message (dict, view, rosbags or other object) into a one-element
    structured array, checking each field as a view's setter does; fields a dict does not
    give are left as they are.

    :raises UnknownFieldError: (an ``AttributeError``) for a dict key that is not a field.
    :raises TypeError / ValueError: for a field value of the wrong kind or range.
    """
    fields = () if struct.is_empty else struct.fields
    if isinstance(value, np.void) and value.dtype.names:
        value = _row_dict(value)
    mapping = isinstance(value, dict)
    if mapping:
        names = {f.name for f in fields}
        for key, item in value.items():
            if key not in names:
                raise UnknownFieldError(
                    f"{where} ({struct.type_name}) has no field {key!r} (fields: "
                    f"{', '.join(sorted(names)) or 'none'}); cannot set it to {short_repr(item)}")
    if not mapping and (value is None or isinstance(value, _NOT_MESSAGES)):
        raise TypeError(f"{where} takes a {struct.type_name} (a dict, a view, a rosbags or rclpy "
                        f"message), not {type(value).__name__} {short_repr(value)}")
    if not mapping:
        check_message_type(value, struct.type_name, where)
    from_rosbags = not mapping and _is_rosbags(value)
    for field in fields:
        name = field.name
        if mapping:
            if name not in value:
                continue
            item = value[name]
        else:
            try:
                item = getattr(value, name)
            except AttributeError:
                raise TypeError(f"cannot copy {type(value).__name__} into {where} "
                                f"({struct.type_name}): it has no field {name!r}") from None
            if from_rosbags:
                item = _from_rosbags_bytes(item, field.value)
        inner = f"{where}.{name}"
        kind = field.value.kind
        if kind == L.PRIMITIVE:
            target[name] = coerce_primitive(field.value.primitive, item, inner)
        elif kind == L.MESSAGE:
            assign_structured(target[name], item, field.value.struct, inner)
        else:  # a fixed array of primitives or pointer-free messages
            element = field.value.element
            count = field.value.count
            if element.kind == L.PRIMITIVE:
                source = primitive_source(item, element, inner)
                if source.size != count:
                    raise ValueError(f"{inner} is a fixed array of {count}, got {source.size} values")
                target[name] = source.reshape(target[name].shape)
            else:
                check_sequence_value(item, inner)
                if len(item) != count:
                    raise ValueError(f"{inner} is a fixed array of {count}, got {len(item)} values")
                rows = target[name][0]
                for i, row in enumerate(item):
                    assign_structured(rows[i:i + 1], row, element.struct, f"{inner}[{i}]")



def short_repr(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

