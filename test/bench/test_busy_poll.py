"""The busy-poll comparison (:mod:`agnoshm.bench.busy_poll`) with real processes and a few
samples: agnoshm's native rows alternate with its pure-Python rows, or are skipped with the
reason when the extension is not built.  Shapes and order only, never speed."""

from __future__ import annotations

import pytest

from agnoshm import _native
from agnoshm.bench import Settings, busy_poll

SETTINGS = Settings(samples=5, warmup=2, interval_s=0.001, busy_poll_us=100,
                    busy_poll_sizes=(64,))
CASES = [(0.001, 64), (0.0, 64)]  # (pause, size) in row order


def _measure(monkeypatch, missing: str | None) -> tuple[list[dict], list[dict]]:
    monkeypatch.setattr(busy_poll, "native_missing", lambda: missing)
    monkeypatch.setattr(busy_poll, "busy_poll_peers", lambda: [])  # agnoshm's rows alone
    skipped: list[dict] = []
    progressed: list[dict] = []
    rows = busy_poll.measure_busy_poll(SETTINGS, "test", progressed.append, skipped)
    assert progressed == rows
    return rows, skipped


def test_native_busy_poll_rows_alternate_with_the_pure_ones(isolated_domain, monkeypatch):
    if _native.MISSING is not None:
        pytest.skip(f"agnoshm._native is not built: {_native.MISSING}")
    rows, skipped = _measure(monkeypatch, None)
    assert skipped == []
    assert [(r["transport"], r["busy_poll_us"], r["interval_s"]) for r in rows] == [
        *(("agnoshm", 0, pause) for pause, _ in CASES),
        *((t, 100, pause) for pause, _ in CASES for t in ("agnoshm", "agnoshm-native"))]
    for row in rows:
        assert row["count"] == 5 and 0 < row["p50_us"] <= row["p99_us"], row
        assert row["receiver_cpu_per_message_us"] > 0 and row["receiver_cpu_per_s"] >= 0
    native = [r for r in rows if r["transport"] == "agnoshm-native"]
    assert all(r["mode"] == "busy-poll 100 us" for r in native)
    assert busy_poll.steps(SETTINGS) == 2 * (2 + 1)  # the progress bar counts the native rows


def test_without_the_extension_the_native_rows_are_skipped_with_the_reason(isolated_domain,
                                                                            monkeypatch):
    rows, skipped = _measure(monkeypatch, "the reason")
    assert [r["transport"] for r in rows] == ["agnoshm"] * 4
    assert skipped == [{"transport": "agnoshm-native busy-poll", "size": 64,
                        "reason": "the reason"}]
    assert busy_poll.steps(SETTINGS) == 2 * 2
