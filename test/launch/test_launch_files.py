"""The launch files refuse a broken configuration before starting any process.

Runs each file in ``launch.LaunchService`` (needs ROS 2's ``launch`` package,
skipped with the reason where it is missing) with a broken agnoshm configuration,
a broken parameter file or a bad launch argument, and checks that the launch
fails with the typed error and that no process was started. Without ``launch``,
test_*_processes.py check the same refusal on ``agnoshm.demo.launching.plan``,
which is what the launch files call before starting anything.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
#: the launch files of agnoshm.demo.launching's pipelines (a ROS 2 parameter file each)
PIPELINE_FILES = [p for p in LAUNCH_FILES if p.name != "zenoh_bridge.launch.py"]


def test_every_launch_file_is_covered():
    assert {p.name for p in LAUNCH_FILES} == {
        "talker_listener.launch.py", "image_pipeline.launch.py", "latency_bench.launch.py",
        "zenoh_bridge.launch.py"}


@pytest.fixture
def launch_module():
    launch = pytest.importorskip("launch", reason="launch is not installed (ROS 2 not sourced)")
    if not hasattr(launch, "LaunchDescription"):  # the repository's launch/ directory
        pytest.skip("launch is not installed (ROS 2 not sourced)")
    return launch


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__()
        self.text = ""

    def emit(self, record):
        self.text += record.getMessage() + "\n"


def _run(launch, path: Path, arguments: dict[str, str]):
    """Run ``path``; return (exit code, names of the processes that started, launch's log)."""
    from launch.actions import IncludeLaunchDescription, RegisterEventHandler
    from launch.event_handlers import OnProcessStart
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    started: list[str] = []
    service = launch.LaunchService()
    service.include_launch_description(launch.LaunchDescription([
        RegisterEventHandler(OnProcessStart(
            on_start=lambda event, context: started.append(event.action.name))),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(path)),
                                 launch_arguments=arguments.items()),
    ]))
    messages = _Messages()
    logger = logging.getLogger("launch")
    logger.addHandler(messages)
    try:
        return service.run(), started, messages.text
    finally:
        logger.removeHandler(messages)


@pytest.mark.ros
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_a_broken_agnoshm_config_starts_no_process(launch_module, path, tmp_path, isolated_domain):
    broken = tmp_path / "agnoshm.yaml"
    broken.write_text("pool_sise: 4G\n")
    code, started, log = _run(launch_module, path, {"agnoshm_config": str(broken), "count": "1"}
                         if "latency" not in path.name else {"agnoshm_config": str(broken)})
    assert code != 0 and started == []
    assert "unknown settings ['pool_sise']" in log


@pytest.mark.ros
@pytest.mark.parametrize("path", PIPELINE_FILES, ids=lambda p: p.name)
def test_a_broken_parameter_file_starts_no_process(launch_module, path, tmp_path, isolated_domain):
    broken = tmp_path / "params.yaml"
    broken.write_text("/**:\n  ros__parameters:\n    depth: zero\n")
    code, started, log = _run(launch_module, path, {"params_file": str(broken)})
    assert code != 0 and started == []
    assert "depth must be an integer, not 'zero'" in log


@pytest.mark.ros
def test_a_bad_launch_argument_starts_no_process(launch_module, isolated_domain):
    code, started, log = _run(launch_module, REPO / "launch" / "image_pipeline.launch.py",
                         {"count": "-1"})
    assert code != 0 and started == []
    assert "count must be at least 0" in log


@pytest.mark.ros
def test_a_broken_zenoh_bridge_file_starts_no_process(launch_module, tmp_path, isolated_domain):
    broken = tmp_path / "bridge.yaml"
    broken.write_text("topics: [/chatter]\ndepth: zero\n")
    code, started, log = _run(launch_module, REPO / "launch" / "zenoh_bridge.launch.py",
                              {"config": str(broken)})
    assert code != 0 and started == []
    assert "ZenohConfigError: depth must be an int" in log
