"""The agnoshm address range, reserved in every process before anything maps there.

The whole range (one pool slot per possible process) is mapped ``PROT_NONE``,
``MAP_NORESERVE`` and ``MAP_FIXED_NOREPLACE`` at start, so neither the Python
allocator, numpy nor any library can land inside it; pools are later mapped
over their slot with ``MAP_FIXED``, and a slot that is given back is reserved
again.  The reservation costs address space only, no memory.
"""

from __future__ import annotations

import errno

from agnoshm import _libc
from agnoshm.errors import AddressRangeInUseError


class AddressReservation:
    """``[base, base + size)`` held ``PROT_NONE`` in this process."""

    _active = False  # class-level default: close() is safe after a failed __init__

    def __init__(self, base: int, size: int):
        self.base = base
        self.size = size
        flags = (_libc.MAP_PRIVATE | _libc.MAP_ANONYMOUS | _libc.MAP_NORESERVE
                 | _libc.MAP_FIXED_NOREPLACE)
        try:
            got = _libc.mmap(base, size, _libc.PROT_NONE, flags, -1, 0)
        except OSError as err:
            if err.errno == errno.EEXIST:
                raise AddressRangeInUseError(
                    errno.EEXIST,
                    f"the agnoshm address range 0x{base:x}..0x{base + size:x} is already mapped in "
                    "this process (a library or a second agnoshm runtime took it): set another "
                    "base_address (AGNOSHM_BASE_ADDRESS) for every process of this ROS domain",
                ) from err
            raise
        if got != base:  # a kernel older than 4.17 treats NOREPLACE as a hint
            _libc.munmap(got, size)
            raise AddressRangeInUseError(
                errno.EEXIST,
                f"could not reserve 0x{base:x}: the kernel placed it at 0x{got:x}; agnoshm needs "
                "Linux >= 4.17 (MAP_FIXED_NOREPLACE) and a free range (AGNOSHM_BASE_ADDRESS)",
            )
        self._active = True

    def contains(self, address: int, size: int) -> bool:
        return self.base <= address and address + size <= self.base + self.size

    def give_back(self, address: int, size: int) -> None:
        """Replace whatever is mapped at ``[address, address + size)`` by the reservation."""
        flags = _libc.MAP_PRIVATE | _libc.MAP_ANONYMOUS | _libc.MAP_NORESERVE | _libc.MAP_FIXED
        _libc.mmap(address, size, _libc.PROT_NONE, flags, -1, 0)

    def close(self) -> None:
        """Unmap the whole range (and every pool mapped inside it)."""
        if self._active:
            self._active = False
            _libc.munmap(self.base, self.size)

    def __repr__(self) -> str:
        return f"AddressReservation(0x{self.base:x}..0x{self.base + self.size:x})"
