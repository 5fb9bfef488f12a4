"""`agnoshm bench` measures plain rclpy (the default RMW) beside agnoshm where rclpy imports.

Runs the bench's smallest latency run with real rclpy (CI's ROS 2 venv) and checks that rclpy is
measured, not skipped, and that the verdict compares agnoshm with it. Speed is never judged.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ros_packages import needs
from sources import child_env

pytestmark = [pytest.mark.ros, needs("sensor_msgs.msg")]


def test_the_bench_measures_rclpy_beside_agnoshm(tmp_path, isolated_domain):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "agnoshm", "bench", "--latency-only",
                           "--sizes", "64,64K", "--samples", "30", "--no-plot", "--json", str(out)],
                          env=child_env(), capture_output=True, text=True, timeout=900,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    status = next(t for t in results["transports"] if t["transport"] == "rclpy")
    assert status["status"] == "measured", status
    rows = [r for r in results["latency"] if r["transport"] == "rclpy"]
    assert sorted(r["size"] for r in rows) == [64, 65536]
    assert all(r["count"] == 30 and 0 < r["p50_us"] <= r["p99_us"] for r in rows), rows
    verdict = proc.stdout[proc.stdout.index("verdict"):]
    assert "rclpy" in verdict, verdict
