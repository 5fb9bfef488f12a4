"""The RIHS01 type hash, computed as ``rosidl_generator_type_description`` does.

sha256 of the JSON type description: fields with type id, capacity, string capacity and
nested type name; referenced types sorted by name; no default values, no constants.  As in
ROS 2, a ``.msg`` ``char`` is hashed as ``uint8`` (``rosidl_adapter`` translates it to IDL
``uint8``) and ``byte`` as ``octet`` (the type ids are in :mod:`~agnoshm.msg.primitives`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from agnoshm.msg.definition import EMPTY_MEMBER, STRING, WSTRING, FieldType, MessageDefinition
from agnoshm.msg.primitives import TABLE

__all__ = ["rihs01", "struct_description"]

def _field_description(name: str, ftype: FieldType) -> dict:
    if ftype.is_message:
        type_id = 1
    elif ftype.is_string:
        type_id = {(STRING, False): 17, (WSTRING, False): 18,
                   (STRING, True): 21, (WSTRING, True): 22}[ftype.base, bool(ftype.string_bound)]
    else:
        type_id = TABLE[ftype.base].type_id
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


def struct_description(definition: MessageDefinition) -> dict:
    fields = [(f.name, f.type) for f in definition.fields] or [(EMPTY_MEMBER, FieldType("uint8"))]
    return {"type_name": definition.type_name,
            "fields": [_field_description(name, ftype) for name, ftype in fields]}



def rihs01(definition: MessageDefinition, resolve: Callable[[str, str], MessageDefinition]) -> str:
    """The RIHS01 hash string (``"RIHS01_<64 hex>"``) of ``definition``;
    ``resolve(nested_name, needed_by)`` gives each nested type's definition (or raises)."""
    structs: dict[str, dict] = {}
    pending = [definition]
    while pending:
        current = pending.pop()
        if current.type_name in structs:
            continue
        structs[current.type_name] = struct_description(current)
        for nested in current.nested_types():
            if nested not in structs:
                pending.append(resolve(nested, current.type_name))
    top = definition.type_name
    description = {
        "type_description": structs[top],
        "referenced_type_descriptions": [structs[n] for n in sorted(structs) if n != top],
    }
    return "RIHS01_" + hashlib.sha256(json.dumps(description).encode()).hexdigest()
