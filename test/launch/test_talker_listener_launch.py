"""launch_testing: launch/talker_listener.launch.py, every message arrives in order.

Checks that the listener hears "Hello World: 0..N-1" in order, that both
processes exit 0 and that nothing is left in /dev/shm. Skipped where
launch_testing is not installed; test_talker_listener_processes.py checks the
same with plain subprocess.
"""

import os
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
from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from domains import ROS_DOMAIN_RANGE, claim_domain  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "talker_listener.launch.py"
_CLAIM = claim_domain(ROS_DOMAIN_RANGE)  # held while this process runs; also the DDS domain
DOMAIN = str(_CLAIM.domain)  # a registry of its own
COUNT = 10


@pytest.mark.launch_test
@launch_testing.markers.keep_alive  # the processes end by themselves, before the tests do
def generate_test_description():
    return launch.LaunchDescription([
        SetEnvironmentVariable("ROS_DOMAIN_ID", DOMAIN),
        SetEnvironmentVariable("AGNOSHM_POOL_SIZE", "256M"),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
                                 launch_arguments={"count": str(COUNT), "rate": "50"}.items()),
        launch_testing.actions.ReadyToTest(),
    ])


class TestTalkerListenerRun(unittest.TestCase):

    def test_both_processes_finish(self, proc_info):
        for name in ("talker", "listener"):
            proc_info.assertWaitForShutdown(process=name, timeout=60)


@launch_testing.post_shutdown_test()
class TestTalkerListenerResults(unittest.TestCase):

    def test_both_processes_exit_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_every_message_arrives_in_order(self, proc_output):
        with launch_testing.asserts.assertSequentialStdout(proc_output, "listener") as out:
            for i in range(COUNT):
                out.assertInStdout(f"I heard: 'Hello World: {i}'")

    def test_nothing_is_left_in_dev_shm(self, proc_info):
        for process in proc_info.processes():
            assert not os.path.exists(f"/dev/shm/agnocast@{proc_info[process].pid}"), process
        assert not os.path.exists(f"/dev/shm/agnoshm-registry-domain{DOMAIN}")
