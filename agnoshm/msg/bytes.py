"""``agnoshm.Bytes``: the built-in raw type, one field ``uint8[] data``.

Its C layout is what rosidl_generator_c emits for a message whose only field
is an unbounded ``uint8`` sequence::

    typedef struct agnoshm__msg__Bytes {
      rosidl_runtime_c__uint8__Sequence data;  // { uint8_t *data; size_t size; size_t capacity; }
    } agnoshm__msg__Bytes;                       // 24 bytes, pointers absolute in the owner's pool
"""

from __future__ import annotations

import ctypes
import hashlib

import numpy as np

from agnoshm.errors import MessageInvalidatedError, TypeMismatchError

_SEQUENCE = ctypes.c_uint64 * 3  # data pointer, size, capacity
STRUCT_SIZE = ctypes.sizeof(_SEQUENCE)


class MessageCorruptedError(MessageInvalidatedError):
    """Raised when a received message points outside its publisher's pool."""


class Bytes:
    """The built-in raw message type: one field, ``uint8[] data``."""

    type_name = "agnoshm/msg/Bytes"
    # RIHS01-style identity of the definition "uint8[] data"
    type_hash = "RIHS01_" + hashlib.sha256(b"agnoshm/msg/Bytes:uint8[] data").hexdigest()
    struct_size = STRUCT_SIZE

    @staticmethod
    def loaned(loan) -> "LoanedBytes":
        return LoanedBytes(loan)

    @staticmethod
    def received(lease) -> "ReceivedBytes":
        return ReceivedBytes(lease)


def resolve_type(msg_type):
    """Return the agnoshm message type for ``msg_type`` (a class or ``"pkg/msg/Name"``)."""
    if msg_type is Bytes or msg_type == Bytes.type_name:
        return Bytes
    raise TypeMismatchError(
        f"cannot resolve message type {msg_type!r}: this agnoshm build carries "
        f"{Bytes.type_name} (agnoshm.Bytes) only")


def _array_at(address: int, size: int, *, writable: bool, owner) -> np.ndarray:
    """A numpy uint8 array over ``[address, address + size)`` that keeps ``owner`` alive."""
    raw = (ctypes.c_uint8 * size).from_address(address)
    raw._agnoshm_owner = owner
    buffer = memoryview(raw) if writable else memoryview(raw).toreadonly()
    return np.frombuffer(buffer, dtype=np.uint8)


class LoanedBytes:
    """A writable :class:`Bytes` message in this process's pool (from ``borrow_loaned_message``)."""

    __slots__ = ("_loan", "_seq")

    def __init__(self, loan):
        self._loan = loan
        self._seq = _SEQUENCE.from_address(loan.address)
        self._seq[0] = self._seq[1] = self._seq[2] = 0

    def _check(self):
        if not self._loan.valid:
            raise MessageInvalidatedError(
                "this loaned message was published and may not be used any more: borrow a new one")
        if self._loan.port.runtime.closed:  # its pool is unmapped: touching it would segfault
            raise MessageInvalidatedError(
                "agnoshm was shut down: this loaned message's pool is gone; borrow a new one")

    def alloc(self, field: str, n: int) -> np.ndarray:
        """Allocate ``n`` elements of sequence ``field`` in the pool; return a writable array over them."""
        self._check()
        if field != "data":
            raise AttributeError(f"{Bytes.type_name} has no field {field!r} (fields: data)")
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{Bytes.type_name}.data: length must be a non-negative int, not {n!r}")
        seq = self._seq
        if seq[0]:
            self._loan.free(seq[0])
            seq[0] = seq[1] = seq[2] = 0
        if n == 0:
            return np.empty(0, dtype=np.uint8)
        address = self._loan.allocate(n)
        seq[0], seq[1], seq[2] = address, n, n
        return _array_at(address, n, writable=True, owner=self)

    @property
    def data(self) -> np.ndarray:
        self._check()
        seq = self._seq
        if not seq[0]:
            return np.empty(0, dtype=np.uint8)
        return _array_at(seq[0], seq[1], writable=True, owner=self)

    @data.setter
    def data(self, value) -> None:
        source = np.frombuffer(value, dtype=np.uint8) if isinstance(value, (bytes, bytearray, memoryview)) \
            else np.asarray(value)
        if source.dtype != np.uint8:
            if source.size and (source.min() < 0 or source.max() > 255 or source.dtype.kind not in "iub"):
                raise ValueError(f"{Bytes.type_name}.data takes uint8 values (0..255), got dtype {source.dtype}")
            source = source.astype(np.uint8)
        self.alloc("data", int(source.size))[:] = source.ravel()

    def __repr__(self) -> str:
        if self._loan.port.runtime.closed:
            return "agnoshm.Bytes(<gone: agnoshm was shut down>)"
        return f"agnoshm.Bytes(data=<{self._seq[1]} bytes>)" if self._loan.valid else "agnoshm.Bytes(<published>)"


class ReceivedBytes:
    """A read-only :class:`Bytes` message read in place in its publisher's pool."""

    __slots__ = ("_lease", "__weakref__")

    def __init__(self, lease):
        self._lease = lease

    @property
    def data(self) -> np.ndarray:
        lease = self._lease
        if lease.port.runtime.closed:  # the pool is unmapped: touching it would segfault
            raise MessageInvalidatedError(
                "agnoshm was shut down: the publisher's pool is unmapped in this process; copy "
                "what you need before agnoshm.shutdown()")
        seq = _SEQUENCE.from_address(lease.address)
        address, size = seq[0], seq[1]
        if not size:
            return np.empty(0, dtype=np.uint8)
        if not lease.pool.contains(address, size):
            raise MessageCorruptedError(
                f"received {Bytes.type_name} points at 0x{address:x}+{size}, outside its "
                f"publisher's pool {lease.pool!r}: the publisher wrote a corrupt message")
        return _array_at(address, size, writable=False, owner=self)

    @property
    def timestamp_ns(self) -> int:
        """CLOCK_MONOTONIC nanoseconds at which the message was published."""
        return self._lease.timestamp_ns

    @property
    def seq(self) -> int:
        return self._lease.seq

    def __setattr__(self, name, value):
        if name == "_lease" and not hasattr(self, "_lease"):
            return object.__setattr__(self, name, value)
        raise AttributeError(f"received messages are read-only (setting {name!r}); copy the data to change it")

    def __repr__(self) -> str:
        if self._lease.port.runtime.closed:
            return "agnoshm.Bytes(<gone: agnoshm was shut down>)"
        seq = _SEQUENCE.from_address(self._lease.address)
        return f"agnoshm.Bytes(data=<{seq[1]} bytes>)"
