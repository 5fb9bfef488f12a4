"""The latency sweep (issue 19): agnoshm's pure-Python and native paths, iceoryx2 and both floors,
size by size in one run; a native path that is not built and a machine with no C compiler are
skipped with the reason.  Real processes; shapes and order only, never speed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from sources import child_cwd, child_env

from agnoshm import _native
from agnoshm.bench.c_floor import find_compiler

WATCHDOG = 600  # seconds; a hang guard, not a speed limit
SIZES = [64, 1 << 20]
LANES = ("agnoshm", "agnoshm-native", "iceoryx2", "ring-floor", "c-floor")


def _bench(tmp_path: Path, shadow: Path | None = None, **env: str) -> tuple[str, dict]:
    """Run the smallest sweep; ``shadow`` goes first on the children's PYTHONPATH."""
    out = tmp_path / "sweep.json"
    env = child_env(**env)
    if shadow:  # it holds no agnoshm, so the children still import this process's
        env["PYTHONPATH"] = os.pathsep.join([str(shadow), env["PYTHONPATH"]])
    proc = subprocess.run([sys.executable, "-m", "agnoshm", "bench", "--quick", "--latency-only",
                           "--sizes", "64,1M", "--samples", "5", "--no-plot", "--json", str(out)],
                          cwd=child_cwd(), env=env,
                          capture_output=True, text=True, timeout=WATCHDOG)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, json.loads(out.read_text())


def _statuses(results: dict) -> dict[str, dict]:
    return {t["transport"]: t for t in results["transports"]}


def test_both_paths_and_iceoryx2_alternate_size_by_size_beside_both_floors(tmp_path):
    stdout, results = _bench(tmp_path)
    expected = ["agnoshm"]
    if _native.MISSING is None:
        expected.append("agnoshm-native")
    if importlib.util.find_spec("iceoryx2") is not None:
        expected.append("iceoryx2")
    expected.append("ring-floor")
    if find_compiler() is not None:
        expected.append("c-floor")
    order = [r["transport"] for r in results["latency"] if r["transport"] in LANES]
    assert order == expected * len(SIZES)  # alternated row by row, size by size
    assert [r["size"] for r in results["latency"] if r["transport"] in LANES] == [
        size for size in SIZES for _ in expected]
    for row in results["latency"]:
        assert row["count"] == 5 and 0 < row["p50_us"] <= row["p99_us"], row
    statuses = _statuses(results)
    assert all(statuses[t]["status"] == "measured" for t in expected)
    assert "agnoshm's two paths beside iceoryx2 and the floors" in stdout
    if "agnoshm-native" in expected and "iceoryx2" in expected:
        assert "\n  agnoshm-native against iceoryx2, p50: " in stdout
        assert {"agnoshm-native p50 / iceoryx2's p50, 64 B",
                "agnoshm p99 / iceoryx2's p99, 1 MiB"} <= {t["name"] for t in results["targets"]}
    if "c-floor" in expected:
        assert "\n  the C floor (a futex ping-pong between two C processes), p50 " in stdout
        assert "c-floor = a futex ping-pong between two C processes" in stdout


def test_without_the_extension_or_a_compiler_both_rows_are_skipped_with_the_reason(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    # every process of the run (the bench and its workers) finds no native extension
    (shadow / "sitecustomize.py").write_text(
        "import sys\nsys.modules['agnoshm._native._ring'] = None\n")
    stdout, results = _bench(tmp_path, shadow, CC="/nonexistent/cc")
    transports = {r["transport"] for r in results["latency"]}
    assert "agnoshm" in transports and "ring-floor" in transports
    assert not transports & {"agnoshm-native", "c-floor"}
    statuses = _statuses(results)
    native, floor = statuses["agnoshm-native"], statuses["c-floor"]
    assert native["status"] == floor["status"] == "skipped"
    assert native["reason"].startswith(
        "agnoshm's native extension agnoshm._native._ring is not built (")
    assert floor["reason"] == ("no C compiler found (looked for CC=/nonexistent/cc): install "
                               "one (Debian/Ubuntu: apt install gcc) or set CC")
    assert f"  agnoshm-native: skipped: {native['reason']}" in stdout
    assert f"  c-floor: skipped: {floor['reason']}" in stdout
    assert "agnoshm-native against" not in stdout and "the C floor (" not in stdout
