"""Type source: rclpy message classes (rosidl_generator_py), when ROS 2 is installed.

``Name`` comes from the module ``pkg.msg`` (:func:`ros_message_class`, what
``rosidl_runtime_py.utilities.get_message`` does; that package is not on PyPI), described
from ``get_fields_and_field_types()`` and ``SLOT_TYPES``.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from agnoshm.msg.definition import (
    CONSTANT_RE, STRING, WSTRING, Constant, Field, FieldType, MessageDefinition,
    normalize_type_name,
)
from agnoshm.msg.primitives import FROM_IDL

__all__ = ["RclpySource", "class_type_name", "from_message_class", "is_message_class",
           "ros_message_class"]

def _from_slot_type(slot: Any) -> FieldType:
    """A ``rosidl_parser.definition`` type (from an rclpy class's ``SLOT_TYPES``) → FieldType."""
    kind = type(slot).__name__
    if kind == "BasicType":
        if slot.typename not in FROM_IDL:
            raise TypeError(f"IDL type {slot.typename!r} has no agnoshm layout")
        return FieldType(FROM_IDL[slot.typename])
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


def is_message_class(obj: Any) -> bool:
    return isinstance(obj, type) and hasattr(obj, "SLOT_TYPES") \
        and hasattr(obj, "get_fields_and_field_types")


def class_type_name(cls: type) -> str:
    package, namespace = cls.__module__.split(".")[:2]
    return f"{package}/{namespace}/{cls.__name__}"


def from_message_class(cls: type) -> MessageDefinition:
    """Describe a rosidl_generator_py message class (rclpy)."""
    names = list(cls.get_fields_and_field_types())
    fields = []
    for name, slot in zip(names, cls.SLOT_TYPES):
        default = getattr(cls, f"{name.upper()}__DEFAULT", None)
        fields.append(Field(name, _from_slot_type(slot),
                            tuple(default) if isinstance(default, list) else default))
    constants = []
    for name, attr in vars(type(cls)).items():
        if isinstance(attr, property) and not name.endswith("__DEFAULT") and CONSTANT_RE.match(name):
            value = getattr(cls, name)
            ctype = {bool: "bool", int: "int64", float: "float64", str: "string"}.get(type(value), "string")
            constants.append(Constant(name, ctype, value))  # .msg types are not kept by rclpy
    return MessageDefinition(class_type_name(cls), tuple(fields), tuple(constants), source="rclpy")


def ros_message_class(name: str) -> type:
    """The rclpy (rosidl_generator_py) class of ``"pkg/msg/Name"``: ``Name`` from the
    module ``pkg.msg``, as ``rosidl_runtime_py.utilities.get_message`` finds it.

    :raises ImportError: the package ``pkg`` is not importable (not installed, or ROS 2
        not sourced).
    :raises AttributeError: ``pkg.msg`` has no message class ``Name``.
    """
    package, namespace, message = normalize_type_name(name).split("/")
    cls = getattr(importlib.import_module(f"{package}.{namespace}"), message, None)
    if not is_message_class(cls):
        raise AttributeError(f"module {package}.{namespace} has no ROS 2 message class {message}")
    return cls


class RclpySource:
    """Definitions from rclpy message classes, when ROS 2 is installed."""

    def __init__(self) -> None:
        import rclpy  # noqa: F401  (fails fast without ROS)

    def get(self, name: str) -> MessageDefinition | None:
        try:
            cls = ros_message_class(name)
        except (AttributeError, ImportError, ValueError):
            return None
        return from_message_class(cls)

