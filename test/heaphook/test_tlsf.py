"""Tests of the TLSF pool allocator: alignment, exhaustion, misuse, invariants, fragmentation."""

from __future__ import annotations

import bisect
import collections
import math
import random
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from heaphook import (
    LARGE_ALIGNMENT,
    LARGE_BLOCK,
    MIN_ALIGNMENT,
    OutOfPoolMemory,
    TlsfAllocator,
    alignment_for,
)

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30


def round16(n: int) -> int:
    return (n + 15) & -16


class Model:
    """What the allocator should look like from outside: the live blocks, kept sorted."""

    def __init__(self, sut: TlsfAllocator) -> None:
        self.sut = sut
        self.requested: dict[int, int] = {}
        self.starts: list[int] = []
        self.used = 0

    def allocate(self, nbytes: int) -> int:
        off = self.sut.allocate(nbytes)
        size = self.sut.size_of(off)
        assert off not in self.requested, f"offset {off} handed out twice"
        assert off % alignment_for(nbytes) == 0
        assert size >= round16(nbytes) and size % MIN_ALIGNMENT == 0
        assert self.sut.start <= off and off + size <= self.sut.end
        assert self.sut.high_water >= off + size
        i = bisect.bisect(self.starts, off)
        if i:
            prev = self.starts[i - 1]
            assert prev + self.sut.size_of(prev) <= off, f"block {off} overlaps block {prev}"
        if i < len(self.starts):
            assert off + size <= self.starts[i], f"block {off} overlaps block {self.starts[i]}"
        self.starts.insert(i, off)
        self.requested[off] = nbytes
        self.used += size
        return off

    def free(self, off: int) -> None:
        self.used -= self.sut.size_of(off)
        self.sut.free(off)
        del self.requested[off]
        del self.starts[bisect.bisect_left(self.starts, off)]

    def check(self) -> None:
        sut = self.sut
        assert sut.allocated_blocks == len(self.requested)
        assert sut.used_bytes == self.used
        assert sut.used_bytes + sut.free_bytes == sut.end - sut.start
        assert 0 <= sut.largest_free_block <= sut.free_bytes
        assert 0.0 <= sut.fragmentation() <= 1.0

    def free_all(self) -> None:
        for off in list(self.requested):
            self.free(off)


def test_alignment_for_gives_16_below_4096_and_64_from_4096_on():
    assert (MIN_ALIGNMENT, LARGE_ALIGNMENT, LARGE_BLOCK) == (16, 64, 4096)
    assert [alignment_for(n) for n in (1, 16, 4095, 4096, 4097, GiB)] == [16, 16, 16, 64, 64, 64]


@pytest.mark.parametrize("shift", [16, 32, 48, 64])
def test_every_offset_is_16_aligned_and_large_requests_are_64_aligned(shift):
    sut = TlsfAllocator(GiB)
    model = Model(sut)
    sizes = list(range(1, 5000, 7)) + [LARGE_BLOCK - 1, LARGE_BLOCK, LARGE_BLOCK + 1]
    sizes += [random.Random(shift).randrange(1, 4 * MiB) for _ in range(200)]
    for nbytes in sizes:
        model.allocate(shift)  # knock the next free block off 64-byte alignment
        model.allocate(nbytes)  # asserts the alignment rule
    model.check()


def test_large_requests_stay_64_aligned_when_small_fragments_are_reused():
    sut = TlsfAllocator(64 * MiB)
    model = Model(sut)
    rng = random.Random(7)
    for _ in range(3000):
        if model.requested and rng.random() < 0.45:
            model.free(rng.choice(model.starts))
        else:
            model.allocate(rng.choice([16, 32, 48, 4096, 4100, 10_000, 70_000]))
    model.check()


def test_block_sizes_are_requests_rounded_up_to_16():
    sut = TlsfAllocator(MiB)
    sizes = [sut.size_of(sut.allocate(n)) for n in (1, 16, 17, 100, 4096, 4097)]
    assert sizes == [16, 16, 32, 112, 4096, 4112]


def test_allocating_until_exhausted_raises_out_of_pool_memory_naming_the_request():
    sut = TlsfAllocator(MiB)
    offsets = []
    with pytest.raises(OutOfPoolMemory) as caught:
        while True:
            offsets.append(sut.allocate(1000))
    message = str(caught.value)
    assert "1000 bytes" in message
    assert f"{sut.free_bytes} bytes free" in message
    assert f"largest free block {sut.largest_free_block} bytes" in message
    assert f"pool size {MiB} bytes" in message
    assert "create a larger allocator or free blocks" in message
    assert isinstance(caught.value, MemoryError)
    assert caught.value.requested == 1000
    assert len(offsets) == MiB // 1008


def test_after_freeing_everything_one_allocation_of_the_whole_pool_succeeds():
    sut = TlsfAllocator(MiB)
    model = Model(sut)
    rng = random.Random(3)
    try:
        while True:
            model.allocate(rng.randrange(1, 20 * KiB))
    except OutOfPoolMemory:
        pass
    for off in rng.sample(model.starts, len(model.starts)):
        model.free(off)
    assert sut.free_bytes == sut.largest_free_block == MiB
    assert sut.fragmentation() == 0.0
    whole = sut.allocate(MiB)
    assert (whole, sut.size_of(whole), sut.free_bytes) == (0, MiB, 0)


def test_a_request_bigger_than_the_pool_raises_out_of_pool_memory():
    sut = TlsfAllocator(MiB)
    with pytest.raises(OutOfPoolMemory, match=f"cannot allocate {MiB + 1} bytes"):
        sut.allocate(MiB + 1)
    with pytest.raises(OutOfPoolMemory):
        sut.allocate(1 << 80)
    assert sut.free_bytes == MiB


def test_freeing_twice_raises_value_error_naming_the_offset():
    sut = TlsfAllocator(MiB)
    off = sut.allocate(4 * KiB)
    sut.allocate(100)
    sut.free(off)
    with pytest.raises(ValueError, match=f"free\\({off}\\)"):
        sut.free(off)


@pytest.mark.parametrize("foreign", [16, 17, 5 * MiB, -64, "0", None])
def test_freeing_a_foreign_offset_raises_value_error_naming_it(foreign):
    sut = TlsfAllocator(MiB)
    sut.allocate(100)
    with pytest.raises(ValueError, match=f"free\\({foreign!r}\\)"):
        sut.free(foreign)
    assert sut.allocated_blocks == 1


@pytest.mark.parametrize("nbytes", [0, -1])
def test_a_non_positive_request_raises_value_error_naming_it(nbytes):
    with pytest.raises(ValueError, match=f"got {nbytes}"):
        TlsfAllocator(MiB).allocate(nbytes)


@pytest.mark.parametrize("nbytes", ["16", 1.5, True, None])
def test_a_non_integer_request_raises_type_error_naming_it(nbytes):
    with pytest.raises(TypeError, match=f"got {nbytes!r}"):
        TlsfAllocator(MiB).allocate(nbytes)


def test_a_numpy_integer_request_is_accepted():
    sut = TlsfAllocator(MiB)
    assert sut.size_of(sut.allocate(np.int64(100))) == 112


def test_size_of_an_unallocated_offset_raises_value_error():
    with pytest.raises(ValueError, match="size_of\\(32\\)"):
        TlsfAllocator(MiB).size_of(32)


def test_reserve_front_is_rounded_up_to_64_and_never_handed_out():
    sut = TlsfAllocator(MiB, reserve_front=100)
    assert (sut.start, sut.end, sut.free_bytes) == (128, MiB, MiB - 128)
    offsets = []
    with pytest.raises(OutOfPoolMemory):
        while True:
            offsets.append(sut.allocate(16))
    assert min(offsets) == 128
    assert len(offsets) == (MiB - 128) // 16
    for off in offsets:
        sut.free(off)
    assert sut.largest_free_block == MiB - 128


def test_a_pool_too_small_for_its_reserve_is_rejected():
    with pytest.raises(ValueError, match="leaves nothing"):
        TlsfAllocator(128, reserve_front=120)


def test_high_water_only_grows_and_covers_every_block_handed_out():
    sut = TlsfAllocator(MiB)
    assert sut.high_water == 0
    a = sut.allocate(100)
    b = sut.allocate(5000)
    assert sut.high_water == b + sut.size_of(b)
    sut.free(b)
    sut.free(a)
    assert sut.high_water == b + 5008
    sut.allocate(16)
    assert sut.high_water == b + 5008


def test_repr_names_size_used_and_free():
    sut = TlsfAllocator(MiB)
    sut.allocate(10)
    assert repr(sut) == f"TlsfAllocator(size={MiB}, used=16, free={MiB - 16}, blocks=1)"


def random_size(rng: random.Random) -> int:
    if rng.random() < 0.02:
        return rng.randrange(MiB, 8 * MiB)
    return int(2 ** rng.uniform(0, 20))  # 1 B .. 1 MiB, log-uniform


def test_random_allocate_and_free_keeps_every_block_apart_and_the_books_balanced():
    sut = TlsfAllocator(128 * MiB, reserve_front=4 * KiB)
    model = Model(sut)
    rng = random.Random(20240601)
    out_of_memory = 0
    for _ in range(20_000):
        if model.requested and rng.random() < 0.48:
            model.free(rng.choice(model.starts))
        else:
            nbytes = random_size(rng)
            try:
                model.allocate(nbytes)
            except OutOfPoolMemory:
                out_of_memory += 1
                # Good fit: a block one size class (1/32) above the request would have been found.
                assert sut.largest_free_block < (round16(nbytes) + 48) * 33 // 32 + 16
        model.check()
    assert out_of_memory < 2000
    model.free_all()
    model.check()
    assert sut.allocated_blocks == 0
    assert sut.largest_free_block == sut.free_bytes == sut.end - sut.start


class AllocatorMachine(RuleBasedStateMachine):
    """Hypothesis drives allocate/free on a small pool; the model checks every step."""

    @initialize(reserve_front=st.integers(0, 300), pool_kib=st.integers(1, 512))
    def make_pool(self, reserve_front, pool_kib):
        self.sut = TlsfAllocator(pool_kib * KiB + reserve_front + 64, reserve_front=reserve_front)
        self.model = Model(self.sut)

    @rule(
        nbytes=st.one_of(
            st.integers(1, 600),
            st.integers(LARGE_BLOCK - 64, LARGE_BLOCK + 64),
            st.integers(1, 300 * KiB),
        )
    )
    def allocate(self, nbytes):
        try:
            self.model.allocate(nbytes)
        except OutOfPoolMemory as error:
            assert error.requested == nbytes
            assert self.sut.largest_free_block < (round16(nbytes) + 48) * 33 // 32 + 16

    @precondition(lambda self: self.model.requested)
    @rule(data=st.data())
    def free(self, data):
        self.model.free(data.draw(st.sampled_from(self.model.starts)))

    @invariant()
    def books_balance(self):
        self.model.check()

    def teardown(self):
        self.model.free_all()
        assert self.sut.largest_free_block == self.sut.free_bytes == self.sut.end - self.sut.start


AllocatorMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=60, deadline=None, database=None
)
test_allocator_state_machine_keeps_its_invariants = AllocatorMachine.TestCase


Topic = tuple[Callable[[random.Random], int], int]  # (message size drawer, history depth)


def run_fifo_workload(
    sut: TlsfAllocator, topics: list[Topic], messages: int, rng: random.Random
) -> tuple[list[float], list[float], int]:
    """Publish ``messages`` times round-robin over topics; each topic keeps ``depth`` messages (FIFO).

    :returns: (fragmentation samples, payload/used samples, peak payload).
    """
    queues = [collections.deque() for _ in topics]
    payload = 0
    peak_payload = 0
    frag, internal = [], []
    for i in range(messages):
        t = i % len(topics)
        size_of_message, depth = topics[t]
        queue = queues[t]
        if len(queue) == depth:
            off, nbytes = queue.popleft()
            sut.free(off)
            payload -= nbytes
        nbytes = size_of_message(rng)
        queue.append((sut.allocate(nbytes), nbytes))
        payload += nbytes
        peak_payload = max(peak_payload, payload)
        frag.append(sut.fragmentation())
        internal.append(payload / sut.used_bytes)
    return frag, internal, peak_payload


def log_uniform(lo: int, hi: int):
    return lambda rng: int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


@pytest.mark.parametrize(
    "workload, topics",
    [
        ("one topic, log-uniform 64 B..16 MiB, depth 32", [(log_uniform(64, 16 * MiB), 32)]),
        (
            "robot: camera/depth/lidar/imu/tf, image-like sizes",
            [
                (lambda rng: rng.choice([640 * 480 * 3, 1280 * 720 * 3, 1920 * 1080 * 3]), 10),
                (lambda rng: 640 * 480 * 2, 10),
                (log_uniform(1 * MiB, 4 * MiB), 5),
                (lambda rng: 320, 100),
                (log_uniform(64, 8 * KiB), 50),
            ],
        ),
    ],
)
def test_fragmentation_of_a_fifo_image_workload_is_reported(workload, topics):
    sut = TlsfAllocator(2 * GiB)
    frag, internal, peak_payload = run_fifo_workload(sut, topics, 20_000, random.Random(1))
    assert all(0.0 <= f <= 1.0 for f in frag)
    print(
        f"\n[heaphook] {workload}: fragmentation final {frag[-1]:.4f}, mean {sum(frag) / len(frag):.4f}, "
        f"max {max(frag):.4f}; payload/used bytes mean {sum(internal) / len(internal):.5f}, "
        f"min {min(internal):.5f}; peak payload/high water {peak_payload / sut.high_water:.3f} "
        f"(high water {sut.high_water / MiB:.1f} MiB)"
    )
