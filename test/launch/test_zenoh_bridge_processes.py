"""zenoh_bridge.launch.py's process, started with plain subprocess (no ROS 2 needed).

``agnoshm.zenoh.launching.plan`` is what the launch file calls: its command line
from the launch arguments, its refusal of a bad configuration before anything
starts, and the planned command running the bridge until SIGINT, which it leaves
cleanly (exit 0, nothing in /dev/shm).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agnoshm.config import ConfigError
from agnoshm.zenoh.errors import ZenohConfigError, ZenohTopicNameError
from agnoshm.zenoh.launching import plan, split_list
from sources import child_cwd, child_env

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
TIMEOUT = 120.0  # a hang guard, never a speed requirement


def test_the_command_carries_every_launch_argument():
    command = plan(CONFIG / "zenoh_bridge.yaml", connect="tcp/10.0.0.1:7447, tcp/10.0.0.2:7447",
                   listen="tcp/0.0.0.0:7448", mode="client",
                   topics="/chatter:std_msgs/msg/String /image", python="python3")
    assert command == [
        "python3", "-m", "agnoshm.zenoh", "--config", str(CONFIG / "zenoh_bridge.yaml"),
        "--connect", "tcp/10.0.0.1:7447", "--connect", "tcp/10.0.0.2:7447",
        "--listen", "tcp/0.0.0.0:7448",
        "--topic", "/chatter:std_msgs/msg/String", "--topic", "/image", "--mode", "client"]


def test_empty_arguments_leave_the_config_file_in_charge():
    assert plan(CONFIG / "zenoh_bridge.yaml")[1:] == [
        "-m", "agnoshm.zenoh", "--config", str(CONFIG / "zenoh_bridge.yaml")]
    assert plan("", topics="/chatter")[1:] == ["-m", "agnoshm.zenoh", "--topic", "/chatter"]
    assert split_list(" a,b  c,, ") == ["a", "b", "c"]
    assert plan("", on_demand=True)[1:] == ["-m", "agnoshm.zenoh", "--on-demand"]


def test_a_bad_configuration_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(ZenohConfigError, match="nothing to bridge"):
        plan("")
    with pytest.raises(ZenohConfigError, match="endpoints"):
        plan("", topics="/chatter", connect="nonsense")
    with pytest.raises(ZenohConfigError, match="client only connects"):
        plan("", topics="/chatter", listen="tcp/127.0.0.1:7448", mode="client")
    with pytest.raises(ZenohTopicNameError, match="Zenoh wildcard"):
        plan("", topics="/a/*/b")
    broken = tmp_path / "bridge.yaml"
    broken.write_text("topics: [/chatter]\ndepth: zero\n")
    with pytest.raises(ZenohConfigError, match="depth must be an int"):
        plan(broken)
    with pytest.raises(ZenohConfigError, match="cannot read Zenoh bridge configuration"):
        plan(tmp_path / "missing.yaml")
    agnoshm_config = tmp_path / "agnoshm.yaml"
    agnoshm_config.write_text("pool_sise: 4G\n")
    with pytest.raises(ConfigError, match=r"unknown settings \['pool_sise'\]"):
        plan("", topics="/chatter", agnoshm_config=agnoshm_config)


def test_the_planned_command_bridges_until_sigint(isolated_domain):
    pytest.importorskip("zenoh", reason="the zenoh extra (pip install 'agnoshm[zenoh]')")
    pytest.importorskip("xxhash", reason="the zenoh extra (pip install 'agnoshm[zenoh]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = plan("", listen=f"tcp/127.0.0.1:{port}", topics="/chatter:std_msgs/msg/String",
                   agnoshm_config=CONFIG / "agnoshm.yaml")
    env = child_env(PYTHONUNBUFFERED="1", AGNOSHM_CONFIG=str(CONFIG / "agnoshm.yaml"))
    proc = subprocess.Popen(command, cwd=child_cwd(), env=env, text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    bridging = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("bridging /chatter [std_msgs/msg/String]"):
                bridging.set()
        bridging.set()  # the process ended: stop waiting

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert bridging.wait(TIMEOUT) and proc.poll() is None, lines
        proc.send_signal(signal.SIGINT)
        assert proc.wait(TIMEOUT) == 0, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(TIMEOUT)
    assert "Traceback" not in "\n".join(lines)
    assert not os.path.exists(f"/dev/shm/agnocast@{proc.pid}")
    assert sys.executable == command[0]
