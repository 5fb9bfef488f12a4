"""The C layout of a message: the struct that rosidl_generator_c emits, on this ABI.

``layout_of("pkg/msg/Name")`` gives a :class:`StructLayout` whose size,
alignment and field offsets equal ``sizeof``/``_Alignof``/``offsetof`` of the
generated ``pkg__msg__Name`` struct. The rules (C, LP64 — x86_64 and aarch64
Linux — values in brackets; sizes and alignments are read from :mod:`ctypes`,
so they follow the host ABI):

* Primitives are stored as the C type rosidl maps them to, at natural
  alignment::

      bool     -> bool         [1]      int8/uint8     -> int8_t/uint8_t   [1]
      byte     -> uint8_t      [1]      int16/uint16   -> int16_t/...      [2]
      char     -> uint8_t      [1]      int32/uint32, float32 (float)      [4]
      wchar    -> uint16_t     [2]      int64/uint64, float64 (double)     [8]
      float128 -> long double  [16]

  (``.msg`` ``char`` is IDL ``uint8``, ``byte`` is ``octet``: both unsigned.)

* ``string`` and ``string<=N`` (the bound is not stored inline)::

      typedef struct rosidl_runtime_c__String {
        char * data;      // NUL-terminated, absolute address in the owner's pool
        size_t size;      // length without the NUL
        size_t capacity;  // allocated bytes, including the NUL
      } rosidl_runtime_c__String;           // [24, align 8]

  ``wstring`` is ``rosidl_runtime_c__U16String``, the same with ``uint16_t * data``.

* Every sequence, bounded (``T[<=N]``) or not (``T[]``)::

      typedef struct { T * data; size_t size; size_t capacity; } T__Sequence;  // [24, align 8]

* A fixed array ``T[N]`` is ``T name[N]`` inline; a nested message is its
  struct inline.

* A message with no fields is ``{ uint8_t structure_needs_at_least_one_member; }``.

* Fields are placed in order, each at the next multiple of its alignment; the
  struct's alignment is its largest field alignment and its size is rounded up
  to it::

      typedef struct sensor_msgs__msg__Imu {
        std_msgs__msg__Header header;                   // 0   (32 bytes)
        geometry_msgs__msg__Quaternion orientation;     // 32  (4 doubles)
        double orientation_covariance[9];               // 64
        ...
      } sensor_msgs__msg__Imu;
"""

from __future__ import annotations

import ctypes
import dataclasses
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from agnoshm.msg.definition import EMPTY_MEMBER, STRING, WSTRING, FieldType, MessageDefinition
from agnoshm.msg.primitives import TABLE
from agnoshm.msg.types import TypeRegistry, default_registry

__all__ = [
    "PRIMITIVE", "STRING_KIND", "WSTRING_KIND", "MESSAGE", "ARRAY", "SEQUENCE",
    "ValueLayout", "FieldLayout", "StructLayout", "layout_of", "numpy_dtype",
]

# kinds of a value
PRIMITIVE = "primitive"
STRING_KIND = "string"
WSTRING_KIND = "wstring"
MESSAGE = "message"
ARRAY = "array"
SEQUENCE = "sequence"

class _Triple(ctypes.Structure):
    """``{T *data; size_t size; size_t capacity;}``: strings, wstrings and sequences."""

    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_size_t), ("capacity", ctypes.c_size_t)]


_TRIPLE_SIZE = ctypes.sizeof(_Triple)
_TRIPLE_ALIGN = ctypes.alignment(_Triple)


@dataclass(frozen=True)
class ValueLayout:
    """How one value of a field type is stored.

    ``kind`` is one of :data:`PRIMITIVE`, :data:`STRING_KIND`, :data:`WSTRING_KIND`,
    :data:`MESSAGE`, :data:`ARRAY`, :data:`SEQUENCE`.
    """

    kind: str
    size: int
    alignment: int
    type: FieldType
    primitive: str | None = None          # PRIMITIVE: the .msg primitive name
    string_bound: int = 0                 # STRING/WSTRING: max length, 0 = unbounded
    struct: StructLayout | None = None    # MESSAGE: the nested struct
    element: ValueLayout | None = None    # ARRAY/SEQUENCE: one element
    count: int = 0                        # ARRAY: number of elements
    bound: int = 0                        # SEQUENCE: max number of elements, 0 = unbounded

    @property
    def holds_pointers(self) -> bool:
        """True if the value contains a pointer (a string, wstring or sequence, at any depth)."""
        if self.kind in (STRING_KIND, WSTRING_KIND, SEQUENCE):
            return True
        if self.kind == MESSAGE:
            return self.struct.holds_pointers  # type: ignore[union-attr]
        if self.kind == ARRAY:
            return self.element.holds_pointers  # type: ignore[union-attr]
        return False

    @property
    def c_type(self) -> str:
        """The C type of one value (for arrays, of one element)."""
        if self.kind == PRIMITIVE:
            return TABLE[self.primitive].c_type  # type: ignore[index]
        if self.kind == STRING_KIND:
            return "rosidl_runtime_c__String"
        if self.kind == WSTRING_KIND:
            return "rosidl_runtime_c__U16String"
        if self.kind == MESSAGE:
            return self.type.base.replace("/", "__")
        if self.kind == ARRAY:
            return self.element.c_type  # type: ignore[union-attr]
        return _sequence_c_type(self.element)  # type: ignore[arg-type]


def _sequence_c_type(element: ValueLayout) -> str:
    if element.kind == PRIMITIVE:
        return TABLE[element.primitive].c_sequence  # type: ignore[index]
    if element.kind == STRING_KIND:
        return "rosidl_runtime_c__String__Sequence"
    if element.kind == WSTRING_KIND:
        return "rosidl_runtime_c__U16String__Sequence"
    return element.c_type + "__Sequence"


@dataclass(frozen=True)
class FieldLayout:
    """One member of the struct: its name, offset and :class:`ValueLayout`."""

    name: str
    offset: int
    value: ValueLayout

    @property
    def size(self) -> int:
        return self.value.size

    @property
    def alignment(self) -> int:
        return self.value.alignment

    @property
    def kind(self) -> str:
        return self.value.kind

    @property
    def type(self) -> FieldType:
        return self.value.type

    @property
    def element(self) -> ValueLayout | None:
        return self.value.element

    @property
    def struct(self) -> StructLayout | None:
        return self.value.struct

    @property
    def count(self) -> int:
        return self.value.count

    @property
    def bound(self) -> int:
        return self.value.bound

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class StructLayout:
    """The generated C struct of a message type."""

    type_name: str
    size: int
    alignment: int
    fields: tuple[FieldLayout, ...]
    definition: MessageDefinition = dataclasses.field(repr=False, compare=False)

    @property
    def c_name(self) -> str:
        """``pkg__msg__Name``, the struct's typedef name."""
        return self.type_name.replace("/", "__")

    @property
    def is_empty(self) -> bool:
        """True for a message without fields (its only member is the rosidl placeholder)."""
        return not self.definition.fields

    @property
    def holds_pointers(self) -> bool:
        """True if a string, wstring or sequence is anywhere inside (so no plain numpy dtype)."""
        return any(f.value.holds_pointers for f in self.fields)

    def field(self, name: str) -> FieldLayout:
        for member in self.fields:
            if member.name == name:
                return member
        raise KeyError(f"{self.type_name} has no field {name!r} "
                       f"(fields: {', '.join(f.name for f in self.fields)})")


def _align(offset: int, alignment: int) -> int:
    return (offset + alignment - 1) // alignment * alignment


class _Builder:
    """Computes and caches struct layouts for one registry."""

    def __init__(self, registry: TypeRegistry):
        self.registry = weakref.proxy(registry)
        self.cache: dict[tuple[str, str], StructLayout] = {}
        self.in_progress: list[str] = []
        self.lock = threading.RLock()

    def struct(self, definition: MessageDefinition) -> StructLayout:
        name = definition.type_name
        key = (name, definition.type_hash)  # a hand-made definition (no hash) is not cached
        with self.lock:
            if key in self.cache:
                return self.cache[key]
            if name in self.in_progress:
                cycle = " -> ".join(self.in_progress[self.in_progress.index(name):] + [name])
                raise ValueError(f"recursive message type {cycle}: agnoshm cannot lay it out")
            self.in_progress.append(name)
            try:
                members = [(f.name, f.type) for f in definition.fields] \
                    or [(EMPTY_MEMBER, FieldType("uint8"))]
                offset, alignment, fields = 0, 1, []
                for member_name, ftype in members:
                    value = self.value(ftype)
                    offset = _align(offset, value.alignment)
                    fields.append(FieldLayout(member_name, offset, value))
                    offset += value.size
                    alignment = max(alignment, value.alignment)
                layout = StructLayout(name, _align(offset, alignment), alignment, tuple(fields), definition)
            finally:
                self.in_progress.pop()
            if definition.type_hash:
                self.cache[key] = layout
            return layout

    def value(self, ftype: FieldType) -> ValueLayout:
        if ftype.is_sequence:
            return ValueLayout(SEQUENCE, _TRIPLE_SIZE, _TRIPLE_ALIGN, ftype,
                               element=self.value(ftype.element), bound=ftype.sequence_bound)
        if ftype.is_array:
            element = self.value(ftype.element)
            return ValueLayout(ARRAY, element.size * ftype.array_size, element.alignment, ftype,
                               element=element, count=ftype.array_size)
        if ftype.base in (STRING, WSTRING):
            return ValueLayout(STRING_KIND if ftype.base == STRING else WSTRING_KIND,
                               _TRIPLE_SIZE, _TRIPLE_ALIGN, ftype, string_bound=ftype.string_bound)
        if ftype.is_message:
            nested = self.struct(self.registry.get(ftype.base))
            return ValueLayout(MESSAGE, nested.size, nested.alignment, ftype, struct=nested)
        primitive = TABLE[ftype.base]
        return ValueLayout(PRIMITIVE, primitive.size, primitive.alignment, ftype,
                           primitive=ftype.base)


_builders: weakref.WeakKeyDictionary[TypeRegistry, _Builder] = weakref.WeakKeyDictionary()
_builders_lock = threading.Lock()


def _builder(registry: TypeRegistry) -> _Builder:
    with _builders_lock:
        builder = _builders.get(registry)
        if builder is None:
            builder = _builders[registry] = _Builder(registry)
        return builder


def layout_of(msg_type: str | type | MessageDefinition, *,
              registry: TypeRegistry | None = None) -> StructLayout:
    """The C struct layout of ``msg_type`` (a ``"pkg/msg/Name"``, an rclpy class or a definition).

    :raises agnoshm.msg.types.UnknownTypeError: the type or a nested type is unknown.
    """
    registry = registry or default_registry()
    definition = msg_type if isinstance(msg_type, MessageDefinition) else registry.get(msg_type)
    return _builder(registry).struct(definition)


def numpy_dtype(layout: StructLayout) -> np.dtype:
    """A structured numpy dtype with the struct's exact offsets and itemsize.

    Only for layouts that hold no pointers (``not layout.holds_pointers``):
    primitives, nested pointer-free messages and fixed arrays (as subarrays).

    :raises ValueError: the layout holds a string, wstring or sequence.
    """
    if layout.holds_pointers:
        culprits = [f.name for f in layout.fields if f.value.holds_pointers]
        raise ValueError(f"{layout.type_name} holds pointers (fields {', '.join(culprits)}): "
                         f"no numpy dtype describes it")
    return np.dtype({
        "names": [f.name for f in layout.fields],
        "formats": [_value_dtype(f.value) for f in layout.fields],
        "offsets": [f.offset for f in layout.fields],
        "itemsize": layout.size,
    })


def _value_dtype(value: ValueLayout) -> Any:
    if value.kind == PRIMITIVE:
        return np.dtype(TABLE[value.primitive].dtype)  # type: ignore[index]
    if value.kind == MESSAGE:
        return numpy_dtype(value.struct)  # type: ignore[arg-type]
    assert value.kind == ARRAY
    return np.dtype((_value_dtype(value.element), (value.count,)))  # type: ignore[arg-type]
