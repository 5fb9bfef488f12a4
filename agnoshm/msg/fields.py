"""Field accessors of message views: one getter (and, for loans, one setter) per field.

Accessors read and write the C struct of :mod:`agnoshm.msg.layout` in place:
primitives with ``struct.unpack_from``/``pack_into`` on the pool's memoryview (range and
type checks on writes, :mod:`agnoshm.msg.coerce`); strings, sequences and their elements
through :mod:`agnoshm.msg.storage`; arrays as numpy arrays over the pool
(:mod:`agnoshm.msg.arrays`).  The getters of received views are the per-message hot path:
each is one closure with what it needs bound at class-building time.
"""

from __future__ import annotations

import ctypes
import math
import struct

import numpy as np

from agnoshm.errors import MessageInvalidatedError
from agnoshm.msg import arrays, defaults
from agnoshm.msg import layout as L
from agnoshm.msg.arrays import PoolBytes, pool_array
from agnoshm.msg.checks import check_loan, check_range, check_received
from agnoshm.msg.coerce import (
    OCTETS, add_path, assign, check_sequence_elements, check_sequence_length, coerce_primitive,
    primitive_source,
)
from agnoshm.msg.primitives import FLOAT32_MAX, INT_RANGES, TABLE
from agnoshm.msg.storage import (
    TRIPLE, allocate_sequence, element_dtype, free_elements, read_elements, read_string,
    set_triple, triple, write_elements, write_string, written_elements,
)

__all__ = ["field_property", "sequence_allocator"]

_LONGDOUBLE = np.dtype(np.longdouble)  # float128 fields
asarray = np.asarray


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
        fmt = struct.Struct("=" + TABLE[primitive].struct_code)
        unpack, pack = fmt.unpack_from, fmt.pack_into

        # A value of exactly the Python type the field takes, in range, is written as it
        # is; anything else goes through coerce_primitive's checks and conversions.
        if primitive in INT_RANGES:
            exact, (low, high) = int, INT_RANGES[primitive]
        elif primitive == "float64":
            exact, low, high = float, -math.inf, math.inf
        elif primitive == "float32":
            exact, low, high = float, -FLOAT32_MAX, FLOAT32_MAX
        else:
            exact, low, high = bool, False, True

        def get(view):
            return unpack(view._buf, view._address - view._base + offset)[0]

        def put(view, value):
            loan = view._owner
            if not loan.valid or loan.closed:
                check_loan(view)
            if type(value) is not exact or not low <= value <= high:
                value = coerce_primitive(primitive, value, where)
            pack(view._buf, view._address - view._base + offset, value)
    return property(get, put if writable else None, doc=f"{field.value.type} {field.name}")



def _string_property(type_name: str, field: L.FieldLayout, writable: bool) -> property:
    offset = field.offset
    wide = field.value.kind == L.WSTRING_KIND
    bound = field.value.string_bound
    where = f"{type_name}.{field.name}"

    def get(view):
        return read_string(view, offset, wide, where)

    def put(view, value):
        loan = view._owner
        if not loan.valid or loan.closed:
            check_loan(view)
        write_string(view, offset, value, wide, bound, where)
    return property(get, put if writable else None, doc=f"{field.value.type} {field.name}")



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
        try:
            assign(get(view), value)
        except (TypeError, ValueError, AttributeError) as err:
            add_path(err, where)
            raise
    return property(get, put if writable else None, doc=f"{field.value.type} {field.name}")



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
        written = written_elements(view, values, element, view_class, where)
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
        data, size, _capacity = triple(view, offset)
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
            written = written_elements(view, values, element, view_class, where)
            allocate_sequence(view, field, 0, where)  # frees the old elements
            set_triple(view, offset, written, count, count)
            return
        allocate_sequence(view, field, count, where)
        data = triple(view, offset)[0]
        write_elements(view, data, values, element, view_class, where)
    return property(get, put if writable else None, doc=f"{field.value.type} {field.name}")


_BYTE_FORMATS = ("B", "b", "c")  # memoryviews whose bytes are the elements (as primitive_source)


def _loaned_primitive_sequence_property(type_name: str, field: L.FieldLayout,
                                        view_class) -> property:
    """A loaned sequence of primitives, whose setter copies raw data with one slice store.

    The publisher's hot path (``msg.data = payload``): ``bytes``, ``bytearray`` or a
    C-contiguous byte memoryview into byte/char/uint8 elements, and a C-contiguous numpy
    array of exactly the element dtype into any, are the elements as they are; the new
    storage is filled before the old is freed (``msg.data = msg.data``).  Anything else,
    and an empty value, goes through the checked path (the same checks, the same errors).
    """
    prop = _sequence_property(type_name, field, True, view_class)
    checked_put = prop.fset
    offset = field.offset
    element = field.value.element
    bound = field.value.bound
    dtype = element_dtype(element)
    octets = element.primitive in OCTETS
    where = f"{type_name}.{field.name}"
    pack_triple, unpack_triple = TRIPLE.pack_into, TRIPLE.unpack_from

    def put(view, values):
        kind = type(values)
        if kind is bytes or kind is bytearray:
            if not octets:
                return checked_put(view, values)
            raw = values
            count = nbytes = len(values)
        elif kind is np.ndarray or kind is memoryview:
            if kind is np.ndarray:
                if values.dtype != dtype:
                    return checked_put(view, values)
                raw = memoryview(values)
            elif octets and values.format in _BYTE_FORMATS:
                raw = values
            else:
                return checked_put(view, values)
            if not raw.c_contiguous:
                return checked_put(view, values)
            if raw.ndim != 1 or raw.format != "B":
                raw = raw.cast("B")
            nbytes = raw.nbytes
            count = nbytes // element.size
        else:
            return checked_put(view, values)
        if not count:
            return checked_put(view, values)
        loan = view._owner
        if not loan.valid:
            check_loan(view)
        if bound and count > bound:
            check_loan(view)  # a finished loan's error comes first, as on the checked path
            check_sequence_length(field, count, where)
        if (kind is bytes or kind is bytearray) and type(loan) is arrays.native_loan:  # in C
            try:
                loan.store_sequence(view._address + offset, raw, count)
            except MessageInvalidatedError:
                check_loan(view)
                raise
            return
        buf, base = view._buf, view._base
        position = view._address - base + offset
        try:  # the owner's allocate raises once agnoshm shut down (no ``closed`` read here)
            address = loan.allocate(nbytes)
        except MessageInvalidatedError:
            check_loan(view)
            raise
        start = address - base
        buf[start:start + nbytes] = raw
        old = unpack_triple(buf, position)[0]
        pack_triple(buf, position, address, count, count)
        if old:
            loan.free(old)
    return property(prop.fget, put, doc=prop.__doc__)


def sequence_allocator(type_name: str, field: L.FieldLayout, view_class):
    """``alloc(view, n)`` for sequence ``field`` of a loan: give it storage for ``n`` elements
    and return it to fill (what ``LoanedView.alloc`` does; a numpy array when it can)."""
    value = field.value
    element = value.element
    where = f"{type_name}.{field.name}"
    dtype = element_dtype(element)
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
    pack_triple, unpack_triple = TRIPLE.pack_into, TRIPLE.unpack_from
    frombuffer = np.frombuffer

    def alloc_array(view, n):
        if type(n) is not int or n <= 0 or (bound and n > bound):
            address = allocate_sequence(view, field, n, where)  # checks n, or n == 0
            return read_elements(view, address, n, element, True, view_class, where)
        loan = view._owner
        if type(loan) is arrays.native_loan and not is_message:
            # the steps below in C (the C loan's alloc_sequence), and pool_array's
            array = frombuffer(loan.alloc_sequence(view._address + offset, n, element_size),
                               dtype, n)
            loan.track(array)
            return array
        buf = view._buf  # each slot read once: the hot path of every image
        position = view._address - view._base + offset
        nbytes = n * element_size
        address = loan.allocate(nbytes)  # replace_storage, inline: new before old
        old = unpack_triple(buf, position)[0]
        pack_triple(buf, position, address, n, n)
        if old:
            loan.free(old)
        if is_message:
            defaults.initialize_messages(view, address, n, element)
        return pool_array(address, nbytes, dtype, n, writable=True, owner=loan)
    return alloc_array



def field_property(type_name: str, field: L.FieldLayout, writable: bool, view_class) -> property:
    """The property that reads (and, when ``writable``, writes) ``field``."""
    if not writable and field.value.kind == L.SEQUENCE and element_dtype(field.value.element):
        return _received_array_sequence_property(type_name, field)
    prop = _field_property(type_name, field, writable, view_class)
    get = prop.fget
    if writable:
        def checked_loan_get(view):
            loan = view._owner
            if not loan.valid or loan.closed:
                check_loan(view)
            return get(view)
        return property(checked_loan_get, prop.fset, doc=prop.__doc__)

    def checked_get(view):
        if view._owner.closed:
            check_received(view)
        return get(view)
    return property(checked_get, None, doc=prop.__doc__)


def _received_array_sequence_property(type_name: str, field: L.FieldLayout) -> property:
    """A received sequence of primitives or pointer-free messages: one read-only numpy
    array (the hot path of every image and point cloud, so in one function)."""
    offset = field.offset
    element = field.value.element
    dtype = element_dtype(element)
    element_size = element.size
    where = f"{type_name}.{field.name}"
    unpack_triple = TRIPLE.unpack_from
    frombuffer = np.frombuffer
    if dtype.names:  # structured: numpy lays it out from the bytes (pool_array)
        typestr = None
    else:
        typestr = dtype.str

    def get(view):
        owner = view._owner
        if owner.closed:
            check_received(view)
        base = view._base
        data, size, _capacity = unpack_triple(view._buf, view._address - base + offset)
        nbytes = size * element_size
        if size and (data < base or data + nbytes > view._end):
            check_range(view, data, nbytes, where)
        if not size or typestr is None:
            return pool_array(data, nbytes, dtype, size, writable=False, owner=owner)
        if owner.exports_pool:  # the array's base holds the owner (a fifth of the cost)
            return frombuffer(owner, dtype, size, data - base)
        # pool_array's read-only case, inline: this is the getter of every image's data
        holder = PoolBytes()
        holder.owner = owner
        holder.__array_interface__ = {"data": (data, True), "shape": (size,),
                                      "typestr": typestr, "version": 3}
        return asarray(holder)
    doc = f"{field.value.type} {field.name}"
    native = arrays.native()  # the native path runs: its getter, which hands the Python one
    if native is not None and typestr is not None:  # what it does not do (the reference)
        return property(native.ReceivedArray(offset, element_size, dtype, frombuffer, get),
                        None, doc=doc)
    return property(get, None, doc=doc)


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
    if writable and field.value.element.kind == L.PRIMITIVE:
        return _loaned_primitive_sequence_property(type_name, field, view_class)
    return _sequence_property(type_name, field, writable, view_class)
