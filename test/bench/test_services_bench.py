"""``python -m agnoshm.bench.services`` end to end: its rows and the JSON's shape, never
the speed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ros_packages import needs
from sources import child_cwd, child_env

WATCHDOG = 600  # seconds; a hang guard, not a speed limit
FIELDS = {"count", "p50_us", "p90_us", "p99_us", "mean_us", "min_us", "max_us"}


def _bench(domain: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agnoshm.bench.services", "--calls", "3",
                           "--rounds", "2", "--warmup", "1", "--json", *args], cwd=child_cwd(),
                          env=child_env(ROS_DOMAIN_ID=str(domain)),
                          capture_output=True, text=True, timeout=WATCHDOG)


def _rows(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    numbers, end = json.JSONDecoder().raw_decode(result.stdout)  # then one line per row
    lines = result.stdout[end:].strip().splitlines()
    assert [line.split("  ")[0] for line in lines] == list(numbers)
    for stats in numbers.values():
        assert set(stats) == FIELDS and stats["count"] == 6
        assert 0 < stats["min_us"] <= stats["p50_us"] <= stats["max_us"]
    return numbers


def test_agnoshm_rows_run_without_rclpy(isolated_domain):
    numbers = _rows(_bench(isolated_domain, "--no-rclpy"))
    assert list(numbers) == ["agnoshm 64 B", "agnoshm 6 MB"]


@pytest.mark.ros
@needs("nav_msgs.srv", "rmw_fastrtps_cpp")
def test_rclpy_rows_beside_agnoshms(ros_domain_id):
    # one domain for both: agnoshm's registry and DDS (ROS_DOMAIN_ID); DDS allows at most 232
    numbers = _rows(_bench(ros_domain_id))
    assert list(numbers) == ["agnoshm 64 B", "agnoshm 6 MB",
                             "rclpy (Fast DDS) 64 B", "rclpy (Fast DDS) 6 MB"]


def test_without_rclpy_the_rclpy_row_is_refused_with_the_fix(isolated_domain):
    try:
        import nav_msgs.srv  # noqa: F401
        import rclpy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("rclpy and nav_msgs are importable here: test_rclpy_rows_beside_agnoshms "
                    "runs the rclpy rows")
    result = _bench(isolated_domain)
    assert result.returncode == 2
    assert "the rclpy row needs rclpy and nav_msgs" in result.stderr and "--no-rclpy" in result.stderr
