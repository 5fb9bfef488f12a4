"""Field accessors of message views: one getter (and, for loans, one setter) per field.

A view is a ``(owner, address)`` pair over a pool: ``owner`` is the publisher's
``Loan`` (writable) or the subscriber's ``Lease`` (read-only).  Accessors read
and write the C struct of :mod:`agnoshm.msg.layout` in place:

* primitives: ``struct.unpack_from``/``pack_into`` on the pool's memoryview,
  with range and type checks on writes;
* strings and sequences: ``{data, size, capacity}`` triples whose storage a
  write allocates in the owner's pool (the heaphook behaviour), freeing what
  the field held before;
* arrays and sequences of primitives: numpy arrays over the pool, read-only
  for received messages;  sequences of pointer-free messages: structured
  numpy arrays; other arrays and sequences: tuples of element views.

Every numpy array handed out keeps its owner alive (a ctypes array over the
bytes carries it), so a received message stays referenced, and its bytes
unchanged, while any array derived from it lives.  Pointers read from a
received message are checked against the publisher's pool before use.
"""

from __future__ import annotations

import collections.abc
import ctypes
import math
import struct

import numpy as np
from numpy.lib.recfunctions import structured_to_unstructured, unstructured_to_structured

from agnoshm.errors import MessageInvalidatedError
from agnoshm.msg import defaults
from agnoshm.msg import layout as L
from agnoshm.transport.receive import BATCHED_RELEASE_MAX_BYTES

_TRIPLE = struct.Struct("=QQQ")
_FLOAT32_MAX = 3.4028234663852886e38
_LONGDOUBLE = np.dtype(np.longdouble)  # float128 fields

#: .msg primitive -> struct format (float128 goes through numpy)
_FORMATS = {"bool": "?", "byte": "B", "char": "B", "int8": "b", "uint8": "B", "int16": "h",
            "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q",
            "float32": "f", "float64": "d", "wchar": "H"}
_INT_RANGES = {"byte": (0, 0xFF), "char": (0, 0xFF), "int8": (-0x80, 0x7F), "uint8": (0, 0xFF),
               "int16": (-0x8000, 0x7FFF), "uint16": (0, 0xFFFF), "wchar": (0, 0xFFFF),
               "int32": (-0x80000000, 0x7FFFFFFF), "uint32": (0, 0xFFFFFFFF),
               "int64": (-(1 << 63), (1 << 63) - 1), "uint64": (0, (1 << 64) - 1)}


class MessageCorruptedError(MessageInvalidatedError):
    """Raised when a received message points outside its publisher's pool."""


class _PoolBytes:
    """Hands ``[address, address + nbytes)`` to numpy (``__array_interface__``).

    The array's ``base`` is this object, which holds the message's owner: any
    array derived from it keeps the message referenced.  numpy refuses to make
    an array over read-only interface data writable, so a received array can
    never be turned into a write that faults.
    """

    __slots__ = ("__array_interface__", "owner")


def pool_array(address: int, nbytes: int, dtype, count: int, *, writable: bool, owner) -> np.ndarray:
    """A numpy array over ``[address, address + nbytes)`` that keeps ``owner`` alive.

    A writable one is registered with ``owner`` (the loan), which makes it read-only
    when the message is published.
    """
    if count == 0:
        array = np.empty(0, dtype=dtype)
        array.flags.writeable = writable
        return array
    holder = _PoolBytes()
    holder.owner = owner
    if nbytes > BATCHED_RELEASE_MAX_BYTES and not writable:
        owner.release_at_once = True  # a big frame: its release must not wait for a batch
    if dtype.names:  # structured: numpy builds it from the bytes with its own layout
        holder.__array_interface__ = {"data": (address, not writable), "shape": (nbytes,),
                                      "typestr": "|u1", "version": 3}
        array = np.asarray(holder).view(dtype)
    else:
        holder.__array_interface__ = {"data": (address, not writable), "shape": (count,),
                                      "typestr": dtype.str, "version": 3}
        array = np.asarray(holder)
    if writable:
        owner.track(array)  # read-only once the message is published
    return array


# -- checks shared by the accessors ------------------------------------------------


def check_loan(view) -> None:
    loan = view._owner
    if not loan.valid:
        raise MessageInvalidatedError(
            f"this loaned {view._type_name} was published and may not be used any more: borrow a "
            "new one with borrow_loaned_message()")
    if loan.port.runtime.closed:
        raise MessageInvalidatedError(
            f"agnoshm was shut down: this loaned {view._type_name}'s pool is gone")


def check_received(view) -> None:
    if view._owner.port.runtime.closed:
        raise MessageInvalidatedError(
            f"agnoshm was shut down: the pool of this received {view._type_name} is unmapped here; "
            "copy what you need before agnoshm.shutdown()")


def _check_range(view, address: int, nbytes: int, where: str) -> None:
    if address < view._base or address + nbytes > view._end:
        raise MessageCorruptedError(
            f"received {where} points at 0x{address:x}+{nbytes}, outside its publisher's pool "
            f"0x{view._base:x}..0x{view._end:x}: the publisher wrote a corrupt message")


def _triple(view, offset: int) -> tuple[int, int, int]:
    return _TRIPLE.unpack_from(view._buf, view._address - view._base + offset)


def _set_triple(view, offset: int, data: int, size: int, capacity: int) -> None:
    _TRIPLE.pack_into(view._buf, view._address - view._base + offset, data, size, capacity)


def _release_storage(view, offset: int) -> None:
    """Free what a string or sequence field of a loan points to (re-assignment)."""
    data = _triple(view, offset)[0]
    if data:
        view._owner.free(data)
        _set_triple(view, offset, 0, 0, 0)


def _replace_storage(view, position: int, nbytes: int) -> int:
    """Allocate ``nbytes`` for the string or sequence whose triple is at buffer ``position``,
    then free what it pointed to; return the new address (the caller writes the triple).

    New before old: when the pool has no room, the field keeps its value, never a
    pointer to freed memory.
    """
    loan = view._owner
    address = loan.allocate(nbytes)
    old = _TRIPLE.unpack_from(view._buf, position)[0]
    if old:
        loan.free(old)
    return address


def _allocate(view, nbytes: int, *, zero: bool) -> int:
    address = view._owner.allocate(max(nbytes, 1))
    if zero:
        ctypes.memset(address, 0, nbytes)
    return address


# -- primitives -----------------------------------------------------------------------


def coerce_primitive(primitive: str, value, where: str):
    """Check ``value`` for a ``primitive`` field; return it as Python bool/int/float.

    :raises TypeError: a value of the wrong kind.
    :raises ValueError: an integer or float32 out of range.
    """
    if primitive == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where} takes a bool, not {type(value).__name__} {value!r}")
        return bool(value)
    if primitive in _INT_RANGES:
        if primitive == "byte" and isinstance(value, (bytes, bytearray)) and len(value) == 1:
            value = value[0]  # rclpy's octet: a 1-byte bytes
        elif primitive == "wchar" and isinstance(value, str) and len(value) == 1:
            value = ord(value)  # rclpy's wchar: a 1-character str
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{where} takes an int ({primitive}), not {type(value).__name__} {value!r}")
        low, high = _INT_RANGES[primitive]
        if not low <= value <= high:
            raise ValueError(f"{where}: {value} is out of range for {primitive} ({low}..{high})")
        return int(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where} takes a float ({primitive}), not {type(value).__name__} {value!r}")
    value = float(value)
    if primitive == "float32" and math.isfinite(value) and abs(value) > _FLOAT32_MAX:
        raise ValueError(f"{where}: {value} is out of range for float32")
    return value


def _primitive_property(type_name: str, field: L.FieldLayout, writable: bool) -> property:
    offset = field.offset
    primitive = field.value.primitive
    where = f"{type_name}.{field.name}"
    if primitive == "float128":
        def get(view):
            array = pool_array(view._address + offset, 16, _LONGDOUBLE, 1, writable=False,
                               owner=view._owner)
            return float(array[0])

        def put(view, value):
            check_loan(view)
            pool_array(view._address + offset, 16, _LONGDOUBLE, 1, writable=True,
                       owner=view._owner)[0] = coerce_primitive(primitive, value, where)
    else:
        fmt = struct.Struct("=" + _FORMATS[primitive])
        unpack, pack = fmt.unpack_from, fmt.pack_into

        # A value of exactly the Python type the field takes, in range, is written as it
        # is; anything else goes through coerce_primitive's checks and conversions.
        if primitive in _INT_RANGES:
            exact, (low, high) = int, _INT_RANGES[primitive]
        elif primitive == "float64":
            exact, low, high = float, -math.inf, math.inf
        elif primitive == "float32":
            exact, low, high = float, -_FLOAT32_MAX, _FLOAT32_MAX
        else:
            exact, low, high = bool, False, True

        def get(view):
            return unpack(view._buf, view._address - view._base + offset)[0]

        def put(view, value):
            loan = view._owner
            if not loan.valid or loan.port.runtime.closed:
                check_loan(view)
            if type(value) is not exact or not low <= value <= high:
                value = coerce_primitive(primitive, value, where)
            pack(view._buf, view._address - view._base + offset, value)
    return property(get, put if writable else None, doc=f"{field.value.type} {field.name}")


# -- strings ---------------------------------------------------------------------------


def _read_string(view, offset: int, wide: bool, where: str) -> str:
    data, size, _capacity = _triple(view, offset)
    if not size:
        return ""
    unit = 2 if wide else 1
    nbytes = size * unit
    if not view._writable:
        _check_range(view, data, nbytes + unit, where)
        start = data - view._base
        if any(view._buf[start + nbytes:start + nbytes + unit]):
            raise MessageCorruptedError(
                f"received {where} has no NUL after its {size} characters: the publisher "
                "wrote a corrupt string")
    start = data - view._base
    raw = view._buf[start:start + nbytes]
    return bytes(raw).decode("utf-16-le" if wide else "utf-8", errors="replace")


def _write_string(view, offset: int, value, wide: bool, bound: int, where: str) -> None:
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
    address = _replace_storage(view, position, nbytes)
    start = address - base
    buf[start:start + nbytes] = encoded
    _TRIPLE.pack_into(buf, position, address, nbytes // unit - 1, nbytes // unit)


def _string_property(type_name: str, field: L.FieldLayout, writable: bool) -> property:
    offset = field.offset
    wide = field.value.kind == L.WSTRING_KIND
    bound = field.value.string_bound
    where = f"{type_name}.{field.name}"

    def get(view):
        return _read_string(view, offset, wide, where)

    def put(view, value):
        loan = view._owner
        if not loan.valid or loan.port.runtime.closed:
            check_loan(view)
        _write_string(view, offset, value, wide, bound, where)
    return property(get, put if writable else None, doc=f"{field.value.type} {field.name}")


# -- nested messages -----------------------------------------------------------------


def _message_property(type_name: str, field: L.FieldLayout, writable: bool, view_class) -> property:
    offset = field.offset
    nested = field.value.struct.type_name
    nested_class = None  # view_class(nested, writable), looked up on first use

    def get(view):
        nonlocal nested_class
        if nested_class is None:
            nested_class = view_class(nested, writable)
        return nested_class(view._owner, view._address + offset, view._buf, view._base,
                            view._end)

    where = f"{type_name}.{field.name}"

    def put(view, value):
        check_loan(view)
        from agnoshm.msg.convert import assign

        try:
            assign(get(view), value)
        except (TypeError, ValueError, AttributeError) as err:
            add_path(err, where)
            raise
    return property(get, put if writable else None, doc=f"{field.value.type} {field.name}")


def add_path(err: Exception, where: str) -> None:
    """Start the message of ``err`` (a bad value met inside a nested message) with the outer
    field ``where``, so that it names the whole path (``All.named_seq[2]: Named.id ...``)."""
    if err.args and isinstance(err.args[0], str) and not err.args[0].startswith(where):
        err.args = (f"{where}: {err.args[0]}",) + err.args[1:]


# -- arrays and sequences ---------------------------------------------------------------


def _element_dtype(element: L.ValueLayout):
    if element.kind == L.PRIMITIVE:
        return np.dtype(L.PRIMITIVE_C_TYPES[element.primitive][2])
    if element.kind == L.MESSAGE and not element.struct.holds_pointers:
        return L.numpy_dtype(element.struct)
    return None


def read_elements(view, address: int, count: int, element: L.ValueLayout, writable: bool,
                  view_class, where: str):
    """The elements at ``address``: a numpy array, or a tuple of views or strings."""
    nbytes = count * element.size
    if count and not writable:
        _check_range(view, address, nbytes, where)
    dtype = _element_dtype(element)
    if dtype is not None:
        return pool_array(address, nbytes, dtype, count, writable=writable, owner=view._owner)
    if element.kind in (L.STRING_KIND, L.WSTRING_KIND):
        if writable:
            return WritableStrings(view, address, count, element, where)
        wide = element.kind == L.WSTRING_KIND
        shim = _ElementCursor(view, address)
        return tuple(_read_string(shim.at(address + i * element.size), 0, wide, where)
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
        return _read_string(cursor, 0, self._element.kind == L.WSTRING_KIND,
                            f"{self._where}[{position}]")

    def __setitem__(self, index, value) -> None:
        check_loan(self._view)
        cursor, position = self._cursor(index)
        _write_string(cursor, 0, value, self._element.kind == L.WSTRING_KIND,
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
    dtype = _element_dtype(element)
    count = len(values)
    if dtype is not None:
        target = pool_array(address, count * element.size, dtype, count, writable=True,
                            owner=view._owner)
        _fill_array(target, values, element, where)
        return
    if element.kind in (L.STRING_KIND, L.WSTRING_KIND):
        cursor = _ElementCursor(view, address)
        for i, value in enumerate(values):
            _write_string(cursor.at(address + i * element.size), 0, value,
                          element.kind == L.WSTRING_KIND, element.string_bound, f"{where}[{i}]")
        return
    from agnoshm.msg.convert import assign

    defaults.initialize_messages(view, address, count, element)
    cls = view_class(element.struct.type_name, True)
    for i, value in enumerate(values):
        try:
            assign(cls(view._owner, address + i * element.size, view._buf, view._base, view._end),
                   value)
        except (TypeError, ValueError, AttributeError) as err:
            add_path(err, f"{where}[{i}]")
            raise


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
_OCTETS = ("byte", "char", "uint8")  # the element types a bytes value fills, one byte each


def primitive_source(values, element: L.ValueLayout, where: str) -> np.ndarray:
    """``values`` for primitive elements as a flat numpy array, checked for kind and range
    (before any storage is touched).

    :raises TypeError: a str, a value without a length, or elements of the wrong kind.
    :raises ValueError: an element out of range for its type (integers, float32).
    """
    if isinstance(values, memoryview) and values.format not in ("B", "b", "c"):
        values = np.asarray(values)  # a typed buffer: its elements, not its bytes
    if isinstance(values, (bytes, bytearray, memoryview)):
        if element.primitive not in _OCTETS:
            raise TypeError(
                f"{where} takes {type(values).__name__} only for byte, char or uint8 elements, "
                f"not {element.primitive}: for raw {element.primitive} data pass "
                f"np.frombuffer(data, dtype=np.{np.dtype(L.PRIMITIVE_C_TYPES[element.primitive][2]).name})")
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
    target = np.dtype(L.PRIMITIVE_C_TYPES[primitive][2])
    if primitive == "byte" and source.dtype == _ONE_BYTE_STRINGS and (
            isinstance(values, np.ndarray) or all(len(v) == 1 for v in values)):
        source = source.view(np.uint8)  # rclpy's octets: 1-byte bytes objects
    elif source.dtype.kind in "fOSU" and primitive in _INT_RANGES \
            and not isinstance(values, np.ndarray):
        # Python ints past int64 (uint64 values) make numpy pick float64 or object: check them
        # one by one instead, exactly
        source = np.array([coerce_primitive(primitive, v, f"{where}[{i}]")
                           for i, v in enumerate(values)], dtype=target)
    if source.size and source.dtype != target:
        if primitive == "bool":
            if source.dtype.kind != "b":
                raise TypeError(f"{where} takes bools, not dtype {source.dtype}")
        elif primitive in _INT_RANGES:
            if source.dtype.kind not in "iub":
                raise TypeError(f"{where} takes ints ({primitive}), not dtype {source.dtype}")
            low, high = _INT_RANGES[primitive]
            if source.min() < low or source.max() > high:
                bad = int(np.flatnonzero((source < low) | (source > high))[0])
                raise ValueError(f"{where}[{bad}]: {source[bad].item()} is out of range for "
                                 f"{primitive} ({low}..{high})")
        elif source.dtype.kind not in "iuf":
            raise TypeError(f"{where} takes floats ({primitive}), not dtype {source.dtype}")
        elif primitive == "float32" and source.dtype.kind == "f":
            too_big = np.isfinite(source) & (np.abs(source) > _FLOAT32_MAX)
            if too_big.any():
                bad = int(np.flatnonzero(too_big)[0])
                raise ValueError(f"{where}[{bad}]: {source[bad].item()} is out of range for "
                                 f"float32 (|x| <= {_FLOAT32_MAX:.7g}, or inf/nan)")
    return source.astype(target, copy=False)


def _fill_array(target: np.ndarray, values, element: L.ValueLayout, where: str) -> None:
    if target.dtype.names:  # pointer-free messages
        if isinstance(values, np.ndarray) and values.dtype == target.dtype:
            target[...] = values
            return
        if _float_rows(values, target.dtype):  # an (n, 3) array into Point[], (n, 7) into Pose[]
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
        from agnoshm.msg.convert import assign_structured

        # fields a row does not give keep a fresh message's values (zeros and defaults)
        defaults.initialize_messages(None, target.ctypes.data, target.size, element)
        for i, value in enumerate(values):
            assign_structured(target[i:i + 1], value, element.struct, f"{where}[{i}]")
        return
    source = primitive_source(values, element, where)
    if source.size != target.size:
        raise ValueError(f"{where}: {source.size} values for {target.size} elements")
    target[...] = source


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


def _float_rows(values, dtype: np.dtype) -> bool:
    """True for a plain 2-D numeric array whose rows give every member of an all-float
    message, in field order."""
    return isinstance(values, np.ndarray) and values.dtype.names is None and values.ndim == 2 \
        and values.dtype.kind in "iuf" and values.shape[1] == _float_leaves(dtype) > 0


def _array_property(type_name: str, field: L.FieldLayout, writable: bool, view_class) -> property:
    offset = field.offset
    element = field.value.element
    count = field.value.count
    where = f"{type_name}.{field.name}"

    def get(view):
        return read_elements(view, view._address + offset, count, element, writable, view_class, where)

    def put(view, values):
        check_loan(view)
        if element.kind == L.PRIMITIVE:
            values = primitive_source(values, element, where)
        else:
            values = check_sequence_elements(values, element, where)
        if len(values) != count:
            raise ValueError(f"{where} is a fixed array of {count}, got {len(values)} values")
        address = view._address + offset
        if element.kind == L.PRIMITIVE:
            write_elements(view, address, values, element, view_class, where)
            return
        written = _written_elements(view, values, element, view_class, where)
        if element.holds_pointers:
            free_elements(view, address, count, element)
        ctypes.memmove(address, written, count * element.size)
        view._owner.free(written)
    return property(get, put if writable else None, doc=f"{field.value.type} {field.name}")


def _sequence_property(type_name: str, field: L.FieldLayout, writable: bool, view_class) -> property:
    offset = field.offset
    element = field.value.element
    where = f"{type_name}.{field.name}"

    def get(view):
        data, size, _capacity = _triple(view, offset)
        return read_elements(view, data, size, element, writable, view_class, where)

    def put(view, values):
        check_loan(view)
        if element.kind == L.PRIMITIVE:  # checked before the old storage is released
            values = primitive_source(values, element, where)
        else:
            values = check_sequence_elements(values, element, where)
        count = len(values)
        if element.kind != L.PRIMITIVE and count:
            check_sequence_length(field, count, where)
            written = _written_elements(view, values, element, view_class, where)
            allocate_sequence(view, field, 0, where)  # frees the old elements
            _set_triple(view, offset, written, count, count)
            return
        allocate_sequence(view, field, count, where)
        data = _triple(view, offset)[0]
        write_elements(view, data, values, element, view_class, where)
    return property(get, put if writable else None, doc=f"{field.value.type} {field.name}")


def _written_elements(view, values, element: L.ValueLayout, view_class, where: str) -> int:
    """New pool storage holding ``values`` written as string or message elements; its address.

    All or nothing: a bad element, or a pool that runs out of room, frees everything
    written so far and raises, so the field being assigned keeps its old value.
    """
    count = len(values)
    # message elements are made fresh by write_elements; string triples must start zero
    address = _allocate(view, count * element.size, zero=element.kind != L.MESSAGE)
    try:
        write_elements(view, address, values, element, view_class, where)
    except BaseException:
        if element.holds_pointers:
            free_elements(view, address, count, element)
        view._owner.free(address)
        raise
    return address


def check_sequence_length(field: L.FieldLayout, count: int, where: str) -> None:
    """:raises ValueError: for a length that is not a non-negative int, or past the bound."""
    bound = field.value.bound
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
        raise ValueError(f"{where}: the length must be a non-negative int, not {count!r}")
    if bound and count > bound:
        raise ValueError(f"{where}: {count} elements exceed the bound of {bound}")


def allocate_sequence(view, field: L.FieldLayout, count: int, where: str) -> int:
    """Give sequence ``field`` fresh storage for ``count`` elements; return its address.

    The new storage is allocated before the old is freed, so values read from the old
    elements (``msg.f64_seq = msg.f64_seq``) are still intact while they are copied.
    """
    value = field.value
    check_sequence_length(field, count, where)
    address = _allocate(view, count * value.element.size, zero=value.element.holds_pointers) \
        if count else 0
    if value.element.holds_pointers:
        data, size, _ = _triple(view, field.offset)
        free_elements(view, data, size, value.element)
    _release_storage(view, field.offset)
    if count:
        _set_triple(view, field.offset, address, count, count)
    return address


def sequence_allocator(type_name: str, field: L.FieldLayout, view_class):
    """``alloc(view, n)`` for sequence ``field`` of a loan: give it storage for ``n`` elements
    and return it to fill (what ``LoanedView.alloc`` does; a numpy array when it can)."""
    value = field.value
    element = value.element
    where = f"{type_name}.{field.name}"
    dtype = _element_dtype(element)
    if dtype is None or element.holds_pointers:
        def alloc(view, n):
            address = allocate_sequence(view, field, n, where)
            defaults.initialize_messages(view, address, n, element)
            return read_elements(view, address, n, element, True, view_class, where)
        return alloc
    # Pointer-free elements (primitives, plain structs): the hot path of every image.
    offset = field.offset
    bound = value.bound
    element_size = element.size
    is_message = element.kind == L.MESSAGE

    def alloc_array(view, n):
        if type(n) is not int or n <= 0 or (bound and n > bound):
            address = allocate_sequence(view, field, n, where)  # checks n, or n == 0
            return read_elements(view, address, n, element, True, view_class, where)
        position = view._address - view._base + offset
        nbytes = n * element_size
        address = _replace_storage(view, position, nbytes)
        _TRIPLE.pack_into(view._buf, position, address, n, n)
        if is_message:
            defaults.initialize_messages(view, address, n, element)
        return pool_array(address, nbytes, dtype, n, writable=True, owner=view._owner)
    return alloc_array


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
                data, size, _ = _triple(view, field.offset)
                free_elements(view, data, size, value.element)
            _release_storage(view, field.offset)


def free_elements(view, address: int, count: int, element: L.ValueLayout) -> None:
    """Free the storage held by ``count`` elements at ``address`` (strings or messages)."""
    if element.kind == L.MESSAGE:
        for i in range(count):
            clear_storage(view._child(element.struct.type_name, address + i * element.size))
    else:
        cursor = _ElementCursor(view, address)
        for i in range(count):
            _release_storage(cursor.at(address + i * element.size), 0)


def field_property(type_name: str, field: L.FieldLayout, writable: bool, view_class) -> property:
    """The property that reads (and, when ``writable``, writes) ``field``."""
    if not writable and field.value.kind == L.SEQUENCE and _element_dtype(field.value.element):
        return _received_array_sequence_property(type_name, field)
    prop = _field_property(type_name, field, writable, view_class)
    get = prop.fget
    if writable:
        def checked_loan_get(view):
            loan = view._owner
            if not loan.valid or loan.port.runtime.closed:
                check_loan(view)
            return get(view)
        return property(checked_loan_get, prop.fset, doc=prop.__doc__)

    def checked_get(view):
        if view._owner.port.runtime.closed:
            check_received(view)
        return get(view)
    return property(checked_get, None, doc=prop.__doc__)


def _received_array_sequence_property(type_name: str, field: L.FieldLayout) -> property:
    """A received sequence of primitives or pointer-free messages: one read-only numpy
    array (the hot path of every image and point cloud, so in one function)."""
    offset = field.offset
    element = field.value.element
    dtype = _element_dtype(element)
    element_size = element.size
    where = f"{type_name}.{field.name}"
    unpack_triple = _TRIPLE.unpack_from

    def get(view):
        owner = view._owner
        if owner.port.runtime.closed:
            check_received(view)
        base = view._base
        data, size, _capacity = unpack_triple(view._buf, view._address - base + offset)
        nbytes = size * element_size
        if size and (data < base or data + nbytes > view._end):
            _check_range(view, data, nbytes, where)
        return pool_array(data, nbytes, dtype, size, writable=False, owner=owner)
    return property(get, None, doc=f"{field.value.type} {field.name}")


def _field_property(type_name: str, field: L.FieldLayout, writable: bool, view_class) -> property:
    kind = field.value.kind
    if kind == L.PRIMITIVE:
        return _primitive_property(type_name, field, writable)
    if kind in (L.STRING_KIND, L.WSTRING_KIND):
        return _string_property(type_name, field, writable)
    if kind == L.MESSAGE:
        return _message_property(type_name, field, writable, view_class)
    if kind == L.ARRAY:
        return _array_property(type_name, field, writable, view_class)
    return _sequence_property(type_name, field, writable, view_class)
