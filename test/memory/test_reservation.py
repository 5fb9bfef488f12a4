"""The address-range reservation: PROT_NONE, exclusive, given back after use."""

from __future__ import annotations

import errno

import pytest

from agnoshm import _libc
from agnoshm.errors import AddressRangeInUseError, AgnoshmError
from agnoshm.memory.reservation import AddressReservation

BASE = 0x300000000000  # far from the runtime's default range (0x100000000000)
SIZE = 8 << 30
PAGE = 4096


def mapping_at(address: int) -> tuple[int, int, str] | None:
    """``(start, end, perms)`` of the mapping holding ``address`` in this process, or None."""
    with open("/proc/self/maps") as f:
        for line in f:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if start <= address < end:
                return start, end, perms
    return None


@pytest.fixture
def sut():
    reservation = AddressReservation(BASE, SIZE)
    yield reservation
    reservation.close()


def test_reservation_maps_the_whole_range_inaccessible(sut):
    start, end, perms = mapping_at(BASE)
    assert (start, end) == (BASE, BASE + SIZE)
    assert perms.startswith("---")


def test_reservation_costs_no_memory(sut):
    with open("/proc/self/smaps") as f:
        text = f.read()
    header = f"{BASE:x}-{BASE + SIZE:x}"
    block = text[text.index(header):].split("\n")
    rss = next(line for line in block if line.startswith("Rss:"))
    assert rss.split()[1] == "0"


def test_reserving_an_occupied_range_raises_address_range_in_use(sut):
    with pytest.raises(AddressRangeInUseError) as info:
        AddressReservation(BASE, SIZE)
    assert isinstance(info.value, AgnoshmError) and isinstance(info.value, OSError)
    assert info.value.errno == errno.EEXIST
    assert "AGNOSHM_BASE_ADDRESS" in str(info.value)
    assert mapping_at(BASE)[:2] == (BASE, BASE + SIZE), "the failed attempt touched the range"


def test_reserving_a_range_that_overlaps_by_one_page_is_refused(sut):
    with pytest.raises(AddressRangeInUseError):
        AddressReservation(BASE + SIZE - PAGE, 2 * PAGE)


def test_contains_is_true_only_inside_the_range(sut):
    assert sut.contains(BASE, SIZE)
    assert sut.contains(BASE + PAGE, PAGE)
    assert not sut.contains(BASE - PAGE, PAGE)
    assert not sut.contains(BASE + SIZE - PAGE, 2 * PAGE)


def test_give_back_restores_the_reservation_over_a_mapped_slot(sut):
    slot = BASE + (1 << 30)
    flags = _libc.MAP_SHARED | _libc.MAP_ANONYMOUS | _libc.MAP_FIXED
    _libc.mmap(slot, 1 << 20, _libc.PROT_READ | _libc.PROT_WRITE, flags, -1, 0)
    assert mapping_at(slot)[2].startswith("rw")
    sut.give_back(slot, 1 << 20)
    assert mapping_at(slot)[2].startswith("---")
    noreplace = _libc.MAP_PRIVATE | _libc.MAP_ANONYMOUS | _libc.MAP_FIXED_NOREPLACE
    with pytest.raises(FileExistsError):  # still reserved: nobody else can land there
        _libc.mmap(slot, PAGE, _libc.PROT_READ, noreplace, -1, 0)


def test_close_frees_the_range_and_is_idempotent():
    sut = AddressReservation(BASE, SIZE)
    sut.close()
    sut.close()
    assert mapping_at(BASE) is None
    again = AddressReservation(BASE, SIZE)  # the range is free for a new reservation
    again.close()


def test_close_is_safe_after_a_failed_init(sut):
    with pytest.raises(AddressRangeInUseError):
        AddressReservation(BASE, SIZE)
    failed = AddressReservation.__new__(AddressReservation)
    failed.close()  # class-level defaults: nothing to undo, nothing unmapped
    assert mapping_at(BASE)[:2] == (BASE, BASE + SIZE)


def test_repr_shows_the_range(sut):
    assert repr(sut) == f"AddressReservation(0x{BASE:x}..0x{BASE + SIZE:x})"
