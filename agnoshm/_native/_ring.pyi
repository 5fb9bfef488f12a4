"""Types of ``agnoshm._native._ring`` (built from ring.c); test/test_native.py checks them
against the module.  Offsets are byte offsets into the registry mapping that ``Region``
describes; every one is checked against its size when handed in."""

from types import ModuleType
from typing import Any

HELD: int
MOVED: int

def full_fence() -> None: ...
def set_faults(faults: ModuleType) -> None: ...

class Region:
    """The registry's mapping; closed before it is unmapped (later calls raise ValueError)."""

    closed: bool
    def __new__(cls, base: int, size: int) -> "Region": ...
    def close(self) -> None: ...

class Writer:
    """One publisher's channel: ring.py's steps (a)-(f)."""

    def __new__(cls, region: Region, capacity: int, entries: int, log: int, head: int,
                published: int, generation: int) -> "Writer": ...
    def publish(self, entry: int, seq: int, address: int, size: int, withdrawn: int) -> int: ...
    def finish(self, withdrawn: int) -> int: ...
    def set_subscriptions(self, generation: int, hold_offsets: list[int],
                          doorbell_offsets: list[int]) -> None: ...
    def forget(self) -> None: ...

class Mapping:
    """Another process's pool as this process maps it, counting the Leases into it
    (``transport/peers.py``'s ``PeerMapping`` on the pure path)."""

    pool: Any
    incarnation: int
    leases: int
    retired: bool
    def __new__(cls, incarnation: int, pool: Any) -> "Mapping": ...
    def retire(self) -> bool: ...
    def count(self) -> bool: ...
    def uncount(self) -> None: ...

class Lease:
    """A received message's hold (``receive.Lease`` on the pure path); released exactly
    once, by ``release()`` or when the last reference dies."""

    port: Any
    mapping: Mapping
    publisher: int
    hold: int
    seq: int
    address: int
    size: int
    timestamp_ns: int
    pool: Any
    valid: bool
    closed: bool
    #: True: it exports its pool's bytes, read-only (the buffer protocol), for numpy
    exports_pool: bool
    def release(self) -> None: ...

class Reader:
    """One subscription's receipts: ring.py's steps (1)-(5), handing out Leases."""

    held: int
    received: int
    corrupted: int
    def __new__(cls, region: Region, capacity: int, depth: int, generation: int, received: int,
                held: int, incarnation_at: int, incarnation: int) -> "Reader": ...
    def take(self, port: Any, max_count: int, check: bool = True,
             resolve: bool = True) -> list[Lease] | None: ...
    def mark_destroyed(self) -> None: ...
    def has_data(self) -> bool: ...
    def set_channels(self, generation: int, channels: list) -> None: ...
    def sync_cursors(self) -> None: ...
    def forget(self) -> None: ...

class Futex:
    """A shared 32-bit futex word (a process's doorbell)."""

    def __new__(cls, address: int) -> "Futex": ...
    def ring(self) -> None: ...
    def wait(self, expected: int, timeout_sec: float | None) -> None: ...
    def value(self) -> int: ...
