"""launch_testing: launch/latency_bench.launch.py, latency_ping -> latency_pong -> results JSON.

Runs the launch file with size/rate/duration/output launch arguments and checks
that every message arrives in order with the expected size, that the results
file holds p50/p99 latencies, that both processes exit 0 and that nothing is
left in /dev/shm. Skipped where launch_testing is not installed;
test_latency_bench_processes.py checks the same with plain subprocess.
"""

import json
import os
import tempfile
import unittest
from pathlib import Path

import pytest

launch_testing = pytest.importorskip(
    "launch_testing", reason="launch_testing is not installed (ROS 2 not sourced)")
launch = pytest.importorskip("launch", reason="launch is not installed (ROS 2 not sourced)")
if not hasattr(launch, "LaunchDescription"):  # the repository's launch/ directory, not ROS 2's
    pytest.skip("launch is not installed (ROS 2 not sourced)", allow_module_level=True)

import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import launch_testing.markers  # noqa: E402
import launch_testing.util  # noqa: E402
from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from domains import ROS_DOMAIN_RANGE, claim_domain  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "latency_bench.launch.py"
_CLAIM = claim_domain(ROS_DOMAIN_RANGE)  # held while this process runs; also the DDS domain
DOMAIN = str(_CLAIM.domain)  # a registry of its own
OUTPUT = Path(tempfile.gettempdir()) / f"agnoshm_latency_launch_test_{os.getpid()}.json"
SIZE, RATE, DURATION = 65536, 200, 1.0
SENT = int(RATE * DURATION)


@pytest.mark.launch_test
@launch_testing.markers.keep_alive  # the processes end by themselves, before the tests do
def generate_test_description():
    if OUTPUT.exists():
        OUTPUT.unlink()
    return launch.LaunchDescription([
        SetEnvironmentVariable("ROS_DOMAIN_ID", DOMAIN),
        SetEnvironmentVariable("AGNOSHM_POOL_SIZE", "256M"),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE)), launch_arguments={
            "size": str(SIZE), "rate": str(RATE), "duration": str(DURATION),
            "output": str(OUTPUT)}.items()),
        launch_testing.actions.ReadyToTest(),
    ])


class TestBenchRuns(unittest.TestCase):

    def test_both_processes_finish(self, proc_info):
        for name in ("ping", "pong"):
            proc_info.assertWaitForShutdown(process=name, timeout=120)


@launch_testing.post_shutdown_test()
class TestBenchResults(unittest.TestCase):

    def test_both_processes_exit_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_every_message_arrived_in_order_with_its_size(self, proc_output):
        launch_testing.asserts.assertInStdout(
            proc_output, f"sent {SENT} messages of {SIZE} bytes at {RATE}/s", "ping")
        launch_testing.asserts.assertInStdout(
            proc_output, f"({SENT} of {SENT} received) -> {OUTPUT}", "pong")
        report = json.loads(OUTPUT.read_text())
        assert report["sent"] == report["received"] == SENT and report["lost"] == 0
        assert report["in_order"] and report["sizes_ok"] and report["size"] == SIZE
        stats = report["latency_us"]
        assert stats["count"] == SENT
        assert 0 < stats["min_us"] <= stats["p50_us"] <= stats["p99_us"] <= stats["max_us"]

    def test_nothing_is_left_in_dev_shm(self, proc_info):
        OUTPUT.unlink(missing_ok=True)
        for process in proc_info.processes():
            assert not os.path.exists(f"/dev/shm/agnocast@{proc_info[process].pid}"), process
        assert not os.path.exists(f"/dev/shm/agnoshm-registry-domain{DOMAIN}")
