"""The ``c-floor`` program (issue 19): compiled here with the machine's C compiler, run as two C
processes, its latencies read back; skipped with the reason when there is no compiler or it
fails.  Shapes and sanity only, never speed."""

from __future__ import annotations

import os

import pytest

from agnoshm.bench import BenchError, Settings
from agnoshm.bench.c_floor import LABEL, TRANSPORT, CFloor, find_compiler

SETTINGS = Settings(samples=5, warmup=2, interval_s=0.0)


@pytest.fixture
def sut():
    program = CFloor(SETTINGS)
    yield program
    program.close()


def test_the_program_measures_every_message_at_each_size(sut):
    if find_compiler() is None:
        pytest.skip("no C compiler on this machine (the skip path is tested below)")
    assert sut.missing is None
    for size in (16, 64, 1 << 20):
        row = sut.latency(size)
        assert (row["transport"], row["label"], row["size"], row["count"]) == (
            TRANSPORT, LABEL, size, 5)
        assert 0 < row["min_us"] <= row["p50_us"] <= row["p99_us"] <= row["max_us"], row
        assert row["receiver_cpu_per_s"] >= 0


def test_close_removes_the_program_and_its_folder(sut):
    folder = sut.folder
    sut.close()
    assert not os.path.exists(folder)


def test_without_a_compiler_the_row_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    sut = CFloor(SETTINGS)
    try:
        assert sut.missing == ("no C compiler found (looked for CC=/nonexistent/cc): install one "
                               "(Debian/Ubuntu: apt install gcc) or set CC")
    finally:
        sut.close()


def test_a_failing_compiler_is_named_with_its_last_error_line(tmp_path, monkeypatch):
    compiler = tmp_path / "broken-cc"
    compiler.write_text("#!/bin/sh\necho 'warming up' >&2\necho 'fatal: no stdatomic.h' >&2\n"
                        "exit 1\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("CC", str(compiler))
    sut = CFloor(SETTINGS)
    try:
        assert sut.missing == f"the C compiler {compiler} failed: fatal: no stdatomic.h"
    finally:
        sut.close()


def test_a_run_that_fails_raises_with_the_programs_words(sut):
    if find_compiler() is None:
        pytest.skip("no C compiler on this machine")
    with pytest.raises(BenchError, match="SIZE must be at least 16"):
        sut.latency(8)
