"""The checks every view access makes: the owner still usable, pointers inside the pool."""

from __future__ import annotations

from agnoshm.errors import MessageInvalidatedError

__all__ = ["MessageCorruptedError", "check_loan", "check_received", "check_range"]


class MessageCorruptedError(MessageInvalidatedError):
    """Raised when a received message points outside its publisher's pool."""



def check_loan(view) -> None:
    loan = view._owner
    if not loan.valid:
        raise MessageInvalidatedError(
            f"this loaned {view._type_name} was published and may not be used any more: borrow a "
            "new one with borrow_loaned_message()")
    if loan.closed:
        raise MessageInvalidatedError(
            f"agnoshm was shut down: this loaned {view._type_name}'s pool is gone")


def check_received(view) -> None:
    if view._owner.closed:
        raise MessageInvalidatedError(
            f"agnoshm was shut down: the pool of this received {view._type_name} is unmapped here; "
            "copy what you need before agnoshm.shutdown()")


def check_range(view, address: int, nbytes: int, where: str) -> None:
    if address < view._base or address + nbytes > view._end:
        raise MessageCorruptedError(
            f"received {where} points at 0x{address:x}+{nbytes}, outside its publisher's pool "
            f"0x{view._base:x}..0x{view._end:x}: the publisher wrote a corrupt message")

