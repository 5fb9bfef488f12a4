"""Type source: rosbags type stores (pure Python, every standard interface package).

The store of ``ROS_DISTRO`` (``Stores.ROS2_<DISTRO>``), else the newest ROS 2 store that
the installed rosbags ships.  The stores keep no field defaults; the few the standard
packages have are in :data:`STANDARD_DEFAULTS`.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

from agnoshm.msg.definition import (
    EMPTY_MEMBER, STRING, WSTRING, Constant, Field, FieldType, MessageDefinition, Value,
)

__all__ = ["STANDARD_DEFAULTS", "RosbagsSource"]


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


class RosbagsSource:
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

