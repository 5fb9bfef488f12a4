"""The ``ring-floor`` row (issue 16): a bare ring between two processes, measured in the same
run as agnoshm, labelled as agnoshm's floor, a baseline the verdict never calls the fastest.
Shapes and sanity only, never speed."""

from __future__ import annotations

import glob
import json
import re
import subprocess
import sys

from sources import child_cwd, child_env

from agnoshm.bench import report
from agnoshm.bench.floor import LABEL, TRANSPORT

WATCHDOG = 600  # seconds; a hang guard, not a speed limit
SIZES = [64, 1 << 20]


def test_the_smallest_bench_measures_the_ring_floor_beside_agnoshm(tmp_path):
    out = tmp_path / "floor.json"
    before = set(glob.glob("/dev/shm/*"))
    proc = subprocess.run([sys.executable, "-m", "agnoshm", "bench", "--quick", "--latency-only",
                           "--sizes", "64,1M", "--samples", "5", "--no-plot", "--json", str(out)],
                          cwd=child_cwd(), env=child_env(), capture_output=True, text=True, timeout=WATCHDOG)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    rows = {r["size"]: r for r in results["latency"] if r["transport"] == TRANSPORT}
    assert sorted(rows) == SIZES
    for row in rows.values():
        assert 0 < row["min_us"] <= row["p50_us"] <= row["p90_us"] <= row["p99_us"] <= row[
            "max_us"], row
        assert row["count"] == 5 and row["label"] == LABEL == "bare ring: agnoshm's floor"
        assert 0 <= row["receiver_cpu_per_s"]
    status = next(t for t in results["transports"] if t["transport"] == TRANSPORT)
    assert status == {"transport": TRANSPORT, "status": "measured", "label": LABEL}
    assert re.search(rf"\|\s+{TRANSPORT} \|", proc.stdout)
    assert report.NOTES[TRANSPORT] in proc.stdout
    assert "[2/2] 1 MiB: agnoshm p50" in proc.stderr and f"| {TRANSPORT} p50" in proc.stderr
    # a memfd: nothing named in /dev/shm (other runs' objects may come and go: only ours count)
    assert not [p for p in set(glob.glob("/dev/shm/*")) - before if "ring-floor" in p]


def test_the_verdict_measures_agnoshm_against_its_floor_but_never_crowns_it():
    rows = [("agnoshm", 64, 60.0), ("ring-floor", 64, 40.0), ("socket", 64, 50.0),
            ("cdr-socket", 64, 190.0), ("iceoryx2", 64, 55.0),
            ("agnoshm", 1 << 20, 60.0), ("ring-floor", 1 << 20, 58.0)]
    results = {"settings": {"sizes": [64, 1 << 20]},
               "latency": [{"transport": t, "size": s, "p50_us": v} for t, s, v in rows]}
    assert report.verdict(results) == [
        "  at 64 B: a socket copy is fastest, 1.2\u00d7 faster than agnoshm; agnoshm is "
        "3.2\u00d7 faster than CDR + socket copy, and 1.5\u00d7 slower than its floor (a bare ring)"]
    results["latency"].append({"transport": "socket", "size": 1 << 20, "p50_us": 900.0})
    assert report.verdict(results)[1] == (
        "  at 1 MiB: agnoshm is fastest, 15\u00d7 faster than a socket copy; agnoshm is about as "
        "fast as its floor (a bare ring)")
