"""agnoshm's signal handlers next to rclpy's: a Ctrl-C still stops rclpy after agnoshm has
been shut down in a process where rclpy took the signals over (real rclpy, real SIGINT)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from ros_packages import needs
from sources import child_env

pytestmark = [pytest.mark.ros, needs()]

# agnoshm starts first (its handlers), rclpy then installs its C handlers over them, agnoshm
# shuts down; rclpy.spin must still end on SIGINT (KeyboardInterrupt or rclpy's own exception)
PROGRAM = """
import sys, agnoshm, rclpy
from rclpy.executors import ExternalShutdownException
agnoshm.init()
rclpy.init(domain_id=int(sys.argv[1]))  # a DDS domain; ROS_DOMAIN_ID is agnoshm's
agnoshm.shutdown()
node = rclpy.create_node("agnoshm_signal_test")
try:  # a SIGINT right after "ready" lands inside the try
    print("ready", flush=True)
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException) as err:
    print("stopped by", type(err).__name__, flush=True)
"""


def test_ctrl_c_stops_rclpy_after_agnoshm_shut_down(isolated_domain, ros_domain_id, tmp_path):
    process = subprocess.Popen([sys.executable, "-c", PROGRAM, str(ros_domain_id)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=child_env(), cwd=tmp_path)
    try:
        assert process.stdout.readline() == "ready\n", process.stderr.read()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "stopped by" in out, (out, err)
