"""numpy arrays over a message's bytes in a pool, each keeping the message's owner alive.

Every numpy array handed out keeps its owner alive (a ctypes array over the
bytes carries it), so a received message stays referenced, and its bytes
unchanged, while any array derived from it lives.  A big received array also sets
the release policy: its lease is released at once rather than in a batch.
"""

from __future__ import annotations

import numpy as np


__all__ = ["PoolBytes", "pool_array", "set_native", "native"]

_native = None  # the C extension of the message path that runs (set_native), or None
_span = None  # its PoolSpan
native_loan = None  # its Loan type (what a native port loans), or None


def set_native(module) -> None:
    """Set the C extension of the message path this process runs (``agnoshm.init`` does),
    or None for the pure-Python path: arrays over messages, and the getters of view
    classes made from now on, use its buffers where it runs."""
    global _native, _span, native_loan
    _native = module
    _span, native_loan = (None, None) if module is None else (module.PoolSpan, module.Loan)


def native():
    """The C extension set by :func:`set_native`, or None."""
    return _native


class PoolBytes:
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
    span = _span
    if span is not None:  # the native path: a C buffer holding the owner, a third the cost
        array = np.frombuffer(span(owner, address, nbytes, writable), dtype, count)
        if writable:
            owner.track(array)
        return array
    holder = PoolBytes()
    holder.owner = owner
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

