"""Copies of views out: to dicts, rosbags and rclpy messages, and their repr."""

from __future__ import annotations

import array
from collections.abc import Sequence

import numpy as np

from agnoshm.msg import layout as L
from agnoshm.msg.coerce import message_fields
from agnoshm.msg.definition import EMPTY_MEMBER
from agnoshm.msg.primitives import TABLE
from agnoshm.msg.rclpy_source import ros_message_class as _import_ros_class
from agnoshm.msg.types import default_registry


def _to_rosbags_bytes(value, layout: L.ValueLayout):
    if layout.kind == L.PRIMITIVE and layout.primitive == "byte":
        return value - 256 if value > 127 else value
    return value


def to_python(value):
    """Views → dicts, numpy arrays → lists, tuples → lists (recursively)."""
    if hasattr(value, "_layout"):
        return to_dict(value)
    if isinstance(value, np.ndarray):
        if value.dtype.names:
            return [to_python(row) for row in value]
        return value.tolist()
    if isinstance(value, np.void):
        if value.dtype.names == (EMPTY_MEMBER,):  # an empty message's placeholder is no field
            return {}
        return {name: to_python(value[name]) for name in value.dtype.names}
    if isinstance(value, (tuple, list, Sequence)) and not isinstance(value, (str, bytes)):
        return [to_python(v) for v in value]  # also a loan's writable strings
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_dict(view) -> dict:
    """The message as plain Python: dicts, lists, str, int, float, bool."""
    return {f.name: to_python(getattr(view, f.name)) for f in message_fields(view)}


def to_rosbags(view, typestore=None):
    """The message as a rosbags message object (a copy), for CDR or bag writing.

    A type the rosbags store does not know (one registered with ``register_msg``) is
    registered in it first, with its nested types.  ``byte`` values follow rosbags'
    convention (int8: 200 is -56, the same bits).
    """
    if typestore is None:
        typestore = default_registry().rosbags.typestore
    cls = _rosbags_class(typestore, view._type_name)
    kwargs = {}
    for field in message_fields(view):
        kwargs[field.name] = _to_rosbags_value(getattr(view, field.name), field.value, typestore)
    return cls(**kwargs)


def _rosbags_class(typestore, type_name: str):
    cls = typestore.types.get(type_name)
    if cls is None:
        _register_in_typestore(typestore, type_name)
        cls = typestore.types[type_name]
    return cls


def _register_in_typestore(typestore, type_name: str) -> None:
    """Add ``type_name`` and the nested types the rosbags store lacks, from agnoshm's definitions."""
    from rosbags.interfaces import Nodetype

    def desc(ftype):
        base = (Nodetype.NAME, ftype.base) if ftype.is_message else \
            (Nodetype.BASE, (ftype.base, ftype.string_bound))
        if ftype.is_array:
            return (Nodetype.ARRAY, (base, ftype.array_size))
        if ftype.is_sequence:
            return (Nodetype.SEQUENCE, (base, ftype.sequence_bound))
        return base

    registry = default_registry()
    types = {}
    pending = [type_name]
    while pending:
        name = pending.pop()
        if name in types or name in typestore.fielddefs:
            continue
        definition = registry.get(name)
        fields = [(f.name, desc(f.type)) for f in definition.fields] \
            or [(EMPTY_MEMBER, (Nodetype.BASE, ("uint8", 0)))]
        types[name] = ([(c.name, c.type, c.value) for c in definition.constants], fields)
        pending.extend(definition.nested_types())
    typestore.register(types)


def _rosbags_array(value, primitive: str) -> np.ndarray:
    array = np.array(value, dtype=TABLE[primitive].dtype)
    return array.view(np.int8) if primitive == "byte" else array


def _to_rosbags_value(value, layout: L.ValueLayout, typestore):
    kind = layout.kind
    if kind == L.MESSAGE:
        return to_rosbags(value, typestore)
    if kind in (L.ARRAY, L.SEQUENCE):
        element = layout.element
        if element.kind == L.PRIMITIVE:
            return _rosbags_array(value, element.primitive)
        if element.kind == L.MESSAGE:
            if isinstance(value, np.ndarray):  # pointer-free structured array
                return [_structured_to_rosbags(row, element.struct, typestore) for row in value]
            return [to_rosbags(v, typestore) for v in value]
        return list(value)
    return _to_rosbags_bytes(value, layout)


def _structured_to_rosbags(row, struct: L.StructLayout, typestore):
    kwargs = {}
    for field in struct.fields:
        item = row[field.name]
        value = field.value
        if value.kind == L.MESSAGE:
            kwargs[field.name] = _structured_to_rosbags(item, value.struct, typestore)
        elif value.kind == L.ARRAY and value.element.kind == L.MESSAGE:
            kwargs[field.name] = [_structured_to_rosbags(r, value.element.struct, typestore)
                                  for r in item]
        elif value.kind == L.ARRAY:
            kwargs[field.name] = _rosbags_array(item, value.element.primitive)
        else:
            kwargs[field.name] = _to_rosbags_bytes(item.item() if isinstance(item, np.generic)
                                                   else item, value)
    return _rosbags_class(typestore, struct.type_name)(**kwargs)


def to_ros(view, message_class=None):
    """The message as an rclpy message object (a copy); needs ROS 2's Python packages.

    Values take the types rclpy's generated classes check for: a ``byte`` is a 1-byte
    ``bytes`` (a list of them for arrays and sequences), numeric sequences are
    ``array.array`` and fixed numeric arrays numpy arrays (each one copy of the pool's bytes).
    ``message_class(type_name)`` gives the class to build for each message (default: rclpy's,
    :func:`ros_message_class`).
    """
    return _ros_message(view, view._layout, message_class or ros_message_class)


_ros_classes: dict[str, type] = {}


def ros_message_class(type_name: str) -> type:
    """The rclpy class of ``"pkg/msg/Name"`` (``Name`` from the module ``pkg.msg``).

    :raises ImportError: ROS 2's Python package ``pkg`` is not importable.
    """
    cls = _ros_classes.get(type_name)
    if cls is None:
        package = type_name.partition("/")[0]
        try:
            cls = _import_ros_class(type_name)
        except ImportError as err:
            raise ImportError(
                f"{type_name} has no rclpy class here: ROS 2's Python package {package} is not "
                f"importable ({err}). Source your ROS 2 setup.bash, or pip install "
                f"ros-{package.replace('_', '-')} beside the ROS 2 wheels (to_dict() and "
                "to_rosbags() need neither)") from err
        except AttributeError as err:
            raise ImportError(f"{type_name} has no rclpy class: {err} (agnoshm's own types have "
                              "none; to_dict() and to_rosbags() work for every type)") from err
        _ros_classes[type_name] = cls
    return cls


def ros_value(value, layout: L.ValueLayout, message_class):
    """A field's value (as a view returns it) in the Python type rclpy's message classes
    take; ``message_class(type_name)`` gives the class for nested messages."""
    kind = layout.kind
    if kind == L.PRIMITIVE:
        return _ros_primitive(value, layout.primitive)
    if kind == L.MESSAGE:
        return _ros_message(value, layout.struct, message_class)
    if kind not in (L.ARRAY, L.SEQUENCE):
        return value  # str
    element = layout.element
    if element.kind == L.MESSAGE:
        return [_ros_message(v, element.struct, message_class) for v in value]
    if element.kind != L.PRIMITIVE:
        return list(value)  # strings
    primitive = element.primitive
    if primitive == "byte":
        data = np.asarray(value, dtype=np.uint8).tobytes()
        return [data[i:i + 1] for i in range(len(data))]
    typecode = TABLE[primitive].array_typecode  # rclpy's array.array code
    if typecode is None:  # bool, wchar, float128: rclpy keeps lists
        return [_ros_primitive(v, primitive) for v in np.asarray(value).tolist()]
    if kind == L.ARRAY:
        return np.array(value, dtype=TABLE[primitive].dtype)
    sequence = array.array(typecode)
    sequence.frombytes(memoryview(np.ascontiguousarray(value)).cast("B"))  # one copy
    return sequence


def _ros_primitive(value, primitive: str):
    if isinstance(value, np.generic):
        value = value.item()
    if primitive == "byte":
        return bytes((value,))
    if primitive == "wchar":
        return chr(value)
    return value


def _ros_message(value, struct: L.StructLayout, message_class):
    """A view or a pointer-free structured-array row → an instance of the rclpy class."""
    msg = message_class(struct.type_name)()
    row = isinstance(value, np.void)
    for field in () if struct.is_empty else struct.fields:
        item = value[field.name] if row else getattr(value, field.name)
        setattr(msg, field.name, ros_value(item, field.value, message_class))
    return msg


#: elements shown of a sequence or a non-numeric array before "..." (rclpy shows all)
REPR_ITEMS = 32


def message_repr(view) -> str:
    """``pkg.msg.Name(field=value, ...)``, like rclpy's repr: fixed numeric arrays as numpy
    shows them, sequences of numbers, bools, strings and messages as lists (long ones cut
    after :data:`REPR_ITEMS` elements)."""
    parts = [f"{field.name}={_repr_value(getattr(view, field.name), field.value)}"
             for field in message_fields(view)]
    return f"{view._type_name.replace('/', '.')}({', '.join(parts)})"


def _repr_value(value, layout: L.ValueLayout) -> str:
    if layout.kind == L.MESSAGE:
        return message_repr(value)
    if layout.kind not in (L.ARRAY, L.SEQUENCE):
        return repr(value)
    element = layout.element
    if layout.kind == L.ARRAY and element.kind == L.PRIMITIVE \
            and element.primitive not in ("bool", "byte"):
        return repr(value)  # rclpy: a numpy array
    items = value[:REPR_ITEMS]
    if element.kind == L.MESSAGE:
        if isinstance(items, np.ndarray):  # pointer-free messages
            texts = [_structured_repr(row, element.struct) for row in items]
        else:
            texts = [message_repr(v) for v in items]
    elif isinstance(items, np.ndarray):
        texts = [repr(v) for v in items.tolist()]
    else:
        texts = [repr(v) for v in items]
    return "[" + ", ".join(texts) + (", ...]" if len(value) > REPR_ITEMS else "]")


def _structured_repr(row, struct: L.StructLayout) -> str:
    parts = []
    for field in () if struct.is_empty else struct.fields:
        item = row[field.name]
        value = field.value
        if value.kind == L.MESSAGE:
            text = _structured_repr(item, value.struct)
        elif value.kind == L.ARRAY and value.element.kind == L.MESSAGE:
            text = "[" + ", ".join(_structured_repr(r, value.element.struct) for r in item) + "]"
        elif value.kind == L.ARRAY:
            text = _repr_value(item, value)
        else:
            text = repr(item.item() if isinstance(item, np.generic) else item)
        parts.append(f"{field.name}={text}")
    return f"{struct.type_name.replace('/', '.')}({', '.join(parts)})"
