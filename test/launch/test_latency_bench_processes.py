"""latency_bench.launch.py's processes, started with plain subprocess (no ROS 2 needed).

The same commands the launch file starts (``agnoshm.demo.launching.plan``): ping
publishes stamped messages for a duration, pong writes p50/p99 JSON. Checked as in
test_latency_bench_launch.py: every message arrives, in order, with the expected
size; the results file is complete; every process exits 0 and leaves nothing in
/dev/shm; a broken configuration starts nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agnoshm.demo.launching import plan
from agnoshm.demo.params import ParamsError

CONFIG = Path(__file__).resolve().parents[2] / "config"
PARAMS = CONFIG / "latency_bench.yaml"


def _plan(output: Path, size: int = 65536, rate: float = 200.0, duration: float = 1.0):
    # depth: every message, so that a pong a loaded machine slows down loses none (KEEP_LAST
    # would drop the oldest) and the test can ask for all of them
    depth = round(rate * duration) + 1
    return plan("latency_bench", PARAMS,
                {"ping": {"size": size, "rate": rate, "duration": duration, "depth": depth},
                 "pong": {"size": size, "output": str(output), "depth": depth}},
                CONFIG / "agnoshm.yaml")


def test_ping_pong_measures_every_message_and_writes_the_results(run_plan, check_clean_exit,
                                                                  tmp_path):
    output = tmp_path / "latency.json"
    results = run_plan(_plan(output))
    check_clean_exit(results)
    assert results["ping"].lines == ["sent 200 messages of 65536 bytes at 200/s"]
    assert re.fullmatch(r"latency 65536 B: p50 [\d.]+ us, p99 [\d.]+ us \(200 of 200 received\) "
                        rf"-> {re.escape(str(output))}", results["pong"].stdout.strip())
    report = json.loads(output.read_text())
    assert report["sent"] == report["received"] == 200 and report["lost"] == 0
    assert report["in_order"] and report["sizes_ok"] and report["size"] == 65536
    assert report["rate"] == 200.0 and report["duration"] == 1.0
    stats = report["latency_us"]
    assert stats["count"] == 200
    assert 0 < stats["min_us"] <= stats["p50_us"] <= stats["p99_us"] <= stats["max_us"]


def test_pong_refuses_messages_of_an_unexpected_size(run_plan, tmp_path):
    output = tmp_path / "latency.json"
    specs = _plan(output, size=4096, rate=100.0, duration=0.2)
    pong = plan("latency_bench", PARAMS, {"pong": {"size": 8192, "output": str(output)}})[0]
    results = run_plan([pong, specs[1]])
    assert results["pong"].returncode == 1
    assert "message 0 has 4096 bytes, expected 8192" in results["pong"].stderr
    assert not output.exists()


def test_the_default_parameter_file_holds_a_benchmark_that_runs(tmp_path):
    specs = plan("latency_bench", PARAMS, {"pong": {"output": str(tmp_path / "r.json")}})
    assert [s.name for s in specs] == ["pong", "ping"]
    assert specs[0].command()[-2:] == ["--output", str(tmp_path / "r.json")]


@pytest.mark.parametrize("overrides, error", [
    ({"ping": {"size": "8"}}, "size must be at least 40"),
    ({"ping": {"duration": "soon"}}, "duration must be a number"),
    ({"pong": {"output": ""}}, None),
])
def test_launch_arguments_are_checked_before_anything_starts(overrides, error):
    if error is None:
        plan("latency_bench", PARAMS, overrides)  # an empty string is a valid path parameter
        return
    with pytest.raises(ParamsError, match=error):
        plan("latency_bench", PARAMS, overrides)
