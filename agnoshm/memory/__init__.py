"""Memory layer: address reservation, pools for both backends, allocation."""

from __future__ import annotations

from agnoshm.memory import memfd, shm
from agnoshm.memory.pool import Pool, PoolAllocator
from agnoshm.memory.reservation import AddressReservation

BACKENDS = {shm.BACKEND: shm, memfd.BACKEND: memfd}

__all__ = ["AddressReservation", "BACKENDS", "Pool", "PoolAllocator", "memfd", "shm"]
