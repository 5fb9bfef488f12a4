"""Messages: types, their C layout, loaned (writable) and received (read-only) views."""

from agnoshm.msg.bytes import Bytes, LoanedBytes, ReceivedBytes, resolve_type

__all__ = ["Bytes", "LoanedBytes", "ReceivedBytes", "resolve_type"]
