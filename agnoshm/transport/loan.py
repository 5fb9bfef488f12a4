"""A message being written: the pool blocks of one loan, until it is published.

:class:`Loan` is the owner of a loaned view (:class:`agnoshm.msg.owner.LoanOwner`).
A pure-Python :class:`~agnoshm.transport.publish.PublisherPort` makes these; a
native port makes its twin in C (``agnoshm/_native/loan.c``), with the same
attributes, methods, results and errors.
"""

from __future__ import annotations

import weakref
from operator import attrgetter

from agnoshm.errors import MessageInvalidatedError, PoolExhaustedError


class Loan:
    """The pool blocks of one message being written; invalid after publish.

    Only :meth:`~agnoshm.transport.publish.PublisherPort.loan` makes them, storing the
    slots itself (no ``__init__`` call).
    """

    __slots__ = ("port", "pool", "address", "size", "blocks", "valid", "arrays", "pinned",
                 "__weakref__")
    # blocks: the root and every further block; arrays: None, or weak references to the
    # writable arrays handed out; pinned: published while such arrays lived
    #: Whether agnoshm shut down in this process (the pool is gone): no Python frame.
    closed = property(attrgetter("port.runtime.closed"))

    def track(self, array) -> None:
        """Remember a writable array over this message; publishing makes it read-only."""
        if self.arrays is None:
            self.arrays = []
        self.arrays.append(weakref.ref(array))

    def _freeze_arrays(self) -> bool:
        """Make the arrays handed out read-only; return True if any is still alive."""
        # Published bytes belong to the subscribers now: a write through an array the
        # publisher kept would change what they read (invariant 3).
        alive = False
        for ref in self.arrays:
            array = ref()
            if array is not None:
                array.flags.writeable = False
                alive = True
        self.arrays = None
        return alive

    def allocate(self, nbytes: int) -> int:
        """Allocate a further block of this message; raise once published or shut down."""
        port = self.port
        if not self.valid or port.runtime.closed:
            raise MessageInvalidatedError("this loan was published, or agnoshm shut down")
        try:
            address = port.allocator.allocate(nbytes)
        except PoolExhaustedError:
            address = port.allocate_after_reclaim(nbytes)
        self.blocks.append(address)
        return address

    def free(self, address: int) -> None:
        """Give back one block of this message (re-assigned storage)."""
        self.blocks.remove(address)
        self.port.allocator.free(address)

    def __del__(self):
        try:
            if self.pinned:  # the last array kept from this message is gone
                self.port.unpinned.append(self.address)
            if self.valid:  # borrowed, never published, dropped: give the memory back
                self.discard()
        except Exception:
            pass

    def discard(self) -> None:
        """Return an unpublished loan's blocks to the pool."""
        if self.valid:
            self.valid = False
            for address in self.blocks:
                self.port.allocator.free(address)
            self.blocks = []
