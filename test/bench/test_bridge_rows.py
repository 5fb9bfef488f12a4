"""Smoke test of the bridged-path benchmark rows (issue 17): the ROS 2 bridge's row
(``agnoshm.bench.ros_bridge``) runs end to end through two real ``agnoshm_bridge``
processes and rclpy, and saves one summary per size."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import ros_packages
from domains import registry_path
from sources import child_cwd, child_env


@pytest.mark.ros
@ros_packages.needs("std_msgs.msg")
def test_the_ros_bridge_row_measures_each_size_and_leaves_its_domain(isolated_domain, tmp_path):
    out = tmp_path / "ros.json"
    run = subprocess.run([sys.executable, "-m", "agnoshm.bench.ros_bridge", "--sizes", "64,100000",
                          "--rounds", "3", "--json", str(out)],
                         env=child_env(), cwd=child_cwd(), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "load average" in run.stdout
    rows = json.loads(out.read_text())
    assert [(row["size"], row["count"]) for row in rows] == [(64, 3), (100000, 3)]
    assert not os.path.exists(registry_path(isolated_domain))  # the ping side's domain
