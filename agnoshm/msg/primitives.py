"""The primitive types of ROS 2 messages: every fact agnoshm needs about each, in one table.

One row per primitive, keyed by its ``.msg`` spelling (``wchar`` and ``float128`` only come
from IDL, through rclpy's classes).  A row holds the C type rosidl_generator_c stores it as
(size and alignment from :mod:`ctypes`, so they follow the host ABI), the numpy dtype and
:mod:`struct` code it is read with, the range of an integer, the IDL name (which is how
rclpy's ``get_fields_and_field_types()`` spells it), the RIHS01 type id, and the
``array.array`` type code of rclpy's numeric sequences.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

__all__ = ["Primitive", "PRIMITIVES", "TABLE", "MSG_PRIMITIVES", "INT_RANGES", "FROM_IDL",
           "FLOAT32_MAX"]

#: The largest finite float32.
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class Primitive:
    """The facts about one primitive type."""

    name: str               # the .msg spelling: "float64"
    c_type: str             # in the generated C struct: "double"
    ctype: Any              # the ctypes type of that C type
    dtype: str              # numpy dtype string: "f8"
    struct_code: str        # struct module format ("" for float128: read through numpy)
    idl: str                # IDL name, rclpy's spelling: "double"
    type_id: int            # RIHS01 (type_description_interfaces/FieldType) id
    int_range: tuple[int, int] | None = None   # (low, high) for integers
    array_typecode: str | None = None          # rclpy's array.array code for sequences
    in_msg: bool = True     # spelled in .msg files (not wchar, float128)

    @property
    def size(self) -> int:
        return ctypes.sizeof(self.ctype)

    @property
    def alignment(self) -> int:
        return ctypes.alignment(self.ctype)

    @property
    def c_sequence(self) -> str:
        """rosidl_runtime_c's sequence struct of this element: ``rosidl_runtime_c__double__Sequence``."""
        return f"rosidl_runtime_c__{self.idl.replace(' ', '_')}__Sequence"


def _int(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


# .msg "char" is IDL uint8 and "byte" is IDL octet (rosidl_adapter), both unsigned; ROS 2
# hashes char as uint8 (type id 3).
TABLE: dict[str, Primitive] = {p.name: p for p in (
    Primitive("bool", "bool", ctypes.c_bool, "?", "?", "boolean", 15),
    Primitive("byte", "uint8_t", ctypes.c_uint8, "u1", "B", "octet", 16, _int(8, False)),
    Primitive("char", "uint8_t", ctypes.c_uint8, "u1", "B", "uint8", 3, _int(8, False), "B"),
    Primitive("int8", "int8_t", ctypes.c_int8, "i1", "b", "int8", 2, _int(8, True), "b"),
    Primitive("uint8", "uint8_t", ctypes.c_uint8, "u1", "B", "uint8", 3, _int(8, False), "B"),
    Primitive("int16", "int16_t", ctypes.c_int16, "i2", "h", "int16", 4, _int(16, True), "h"),
    Primitive("uint16", "uint16_t", ctypes.c_uint16, "u2", "H", "uint16", 5, _int(16, False), "H"),
    Primitive("int32", "int32_t", ctypes.c_int32, "i4", "i", "int32", 6, _int(32, True), "i"),
    Primitive("uint32", "uint32_t", ctypes.c_uint32, "u4", "I", "uint32", 7, _int(32, False), "I"),
    Primitive("int64", "int64_t", ctypes.c_int64, "i8", "q", "int64", 8, _int(64, True), "q"),
    Primitive("uint64", "uint64_t", ctypes.c_uint64, "u8", "Q", "uint64", 9, _int(64, False), "Q"),
    Primitive("float32", "float", ctypes.c_float, "f4", "f", "float", 10, None, "f"),
    Primitive("float64", "double", ctypes.c_double, "f8", "d", "double", 11, None, "d"),
    Primitive("float128", "long double", ctypes.c_longdouble, "g", "", "long double", 12,
              in_msg=False),
    Primitive("wchar", "uint16_t", ctypes.c_uint16, "u2", "H", "wchar", 14, _int(16, False),
              in_msg=False),
)}

#: Every primitive name.
PRIMITIVES = tuple(TABLE)
#: The primitive names a ``.msg`` file may use.
MSG_PRIMITIVES = tuple(p.name for p in TABLE.values() if p.in_msg)
#: Integer primitive -> (low, high).
INT_RANGES = {p.name: p.int_range for p in TABLE.values() if p.int_range}
#: IDL name (rosidl_parser's ``BasicType.typename``) -> primitive; IDL uint8 is uint8, not char.
FROM_IDL = {p.idl: p.name for p in TABLE.values() if p.name != "char"}
