"""The allocator's kept blocks: ``agnoshm.memory.spares.BlockCache`` (the reference) and
its C twin ``agnoshm._native._ring.BlockCache`` answer every case the same.

Every case runs on both; a differential run feeds both the same random operations;
threads allocate and free through one cache at once on both.
"""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agnoshm import _native
from agnoshm.memory.spares import BlockCache

NOT_BUILT = f"the native extension is not built here ({_native.MISSING})"
needs_native = pytest.mark.skipif(_native.MISSING is not None, reason=NOT_BUILT)


class Allocator:
    """The allocator behind a cache: hands out fresh addresses, records what it gets back."""

    def __init__(self):
        self.next = 0x10000
        self.given_back: list[int] = []
        self.lock = threading.Lock()

    def allocate_new(self, nbytes: int) -> int:
        with self.lock:
            address, self.next = self.next, self.next + 0x1000
            return address

    def give_back(self, address: int) -> None:
        with self.lock:
            self.given_back.append(address)


def _pure(per_size, max_bytes, allocator):
    return BlockCache(per_size, max_bytes, allocator.allocate_new, allocator.give_back)


def _c_twin(per_size, max_bytes, allocator):
    return _native._ring.BlockCache(per_size, max_bytes, allocator.allocate_new,
                                    allocator.give_back)


@pytest.fixture(params=[pytest.param(_pure, id="pure"),
                        pytest.param(_c_twin, id="native", marks=needs_native)])
def make(request):
    """``make(per_size, max_bytes) -> (cache, its Allocator)`` on the path under test."""
    def make(per_size: int = 4, max_bytes: int = 1 << 20):
        allocator = Allocator()
        return request.param(per_size, max_bytes, allocator), allocator
    return make


def test_an_empty_cache_asks_the_allocator(make):
    sut, allocator = make()
    assert sut.kept() == [] and sut.drain() == [] and sut.spare_bytes == 0
    assert sut.allocate(64) == 0x10000 and sut.allocate(64) == 0x11000
    assert sut.size_of(0x10000) == 64 and sut.size_of(0x99000) == 0


def test_a_freed_block_is_kept_and_handed_out_again_for_its_size_only(make):
    sut, allocator = make()
    address = sut.allocate(64)
    sut.free(address)
    assert allocator.given_back == []
    assert sut.size_of(address) == 0 and sut.kept() == [address] and sut.spare_bytes == 64
    assert sut.allocate(65) != address  # another size never gets it
    assert sut.allocate(64) == address
    assert sut.size_of(address) == 64 and sut.spare_bytes == 0 and sut.kept() == []


def test_kept_blocks_are_handed_out_last_in_first_out(make):
    sut, _ = make()
    first, second, third = (sut.allocate(64) for _ in range(3))
    for address in (first, second, third):
        sut.free(address)
    assert [sut.allocate(64) for _ in range(3)] == [third, second, first]


def test_past_per_size_blocks_a_freed_block_goes_back_to_the_allocator(make):
    sut, allocator = make(per_size=2)
    blocks = [sut.allocate(64) for _ in range(3)]
    for address in blocks:
        sut.free(address)
    assert allocator.given_back == [blocks[2]]
    assert sut.size_of(blocks[2]) == 0  # no longer live
    assert sorted(sut.kept()) == blocks[:2]


def test_past_max_bytes_a_freed_block_goes_back_to_the_allocator(make):
    sut, allocator = make(per_size=8, max_bytes=100)
    first, second = sut.allocate(60), sut.allocate(60)
    sut.free(first)
    sut.free(second)  # 120 bytes would pass max_bytes
    assert allocator.given_back == [second] and sut.spare_bytes == 60


def test_a_block_freed_twice_or_never_allocated_raises_key_error(make):
    sut, allocator = make()
    address = sut.allocate(64)
    sut.free(address)
    with pytest.raises(KeyError) as twice:
        sut.free(address)
    with pytest.raises(KeyError) as never:
        sut.free(0x99000)
    assert twice.value.args == (address,) and never.value.args == (0x99000,)
    assert sut.kept() == [address] and sut.spare_bytes == 64 and allocator.given_back == []


def test_the_allocators_error_reaches_the_caller_and_nothing_is_recorded(make):
    sut, allocator = make()
    allocator.next = None  # the next allocate_new raises TypeError (None + 0x1000)
    with pytest.raises(TypeError):
        sut.allocate(64)
    assert sut.kept() == [] and sut.size_of(0x10000) == 0


def test_drain_forgets_every_kept_block_and_returns_them(make):
    sut, _ = make()
    blocks = [sut.allocate(64), sut.allocate(64), sut.allocate(128)]
    for address in blocks:
        sut.free(address)
    assert sorted(sut.drain()) == blocks
    assert sut.kept() == [] and sut.spare_bytes == 0


def test_the_limits_are_readable(make):
    sut, _ = make(per_size=3, max_bytes=999)
    assert (sut.per_size, sut.max_bytes) == (3, 999)


def test_a_cache_and_its_allocator_holding_each_other_are_collected(make):
    """PoolAllocator holds its cache, which holds the allocator's bound methods."""
    sut, allocator = make()
    allocator.cache = sut
    gone = weakref.ref(allocator)
    del sut, allocator
    gc.collect()
    assert gone() is None


@needs_native
def test_the_c_twin_refuses_negative_limits_and_functions_that_are_not_callable():
    allocator = Allocator()
    with pytest.raises(ValueError):
        _c_twin(-1, 10, allocator)
    with pytest.raises(TypeError):
        _native._ring.BlockCache(4, 100, 8, allocator.give_back)


_OPERATIONS = st.lists(st.tuples(st.sampled_from(["allocate", "free", "drain"]),
                                 st.sampled_from([8, 64, 4096]), st.integers(0, 50)),
                       max_size=120)


@needs_native
@settings(max_examples=150, deadline=None)
@given(_OPERATIONS)
def test_both_twins_give_the_same_answers_to_the_same_operations(operations):
    pure_allocator, native_allocator = Allocator(), Allocator()
    pure, native = _pure(3, 10_000, pure_allocator), _c_twin(3, 10_000, native_allocator)
    live: list[int] = []
    for op, size, pick in operations:
        if op == "allocate":
            address = pure.allocate(size)
            assert native.allocate(size) == address
            live.append(address)
        elif op == "free" and live:
            address = live.pop(pick % len(live))
            pure.free(address)
            native.free(address)
        elif op == "drain":
            assert sorted(native.drain()) == sorted(pure.drain())
        assert native.spare_bytes == pure.spare_bytes
        assert sorted(native.kept()) == sorted(pure.kept())
        assert native_allocator.given_back == pure_allocator.given_back
    for address in live:
        assert native.size_of(address) == pure.size_of(address) > 0


def test_threads_never_get_one_block_twice(make):
    """Four threads allocate and free through one cache at once; no block is handed to two
    threads, and every block is accounted for at the end."""
    sut, allocator = make()
    lock = threading.Lock()
    owner: dict[int, int | None] = {}
    errors: list[str] = []
    start = threading.Barrier(4)

    def work(me: int) -> None:
        start.wait()
        held = []
        for i in range(3000):
            address = sut.allocate(64)
            with lock:
                if owner.get(address) is not None:
                    errors.append(f"0x{address:x} handed to {me} while {owner[address]} held it")
                owner[address] = me
            held.append(address)
            if i % 3 != 2:
                address = held.pop(0)
                with lock:
                    owner[address] = None
                sut.free(address)
        for address in held:
            with lock:
                owner[address] = None
            sut.free(address)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    kept = sut.kept()
    made = (allocator.next - 0x10000) // 0x1000
    assert len(kept) == len(set(kept)) <= 4
    assert sorted(kept + allocator.given_back) == [0x10000 + 0x1000 * k for k in range(made)]
