"""A fresh message's values: zeros, then the default values of its definition.

rosidl's C ``__init`` functions zero a struct and then write the ``.msg``
defaults, for the message itself, for the messages it nests and for every
element of a sequence of messages (``Sequence__init`` calls ``__init`` on each).
agnoshm does the same: ``borrow_loaned_message()`` starts a loan this way, and
message elements of ``alloc()`` and of an assigned array or sequence start as
fresh messages before the given values are written.  Primitive elements carry
no defaults in ROS 2 and are not initialized by ``alloc()`` (fill them).
"""

from __future__ import annotations

import ctypes

import numpy as np

from agnoshm.msg import layout as L
from agnoshm.msg.coerce import assign_structured

_needed: dict[tuple[str, str], bool] = {}
_rows: dict[tuple[str, str], np.ndarray | None] = {}


def needs_defaults(struct: L.StructLayout) -> bool:
    """True if a default value is anywhere in ``struct`` (nested messages and fixed arrays)."""
    key = (struct.type_name, struct.definition.type_hash)
    found = _needed.get(key)
    if found is None:
        found = False
        for field, spec in zip(() if struct.is_empty else struct.fields, struct.definition.fields):
            value = field.value.element if field.value.kind == L.ARRAY else field.value
            if spec.default is not None or (value.kind == L.MESSAGE and needs_defaults(value.struct)):
                found = True
                break
        _needed[key] = found
    return found


def apply_defaults(view) -> None:
    """Write the definition's default values into ``view`` (zeroed memory), also into nested
    messages and fixed arrays of them."""
    struct = view._layout
    if not needs_defaults(struct):
        return
    for field, spec in zip(struct.fields, struct.definition.fields):
        value = field.value
        if value.kind == L.MESSAGE:
            apply_defaults(getattr(view, field.name))
        elif value.kind == L.ARRAY and value.element.kind == L.MESSAGE:
            element = value.element
            for i in range(value.count):
                apply_defaults(view._child(element.struct.type_name,
                                           view._address + field.offset + i * element.size))
        elif spec.default is not None:
            setattr(view, field.name, spec.default)


def fresh_row(struct: L.StructLayout) -> np.ndarray | None:
    """One fresh element of pointer-free ``struct`` as a 1-element structured array,
    or None when a fresh element is all zeros."""
    key = (struct.type_name, struct.definition.type_hash)
    if key not in _rows:
        row = None
        if needs_defaults(struct):
            row = np.zeros(1, dtype=L.numpy_dtype(struct))
            assign_structured(row, default_values(struct), struct, struct.type_name)
        _rows[key] = row
    return _rows[key]


def default_values(struct: L.StructLayout) -> dict:
    """The fields of ``struct`` that a fresh message does not hold as zero, as a dict."""
    values = {}
    for field, spec in zip(() if struct.is_empty else struct.fields, struct.definition.fields):
        value = field.value
        if spec.default is not None:
            values[field.name] = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        elif value.kind == L.MESSAGE and needs_defaults(value.struct):
            values[field.name] = default_values(value.struct)
        elif value.kind == L.ARRAY and value.element.kind == L.MESSAGE \
                and needs_defaults(value.element.struct):
            values[field.name] = [default_values(value.element.struct)] * value.count
    return values


def initialize_messages(view, address: int, count: int, element: L.ValueLayout) -> None:
    """Make the ``count`` message elements at ``address`` fresh messages (zeros and defaults),
    whatever they held.  The caller has freed the strings and sequences they pointed to.
    """
    if element.kind != L.MESSAGE or not count:
        return
    struct = element.struct
    row = None if struct.holds_pointers else fresh_row(struct)
    if row is not None:  # the fresh element's bytes, then doubling copies of what is written
        size = element.size
        ctypes.memmove(address, row.ctypes.data, size)
        done = 1
        while done < count:
            more = min(done, count - done)
            ctypes.memmove(address + done * size, address, more * size)
            done += more
        return
    ctypes.memset(address, 0, count * element.size)
    if struct.holds_pointers and needs_defaults(struct):
        for i in range(count):
            apply_defaults(view._child(struct.type_name, address + i * element.size))
