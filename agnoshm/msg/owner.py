"""What a message view needs of the object that owns its message.

A view never reaches past its owner: the data plane hands one of two owners
to the view classes, and nothing in ``agnoshm.msg`` knows ports, runtimes or
the registry.  A loan (``agnoshm.transport.loan.Loan``, or its C twin) owns a
message being written in this process's pool; a lease
(``agnoshm.transport.receive.Lease``) holds a received message in its
publisher's pool for as long as any object derived from it lives.
"""

from __future__ import annotations

from typing import Protocol


class MessageOwner(Protocol):
    """The owner of a view's message (both kinds)."""

    #: the address of the message's root struct, and its size
    address: int
    size: int

    @property
    def valid(self) -> bool:
        """A loan: not yet published nor discarded.  A lease: not yet released."""

    @property
    def closed(self) -> bool:
        """agnoshm shut down in this process: the memory is gone, touch nothing."""

    @property
    def pool(self):
        """The pool that holds the message (``buffer``, ``address``, ``size``)."""


class LoanOwner(MessageOwner, Protocol):
    """The owner of a writable (loaned) view: it allocates the message's storage."""

    def allocate(self, nbytes: int) -> int:
        """A further block of the message (a string's or sequence's storage)."""

    def free(self, address: int) -> None:
        """Give back one block (re-assigned storage)."""

    def track(self, array) -> None:
        """Remember a writable array over the message; publishing makes it read-only."""


class LeaseOwner(MessageOwner, Protocol):
    """The owner of a received view."""

    #: when the message was published (CLOCK_MONOTONIC ns), and its sequence number
    timestamp_ns: int
    seq: int
    #: the publisher's record in the registry (e.g. to name its node)
    publisher: int
    #: True when it exports its pool's bytes, read-only (the buffer protocol, index 0 at
    #: ``pool.address``): arrays are then ``numpy.frombuffer(owner, ...)`` (the native Lease)
    exports_pool: bool
