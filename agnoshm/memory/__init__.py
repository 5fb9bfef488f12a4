"""Memory layer: address reservation, pools and their backends, allocation.

``BACKENDS`` is the one table of pool backends (``memory/backend.py`` says what a
backend is): a new backend is one module and one entry here.
"""

from __future__ import annotations

from agnoshm.memory.backend import PoolBackend
from agnoshm.memory.memfd import MEMFD
from agnoshm.memory.pool import Pool, PoolAllocator
from agnoshm.memory.reservation import AddressReservation
from agnoshm.memory.shm import SHM

BACKENDS: dict[str, PoolBackend] = {b.name: b for b in (SHM, MEMFD)}
#: the same backends by the code the registry stores (ProcessRecord.backend)
BACKEND_CODES: dict[int, PoolBackend] = {b.code: b for b in BACKENDS.values()}

__all__ = ["AddressReservation", "BACKENDS", "BACKEND_CODES", "Pool", "PoolAllocator",
           "PoolBackend"]
