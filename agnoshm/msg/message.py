"""Message types and their views: the loaned (writable) and received (read-only) classes.

:func:`get_message` turns what a user passes as ``MsgType`` (an rclpy class, a
rosbags class, ``"pkg/msg/Name"``, or a :class:`MessageType`) into one
:class:`MessageType` per type name.  For each type two view classes are
generated once, with one property per field (:mod:`agnoshm.msg.fields`):
``Loaned<Name>`` over the publisher's loan and ``Received<Name>`` over a
subscriber's lease.  Constants of the definition are attributes of the type
and of both view classes.
"""

from __future__ import annotations

import threading

from agnoshm.errors import MessageInvalidatedError, TypeMismatchError, UnknownFieldError
from agnoshm.msg import convert, defaults, fields
from agnoshm.msg.bytes import BYTES_TYPE_NAME
from agnoshm.msg.checks import MessageCorruptedError, check_loan
from agnoshm.msg.coerce import message_fields, short_repr
from agnoshm.msg.definition import MessageDefinition, UnknownTypeError, rclpy_type_string
from agnoshm.msg.layout import StructLayout, layout_of
from agnoshm.msg.types import default_registry

_lock = threading.RLock()
_types: dict[str, "MessageType"] = {}
_view_classes: dict[tuple[str, bool], type] = {}


class MessageView:
    """Base of every view: a message (or a nested part of one) at ``_address`` in a pool.

    .. warning:: Users do not create views: ``borrow_loaned_message()`` and
       subscriptions do.
    """

    __slots__ = ("_owner", "_address", "_buf", "_base", "_end", "__weakref__")
    _layout: StructLayout
    _type_name: str
    _writable: bool

    def __init__(self, owner, address: int, buf, base: int, end: int):
        # The slots' own setters: views forbid attribute assignment (__setattr__),
        # and these cost a third less than object.__setattr__ on every message.
        _set_owner(self, owner)
        _set_address(self, address)
        _set_buf(self, buf)
        _set_base(self, base)
        _set_end(self, end)

    def _child(self, type_name: str, address: int) -> "MessageView":
        return view_class(type_name, self._writable)(self._owner, address, self._buf, self._base,
                                                     self._end)

    def get_fields_and_field_types(self) -> dict[str, str]:
        """Field names and their types, in order, spelled as rclpy messages spell them
        (``{"data": "sequence<uint8>"}``); ``str(field.type)`` of the definition gives ``.msg``."""
        return {f.name: rclpy_type_string(f.value.type) for f in message_fields(self)}

    def to_dict(self) -> dict:
        """A copy of the message as plain Python values."""
        return convert.to_dict(self)

    def to_rosbags(self, typestore=None):
        """A copy of the message as a rosbags message (for CDR serialization, bags)."""
        return convert.to_rosbags(self, typestore)

    def to_ros(self):
        """A copy of the message as an rclpy message (needs ROS 2)."""
        return convert.to_ros(self)

    def __repr__(self) -> str:
        if self._owner.closed:
            return f"{self._type_name.replace('/', '.')}(<gone: agnoshm was shut down>)"
        if self._writable and not self._owner.valid:
            return f"{self._type_name.replace('/', '.')}(<published>)"
        return convert.message_repr(self)

    def __eq__(self, other) -> bool:
        if isinstance(other, MessageView):
            return self._type_name == other._type_name and self.to_dict() == other.to_dict()
        return NotImplemented

    __hash__ = None  # views are mutable

    def __getattr__(self, name):
        # Reached when no field, slot or method has the name, or when a field's getter
        # raised AttributeError: that error is raised again rather than hidden.
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "alloc" and not self._writable:
            raise AttributeError(
                f"received messages are read-only ({self._type_name}): alloc() is for loaned "
                "messages; copy the values (msg.to_dict(), numpy .copy()) to change them")
        if name in self._field_names:
            return getattr(type(self), name).fget(self)
        raise _unknown_field(self, name)


def _unknown_field(view, name: str, suffix: str = "") -> UnknownFieldError:
    fields_text = ", ".join(sorted(f.name for f in message_fields(view))) or "none"
    return UnknownFieldError(f"{view._type_name} has no field {name!r} (fields: {fields_text}){suffix}")


_set_owner, _set_address, _set_buf, _set_base, _set_end = (
    getattr(MessageView, name).__set__ for name in ("_owner", "_address", "_buf", "_base", "_end"))


class LoanedView(MessageView):
    """A writable message in this process's pool, valid until it is published."""

    __slots__ = ()
    _writable = True

    @property
    def _loan(self):
        return self._owner

    def alloc(self, field: str, n: int):
        """Give sequence ``field`` storage for ``n`` elements in the pool and return it to fill:
        a writable numpy array (primitives: not initialized; pointer-free messages: fresh
        ones), a tuple of writable views (fresh messages), or writable strings (empty).

        :raises ValueError: for a bounded sequence and ``n`` past its bound.
        :raises UnknownFieldError: for a name that is not a field.
        """
        loan = self._owner
        if not loan.valid or loan.closed:
            check_loan(self)
        allocate = self._allocators.get(field)
        if allocate is None:
            layout = self._field_layout(field)  # raises for an unknown field
            raise TypeError(f"{self._type_name}.{field} is a {layout.value.type}, not a sequence: "
                            "assign it instead")
        return allocate(self, n)

    def _field_layout(self, name: str):
        try:
            return self._layout.field(name)
        except KeyError:
            raise _unknown_field(self, name) from None

    def __setattr__(self, name, value):
        if name in self._field_names:
            object.__setattr__(self, name, value)
        else:
            raise _unknown_field(self, name, f"; cannot set it to {short_repr(value)}")


class _NewView(MessageView):
    """A view being built (loaned or received): the generated classes forbid attribute
    assignment, this one stores the five slots directly, then becomes the type's class
    (same layout).

    Five slot stores and a ``__class__`` assignment cost less than half of a constructor
    call that stores through the slots' descriptors; every message makes one.
    """

    __slots__ = ()


_new_view = object.__new__


def _field_setter(setters: dict):
    """A loaned view class's ``__setattr__``: the field's setter, called directly (the
    publisher's ``msg.data = payload``), or UnknownFieldError for any other name."""
    def __setattr__(self, name, value):
        setter = setters.get(name)
        if setter is None:
            raise _unknown_field(self, name, f"; cannot set it to {short_repr(value)}")
        setter(self, value)
    return __setattr__


class ReceivedView(MessageView):
    """A read-only message, read in place in its publisher's pool."""

    __slots__ = ()
    _writable = False

    @property
    def timestamp_ns(self) -> int:
        """CLOCK_MONOTONIC nanoseconds at which the message was published."""
        return self._owner.timestamp_ns

    @property
    def seq(self) -> int:
        """The sequence number of the message: its publisher's count, from 1 (as DDS's)."""
        return self._owner.seq

    def __setattr__(self, name, value):
        raise AttributeError(
            f"received messages are read-only ({self._type_name}.{name}): they are the publisher's "
            "memory; copy the value (e.g. msg.to_dict() or numpy .copy()) to change it")


def view_class(type_name: str, writable: bool) -> type:
    """The generated view class of ``type_name`` (loaned when ``writable``)."""
    key = (type_name, writable)
    cls = _view_classes.get(key)
    if cls is None:
        with _lock:
            cls = _view_classes.get(key)
            if cls is None:
                cls = _view_classes[key] = _make_view_class(type_name, writable)
    return cls


def _make_view_class(type_name: str, writable: bool) -> type:
    message_type = get_message(type_name)
    layout = message_type.layout
    namespace = {
        "__slots__": (),
        "_layout": layout,
        "_type_name": type_name,
        "_field_names": frozenset(() if layout.is_empty else (f.name for f in layout.fields)),
        "__qualname__": ("Loaned" if writable else "Received") + layout.definition.name,
    }
    for field in () if layout.is_empty else layout.fields:
        namespace[field.name] = fields.field_property(type_name, field, writable, view_class)
    if writable:
        namespace["_allocators"] = {
            field.name: fields.sequence_allocator(type_name, field, view_class)
            for field in (() if layout.is_empty else layout.fields) if field.value.kind == "sequence"}
        namespace["__setattr__"] = _field_setter(
            {name: namespace[name].fset for name in namespace["_field_names"]})
    for constant in layout.definition.constants:
        namespace[constant.name] = constant.value
    base = LoanedView if writable else ReceivedView
    return type(namespace["__qualname__"], (base,), namespace)


class MessageType:
    """One ROS 2 message type as agnoshm carries it: layout, hash, constants, views.

    Obtain it with :func:`get_message` (or pass any type spelling to
    ``create_publisher``); constants are attributes (``NavSatStatus.STATUS_FIX``).
    """

    def __init__(self, definition: MessageDefinition, layout: StructLayout):
        self.definition = definition
        self.layout = layout
        self.type_name = definition.type_name
        self.type_hash = definition.type_hash
        self.struct_size = layout.size
        self._zeros = bytes(layout.size)
        self._received_class = None  # view_class(type_name, False), once it is needed
        self._loaned_class = None  # view_class(type_name, True), once it is needed
        self._has_defaults = False  # set with _loaned_class
        self._span = (None, None, 0, 0)  # (pool, its buffer, start, end) of the last loan
        self._received_span = (None, None, 0, 0)  # the same, of the last received message
        for constant in definition.constants:
            setattr(self, constant.name, constant.value)

    def loaned_class(self) -> type:
        """The class of this type's loaned views (made on first use)."""
        cls = self._loaned_class
        if cls is None:
            self._has_defaults = defaults.needs_defaults(self.layout)
            cls = self._loaned_class = view_class(self.type_name, True)
        return cls

    def defaults_writer(self):
        """The function that writes the definition's default values into a fresh loaned
        view (``defaults.apply_defaults``), or None if every field's default is zero."""
        self.loaned_class()
        return defaults.apply_defaults if self._has_defaults else None

    def loaned(self, loan) -> LoanedView:
        """A writable view over a fresh loan: zeroed, with the definition's default values."""
        cls = self._loaned_class
        if cls is None:
            cls = self.loaned_class()
        pool = loan.pool
        span = self._span
        if span[0] is not pool:  # the first loan of this type since agnoshm.init()
            span = self._span = (pool, pool.buffer, pool.address, pool.address + pool.size)
        _pool, buffer, base, end = span
        address = loan.address
        view = _new_view(_NewView)
        view._owner = loan
        view._address = address
        view._buf = buffer
        view._base = base
        view._end = end
        view.__class__ = cls
        start = address - base
        buffer[start:start + self.struct_size] = self._zeros  # a slice store: no foreign call
        if self._has_defaults:
            defaults.apply_defaults(view)
        return view

    def received_class(self) -> type:
        """The class of this type's received views (made on first use)."""
        cls = self._received_class
        if cls is None:
            cls = self._received_class = view_class(self.type_name, False)
        return cls

    def received(self, lease) -> ReceivedView:
        """A read-only view over a received message."""
        pool = lease.pool
        span = self._received_span
        if span[0] is not pool:  # another publisher's pool than the last message's
            span = self._received_span = (pool, pool.buffer, pool.address,
                                          pool.address + pool.size)
        _pool, buffer, start, end = span
        address = lease.address
        if address < start or address + self.struct_size > end:
            raise MessageCorruptedError(
                f"received {self.type_name} at 0x{address:x} lies outside its publisher's pool")
        cls = self._received_class
        if cls is None:
            cls = self._received_class = view_class(self.type_name, False)
        view = _new_view(_NewView)
        view._owner = lease
        view._address = address
        view._buf = buffer
        view._base = start
        view._end = end
        view.__class__ = cls
        return view

    def __repr__(self) -> str:
        return f"<agnoshm message type {self.type_name} ({self.struct_size} bytes)>"


def get_message(msg_type) -> MessageType:
    """The :class:`MessageType` of ``msg_type``: ``"pkg/msg/Name"`` (or ``"pkg/Name"``),
    an rclpy message class, a rosbags message class, or a :class:`MessageType`.

    :raises TypeMismatchError: if the type cannot be resolved (the message says why and how to fix it).
    """
    if isinstance(msg_type, MessageType):
        return msg_type
    if isinstance(msg_type, type) and isinstance(getattr(msg_type, "__msgtype__", None), str):
        msg_type = msg_type.__msgtype__  # a rosbags class
    registry = default_registry()
    try:
        definition = registry.get(msg_type)
    except UnknownTypeError as err:
        raise TypeMismatchError(str(err)) from err
    except (TypeError, ValueError) as err:
        raise TypeMismatchError(f"cannot resolve message type {msg_type!r}: {err}") from err
    name = definition.type_name
    found = _types.get(name)
    if found is not None and found.type_hash == definition.type_hash:
        return found
    with _lock:
        found = _types[name] = MessageType(definition, layout_of(definition, registry=registry))
        _view_classes.pop((name, True), None)
        _view_classes.pop((name, False), None)
    return found


def bytes_type() -> MessageType:
    """The :class:`MessageType` of ``agnoshm.Bytes``: what ``get_message("agnoshm/msg/Bytes")``
    gives, as every type registry knows it."""
    return get_message(BYTES_TYPE_NAME)


__all__ = ["LoanedView", "MessageInvalidatedError", "MessageType", "MessageView", "ReceivedView",
           "bytes_type", "get_message", "view_class"]
