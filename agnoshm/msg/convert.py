"""Copying values into loaned views, and views out to dicts, rosbags and rclpy messages."""

from __future__ import annotations

import dataclasses

import numpy as np

from agnoshm.msg import layout as L


def _fields(view):
    return view._layout.fields if not view._layout.is_empty else ()


def assign(view, value) -> None:
    """Copy ``value`` into the loaned ``view``: a dict, another view, a rosbags or rclpy
    message, or any object with the fields as attributes.

    :raises AttributeError: for a dict key that is not a field.
    :raises TypeError / ValueError: for a field value of the wrong kind or range.
    """
    if isinstance(value, dict):
        names = {f.name for f in _fields(view)}
        for key, item in value.items():
            if key not in names:
                raise AttributeError(
                    f"{view._type_name} has no field {key!r} (fields: {', '.join(sorted(names)) or 'none'});"
                    f" cannot set it to {_short(item)}")
            setattr(view, key, item)
        return
    for field in _fields(view):
        try:
            item = getattr(value, field.name)
        except AttributeError:
            raise TypeError(f"cannot copy {type(value).__name__} into {view._type_name}: it has no "
                            f"field {field.name!r}") from None
        setattr(view, field.name, item)


def assign_structured(target: np.ndarray, value, where: str) -> None:
    """Write one pointer-free message (dict, view or object) into a one-element structured array."""
    for name in target.dtype.names:
        item = value[name] if isinstance(value, dict) else getattr(value, name)
        if target.dtype[name].names:
            assign_structured(target[name], item, f"{where}.{name}")
        else:
            target[name] = np.asarray(item) if not hasattr(item, "_layout") else item
    if isinstance(value, dict):
        unknown = set(value) - set(target.dtype.names)
        if unknown:
            raise AttributeError(f"{where} has no field(s) {sorted(unknown)}")


def to_python(value):
    """Views → dicts, numpy arrays → lists, tuples → lists (recursively)."""
    if hasattr(value, "_layout"):
        return to_dict(value)
    if isinstance(value, np.ndarray):
        if value.dtype.names:
            return [{name: to_python(row[name]) for name in value.dtype.names} for row in value]
        return value.tolist()
    if isinstance(value, np.void):
        return {name: to_python(value[name]) for name in value.dtype.names}
    if isinstance(value, (tuple, list)):
        return [to_python(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_dict(view) -> dict:
    """The message as plain Python: dicts, lists, str, int, float, bool."""
    return {f.name: to_python(getattr(view, f.name)) for f in _fields(view)}


def to_rosbags(view, typestore=None):
    """The message as a rosbags message object (a copy), for CDR or bag writing."""
    if typestore is None:
        from agnoshm.msg.types import default_registry

        typestore = default_registry().rosbags.typestore
    cls = typestore.types[view._type_name]
    kwargs = {}
    for field in _fields(view):
        kwargs[field.name] = _to_rosbags_value(getattr(view, field.name), field.value, typestore)
    return cls(**kwargs)


def _to_rosbags_value(value, layout: L.ValueLayout, typestore):
    kind = layout.kind
    if kind == L.MESSAGE:
        return to_rosbags(value, typestore)
    if kind in (L.ARRAY, L.SEQUENCE):
        element = layout.element
        if element.kind == L.PRIMITIVE:
            return np.array(value, dtype=L.PRIMITIVE_C_TYPES[element.primitive][2])
        if element.kind == L.MESSAGE:
            if isinstance(value, np.ndarray):  # pointer-free structured array
                cls = typestore.types[element.struct.type_name]
                return [_structured_to_rosbags(row, element.struct, typestore) for row in value] \
                    if cls else []
            return [to_rosbags(v, typestore) for v in value]
        return list(value)
    return value


def _structured_to_rosbags(row, struct: L.StructLayout, typestore):
    kwargs = {}
    for field in struct.fields:
        item = row[field.name]
        if field.value.kind == L.MESSAGE:
            kwargs[field.name] = _structured_to_rosbags(item, field.value.struct, typestore)
        elif field.value.kind == L.ARRAY:
            kwargs[field.name] = np.array(item)
        else:
            kwargs[field.name] = item.item() if isinstance(item, np.generic) else item
    return typestore.types[struct.type_name](**kwargs)


def to_ros(view):
    """The message as an rclpy message object (a copy); needs ROS 2's Python packages."""
    try:
        from rosidl_runtime_py.set_message import set_message_fields
        from rosidl_runtime_py.utilities import get_message
    except ImportError as err:
        raise ImportError("to_ros() needs ROS 2 (rclpy and rosidl_runtime_py): source your ROS 2 "
                          "setup.bash, or use to_dict() / to_rosbags()") from err
    msg = get_message(view._type_name)()
    set_message_fields(msg, to_dict(view))
    return msg


def message_repr(view) -> str:
    """``pkg.msg.Name(field=value, ...)``, like rclpy's repr."""
    parts = []
    for field in _fields(view):
        value = getattr(view, field.name)
        if hasattr(value, "_layout"):
            text = message_repr(value)
        elif isinstance(value, tuple):
            text = "[" + ", ".join(message_repr(v) if hasattr(v, "_layout") else repr(v)
                                   for v in value[:8]) + (", ...]" if len(value) > 8 else "]")
        elif isinstance(value, np.ndarray):
            text = np.array2string(value, threshold=16, edgeitems=3)
            text = f"array({text}, dtype={value.dtype})" if not value.dtype.names else text
        else:
            text = repr(value)
        parts.append(f"{field.name}={text}")
    return f"{view._type_name.replace('/', '.')}({', '.join(parts)})"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def from_dataclass(value) -> dict:
    """A rosbags message (a dataclass) as a dict of its fields."""
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)
            if f.name != "__msgtype__"}
