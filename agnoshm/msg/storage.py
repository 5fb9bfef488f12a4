"""The storage of a message in its owner's pool: strings, sequences and their elements.

A view is a ``(owner, address)`` pair over a pool: ``owner`` is the publisher's
``Loan`` (writable) or the subscriber's ``Lease`` (read-only).  Strings and sequences
are ``{data, size, capacity}`` triples whose storage a write allocates in the owner's
pool (the heaphook behaviour), freeing what the field held before.  Arrays and sequences
of primitives are numpy arrays over the pool (read-only for received messages);
sequences of pointer-free messages structured numpy arrays; other arrays and sequences
tuples of element views.  Pointers read from a received message are checked against the
publisher's pool before use.
"""

from __future__ import annotations

import collections.abc
import ctypes
import struct

import numpy as np
from numpy.lib.recfunctions import structured_to_unstructured, unstructured_to_structured

from agnoshm.msg import defaults
from agnoshm.msg import layout as L
from agnoshm.msg.arrays import pool_array
from agnoshm.msg.checks import MessageCorruptedError, check_loan, check_range
from agnoshm.msg.coerce import (
    add_path, assign, assign_structured, check_sequence_length, float_rows, primitive_source,
)
from agnoshm.msg.primitives import TABLE

__all__ = ["TRIPLE", "WritableStrings", "allocate", "allocate_sequence", "clear_storage",
           "element_dtype", "free_elements", "read_elements", "read_string", "replace_storage",
           "set_triple", "triple", "write_elements", "write_string", "written_elements"]

TRIPLE = struct.Struct("=QQQ")


def triple(view, offset: int) -> tuple[int, int, int]:
    return TRIPLE.unpack_from(view._buf, view._address - view._base + offset)


def set_triple(view, offset: int, data: int, size: int, capacity: int) -> None:
    TRIPLE.pack_into(view._buf, view._address - view._base + offset, data, size, capacity)


def release_storage(view, offset: int) -> None:
    """Free what a string or sequence field of a loan points to (re-assignment)."""
    data = triple(view, offset)[0]
    if data:
        view._owner.free(data)
        set_triple(view, offset, 0, 0, 0)


def replace_storage(view, position: int, nbytes: int) -> int:
    """Allocate ``nbytes`` for the string or sequence whose triple is at buffer ``position``,
    then free what it pointed to; return the new address (the caller writes the triple).

    New before old: when the pool has no room, the field keeps its value, never a
    pointer to freed memory.
    """
    loan = view._owner
    address = loan.allocate(nbytes)
    old = TRIPLE.unpack_from(view._buf, position)[0]
    if old:
        loan.free(old)
    return address


def allocate(view, nbytes: int, *, zero: bool) -> int:
    address = view._owner.allocate(max(nbytes, 1))
    if zero:
        ctypes.memset(address, 0, nbytes)
    return address



def read_string(view, offset: int, wide: bool, where: str) -> str:
    data, size, _capacity = triple(view, offset)
    if not size:
        return ""
    unit = 2 if wide else 1
    nbytes = size * unit
    if not view._writable:
        check_range(view, data, nbytes + unit, where)
        start = data - view._base
        if any(view._buf[start + nbytes:start + nbytes + unit]):
            raise MessageCorruptedError(
                f"received {where} has no NUL after its {size} characters: the publisher "
                "wrote a corrupt string")
    start = data - view._base
    raw = view._buf[start:start + nbytes]
    return bytes(raw).decode("utf-16-le" if wide else "utf-8", errors="replace")


def write_string(view, offset: int, value, wide: bool, bound: int, where: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{where} takes a str, not {type(value).__name__} {value!r}")
    if bound and len(value) > bound:
        raise ValueError(f"{where}: {len(value)} characters exceed the bound of {bound} "
                         f"({value[:40]!r}...)")
    if wide:
        encoded, unit = value.encode("utf-16-le") + b"\0\0", 2
    else:
        encoded, unit = value.encode("utf-8") + b"\0", 1  # rosidl keeps a NUL after the text
    buf, base = view._buf, view._base
    position = view._address - base + offset
    nbytes = len(encoded)
    address = replace_storage(view, position, nbytes)
    start = address - base
    buf[start:start + nbytes] = encoded
    TRIPLE.pack_into(buf, position, address, nbytes // unit - 1, nbytes // unit)



def element_dtype(element: L.ValueLayout):
    if element.kind == L.PRIMITIVE:
        return np.dtype(TABLE[element.primitive].dtype)
    if element.kind == L.MESSAGE and not element.struct.holds_pointers:
        return L.numpy_dtype(element.struct)
    return None


def read_elements(view, address: int, count: int, element: L.ValueLayout, writable: bool,
                  view_class, where: str):
    """The elements at ``address``: a numpy array, or a tuple of views or strings."""
    nbytes = count * element.size
    if count and not writable:
        check_range(view, address, nbytes, where)
    dtype = element_dtype(element)
    if dtype is not None:
        return pool_array(address, nbytes, dtype, count, writable=writable, owner=view._owner)
    if element.kind in (L.STRING_KIND, L.WSTRING_KIND):
        if writable:
            return WritableStrings(view, address, count, element, where)
        wide = element.kind == L.WSTRING_KIND
        shim = _ElementCursor(view, address)
        return tuple(read_string(shim.at(address + i * element.size), 0, wide, where)
                     for i in range(count))
    cls = view_class(element.struct.type_name, writable)
    return tuple(cls(view._owner, address + i * element.size, view._buf, view._base, view._end)
                 for i in range(count))


class _ElementCursor:
    """A view-like handle on one element (for string elements, which have no view class)."""

    __slots__ = ("_owner", "_address", "_buf", "_base", "_end", "_writable", "_type_name")

    def __init__(self, view, address: int):
        self._owner, self._buf, self._base, self._end = view._owner, view._buf, view._base, view._end
        self._writable, self._type_name = view._writable, view._type_name
        self._address = address

    def at(self, address: int) -> "_ElementCursor":
        self._address = address
        return self


class WritableStrings(collections.abc.Sequence):
    """The strings of a loan's string array or sequence: ``strings[i]`` reads one,
    ``strings[i] = "text"`` writes it into the pool (freeing the old text).  Its length is
    fixed; give a sequence another length with ``msg.alloc(field, n)`` or by assignment.
    """

    __slots__ = ("_view", "_address", "_count", "_element", "_where")

    def __init__(self, view, address: int, count: int, element: L.ValueLayout, where: str):
        self._view, self._address, self._count = view, address, count
        self._element, self._where = element, where

    def __len__(self) -> int:
        return self._count

    def _cursor(self, index: int) -> tuple["_ElementCursor", int]:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"{self._where} indices must be ints, not {type(index).__name__}")
        position = index + self._count if index < 0 else index
        if not 0 <= position < self._count:
            raise IndexError(f"{self._where}[{index}]: index out of range for "
                             f"{self._count} elements")
        return _ElementCursor(self._view, self._address + position * self._element.size), position

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        check_loan(self._view)
        cursor, position = self._cursor(index)
        return read_string(cursor, 0, self._element.kind == L.WSTRING_KIND,
                            f"{self._where}[{position}]")

    def __setitem__(self, index, value) -> None:
        check_loan(self._view)
        cursor, position = self._cursor(index)
        write_string(cursor, 0, value, self._element.kind == L.WSTRING_KIND,
                      self._element.string_bound, f"{self._where}[{position}]")

    def __eq__(self, other) -> bool:
        if isinstance(other, collections.abc.Sequence) and not isinstance(other, (str, bytes)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return repr(list(self))


def write_elements(view, address: int, values, element: L.ValueLayout, view_class, where: str) -> None:
    """Write ``values`` into the (zeroed, allocated) elements at ``address``."""
    dtype = element_dtype(element)
    count = len(values)
    if dtype is not None:
        target = pool_array(address, count * element.size, dtype, count, writable=True,
                            owner=view._owner)
        fill_array(target, values, element, where)
        return
    if element.kind in (L.STRING_KIND, L.WSTRING_KIND):
        cursor = _ElementCursor(view, address)
        for i, value in enumerate(values):
            write_string(cursor.at(address + i * element.size), 0, value,
                          element.kind == L.WSTRING_KIND, element.string_bound, f"{where}[{i}]")
        return
    defaults.initialize_messages(view, address, count, element)
    cls = view_class(element.struct.type_name, True)
    for i, value in enumerate(values):
        try:
            assign(cls(view._owner, address + i * element.size, view._buf, view._base, view._end),
                   value)
        except (TypeError, ValueError, AttributeError) as err:
            add_path(err, f"{where}[{i}]")
            raise



def fill_array(target: np.ndarray, values, element: L.ValueLayout, where: str) -> None:
    if target.dtype.names:  # pointer-free messages
        if isinstance(values, np.ndarray) and values.dtype == target.dtype:
            target[...] = values
            return
        if float_rows(values, target.dtype):  # an (n, 3) array into Point[], (n, 7) into Pose[]
            with np.errstate(over="ignore"):  # checked below, with the row named
                rows = unstructured_to_structured(values, dtype=target.dtype)
            overflow = np.isinf(structured_to_unstructured(rows, dtype=np.float64)) & \
                np.isfinite(values)  # float32 members
            if overflow.any():
                row, column = (int(i[0]) for i in np.nonzero(overflow))
                raise ValueError(f"{where}[{row}]: {values[row, column].item()} (column {column}) "
                                 f"is out of range for float32")
            target[...] = rows
            return
        # fields a row does not give keep a fresh message's values (zeros and defaults)
        defaults.initialize_messages(None, target.ctypes.data, target.size, element)
        for i, value in enumerate(values):
            assign_structured(target[i:i + 1], value, element.struct, f"{where}[{i}]")
        return
    source = primitive_source(values, element, where)
    if source.size != target.size:
        raise ValueError(f"{where}: {source.size} values for {target.size} elements")
    target[...] = source



def written_elements(view, values, element: L.ValueLayout, view_class, where: str) -> int:
    """New pool storage holding ``values`` written as string or message elements; its address.

    All or nothing: a bad element, or a pool that runs out of room, frees everything
    written so far and raises, so the field being assigned keeps its old value.
    """
    count = len(values)
    # message elements are made fresh by write_elements; string triples must start zero
    address = allocate(view, count * element.size, zero=element.kind != L.MESSAGE)
    try:
        write_elements(view, address, values, element, view_class, where)
    except BaseException:
        if element.holds_pointers:
            free_elements(view, address, count, element)
        view._owner.free(address)
        raise
    return address



def allocate_sequence(view, field: L.FieldLayout, count: int, where: str) -> int:
    """Give sequence ``field`` fresh storage for ``count`` elements; return its address.

    The new storage is allocated before the old is freed, so values read from the old
    elements (``msg.f64_seq = msg.f64_seq``) are still intact while they are copied.
    """
    value = field.value
    check_sequence_length(field, count, where)
    address = allocate(view, count * value.element.size, zero=value.element.holds_pointers) \
        if count else 0
    if value.element.holds_pointers:
        data, size, _ = triple(view, field.offset)
        free_elements(view, data, size, value.element)
    release_storage(view, field.offset)
    if count:
        set_triple(view, field.offset, address, count, count)
    return address



def clear_storage(view) -> None:
    """Free every string and sequence a loaned view (and what it nests) points to."""
    struct_layout = view._layout
    for field in () if struct_layout.is_empty else struct_layout.fields:
        value = field.value
        if not value.holds_pointers:
            continue
        if value.kind == L.MESSAGE:
            clear_storage(view._child(value.struct.type_name, view._address + field.offset))
        elif value.kind == L.ARRAY:
            free_elements(view, view._address + field.offset, value.count, value.element)
        else:
            if value.kind == L.SEQUENCE and value.element.holds_pointers:
                data, size, _ = triple(view, field.offset)
                free_elements(view, data, size, value.element)
            release_storage(view, field.offset)


def free_elements(view, address: int, count: int, element: L.ValueLayout) -> None:
    """Free the storage held by ``count`` elements at ``address`` (strings or messages)."""
    if element.kind == L.MESSAGE:
        for i in range(count):
            clear_storage(view._child(element.struct.type_name, address + i * element.size))
    else:
        cursor = _ElementCursor(view, address)
        for i in range(count):
            release_storage(cursor.at(address + i * element.size), 0)

