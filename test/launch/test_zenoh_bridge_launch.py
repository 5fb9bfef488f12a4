"""launch_testing: launch/zenoh_bridge.launch.py starts the bridge, which bridges its topic
and leaves cleanly when the launch shuts down.

Skipped where launch_testing is not installed; test_zenoh_bridge_processes.py checks
the same command with plain subprocess.
"""

import os
import socket
import unittest
from pathlib import Path

import pytest

launch_testing = pytest.importorskip(
    "launch_testing", reason="launch_testing is not installed (ROS 2 not sourced)")
launch = pytest.importorskip("launch", reason="launch is not installed (ROS 2 not sourced)")
if not hasattr(launch, "LaunchDescription"):  # the repository's launch/ directory, not ROS 2's
    pytest.skip("launch is not installed (ROS 2 not sourced)", allow_module_level=True)
pytest.importorskip("zenoh", reason="the zenoh extra (pip install 'agnoshm[zenoh]')")

import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from domains import DOMAIN_RANGE, claim_domain  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "zenoh_bridge.launch.py"
_CLAIM = claim_domain(DOMAIN_RANGE)  # held while this process runs: a registry of its own
DOMAIN = str(_CLAIM.domain)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.launch_test
def generate_test_description():
    return launch.LaunchDescription([
        SetEnvironmentVariable("ROS_DOMAIN_ID", DOMAIN),
        SetEnvironmentVariable("AGNOSHM_POOL_SIZE", "256M"),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE)), launch_arguments={
            "config": "", "listen": f"tcp/127.0.0.1:{_free_port()}",
            "topics": "/chatter:std_msgs/msg/String"}.items()),
        launch_testing.actions.ReadyToTest(),
    ])


class TestZenohBridgeRun(unittest.TestCase):

    def test_the_bridge_bridges_its_topic(self, proc_output):
        proc_output.assertWaitFor("bridging /chatter [std_msgs/msg/String]",
                                  process="zenoh_bridge", timeout=120)


@launch_testing.post_shutdown_test()
class TestZenohBridgeShutdown(unittest.TestCase):

    def test_the_bridge_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
        for process in proc_info.processes():
            assert not os.path.exists(f"/dev/shm/agnocast@{proc_info[process].pid}"), process
