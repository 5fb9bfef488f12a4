"""launch_testing: launch/image_pipeline.launch.py, camera -> processor -> sink, end to end.

Runs the launch file itself (as ``ros2 launch`` would; rclpy nodes through
launch_ros where ROS 2 and the installed package are found, plain processes
otherwise) and checks that 1920x1080 frames flow end to end, in order, with the
expected sizes, that every process exits 0, and that nothing is left in /dev/shm.
Skipped where launch_testing is not installed; test_image_pipeline_processes.py
checks the same with plain subprocess.
"""

import os
import re
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

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "image_pipeline.launch.py"
COUNT = 20
_CLAIM = claim_domain(ROS_DOMAIN_RANGE)  # held while this process runs; also the DDS domain
DOMAIN = str(_CLAIM.domain)  # a registry of its own
NODES = ("camera", "processor", "sink")


@pytest.mark.launch_test
@launch_testing.markers.keep_alive  # the processes end by themselves, before the tests do
def generate_test_description():
    return launch.LaunchDescription([
        SetEnvironmentVariable("ROS_DOMAIN_ID", DOMAIN),
        SetEnvironmentVariable("AGNOSHM_POOL_SIZE", "256M"),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
                                 launch_arguments={"count": str(COUNT), "rate": "30"}.items()),
        launch_testing.actions.ReadyToTest(),
    ])


def stdout_lines(proc_output, name):
    (process,) = launch_testing.util.resolveProcesses(proc_output, process=name)
    text = b"".join(io.text for io in proc_output[process] if io.from_stdout)
    return text.decode().splitlines()


class TestPipelineRuns(unittest.TestCase):

    def test_every_process_finishes_after_the_last_frame(self, proc_info, proc_output):
        proc_output.assertWaitFor(f"frame {COUNT - 1} 1920x1080 mono8", process="sink",
                                  stream="stdout", timeout=120)
        for name in NODES:
            proc_info.assertWaitForShutdown(process=name, timeout=60)


@launch_testing.post_shutdown_test()
class TestPipelineResults(unittest.TestCase):

    def test_every_process_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_frames_flow_end_to_end_in_order_with_their_sizes(self, proc_output):
        assert stdout_lines(proc_output, "camera") == [
            f"published frame {i} 1920x1080 rgb8 6220800 bytes" for i in range(COUNT)]
        assert stdout_lines(proc_output, "processor") == [
            f"processed frame {i} 1920x1080 rgb8 -> 1920x1080 mono8" for i in range(COUNT)]
        sink = stdout_lines(proc_output, "sink")
        assert len(sink) == COUNT, sink
        for i, line in enumerate(sink):
            assert re.fullmatch(rf"frame {i} 1920x1080 mono8 2073600 bytes latency \d+\.\d ms",
                                line), line

    def test_nothing_is_left_in_dev_shm(self, proc_info):
        for process in proc_info.processes():
            pid = proc_info[process].pid
            assert not os.path.exists(f"/dev/shm/agnocast@{pid}"), process
        assert not os.path.exists(f"/dev/shm/agnoshm-registry-domain{DOMAIN}")
