"""talker_listener.launch.py's processes, started with plain subprocess (no ROS 2 needed).

Checked as in test_talker_listener_launch.py: every message arrives in order,
both processes exit 0 and leave nothing in /dev/shm.
"""

from __future__ import annotations

from pathlib import Path

from agnoshm.demo.launching import plan

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_talker_and_listener_from_the_parameter_file(run_plan, check_clean_exit):
    specs = plan("talker_listener", CONFIG / "talker_listener.yaml",
                 {"talker": {"count": 10, "rate": 50}, "listener": {"count": 10}},
                 CONFIG / "agnoshm.yaml")
    results = run_plan(specs)
    check_clean_exit(results)
    assert results["listener"].lines == [f"I heard: 'Hello World: {i}'" for i in range(10)]
    assert results["talker"].lines == [f"Publishing: 'Hello World: {i}'" for i in range(10)]


def test_the_parameter_file_sets_count_for_both_nodes():
    listener, talker = plan("talker_listener", CONFIG / "talker_listener.yaml")
    assert listener.arguments == talker.arguments == ()
    assert talker.command()[1:] == ["-m", "agnoshm.demo.talker", "--node-name", "talker",
                                    "--params-file", str(CONFIG / "talker_listener.yaml")]
