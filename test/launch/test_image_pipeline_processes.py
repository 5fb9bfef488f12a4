"""image_pipeline.launch.py's processes, started with plain subprocess (no ROS 2 needed).

The same commands the launch file starts (``agnoshm.demo.launching.plan``): camera ->
processor -> sink passing 1920x1080 images. Checked as in
test_image_pipeline_launch.py: frames flow end to end, in order, with the expected
sizes and pixels; every process exits 0 and leaves nothing in /dev/shm; a broken
configuration starts nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agnoshm.config import ConfigError
from agnoshm.demo.launching import plan
from agnoshm.demo.params import ParamsError
from sources import child_cwd, child_env

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
PARAMS = CONFIG / "image_pipeline.yaml"
COUNT = 20


def _plan(**overrides):
    # depth COUNT: a stage that a loaded machine slows down by more than depth frames
    # would lose the oldest (KEEP_LAST does), and this test checks that every frame arrives
    values = {"camera": {"count": COUNT, "rate": 30, "depth": COUNT},
              "processor": {"count": COUNT, "depth": COUNT}, "sink": {"count": COUNT, "depth": COUNT}}
    for node, params in overrides.items():
        values.setdefault(node, {}).update(params)
    return plan("image_pipeline", PARAMS, values, CONFIG / "agnoshm.yaml")


def test_frames_flow_from_camera_through_processor_to_sink_in_order(run_plan, check_clean_exit):
    results = run_plan(_plan())
    check_clean_exit(results)
    assert results["camera"].lines == [
        f"published frame {i} 1920x1080 rgb8 6220800 bytes" for i in range(COUNT)]
    assert results["processor"].lines == [
        f"processed frame {i} 1920x1080 rgb8 -> 1920x1080 mono8" for i in range(COUNT)]
    sink = results["sink"].lines
    assert len(sink) == COUNT, results["sink"].stdout
    for i, line in enumerate(sink):
        assert re.fullmatch(rf"frame {i} 1920x1080 mono8 2073600 bytes latency \d+\.\d ms", line), line


def test_half_mode_halves_each_frame(run_plan, check_clean_exit):
    results = run_plan(_plan(camera={"count": 3}, processor={"count": 3, "mode": "half"},
                             sink={"count": 3, "width": 960, "height": 540, "encoding": "rgb8"}))
    check_clean_exit(results)
    assert results["sink"].lines[2].startswith("frame 2 960x540 rgb8 1555200 bytes")


def test_sink_refuses_a_frame_of_the_wrong_size_and_says_why(run_plan):
    specs = [s for s in _plan(camera={"count": 1}, sink={"count": 1, "encoding": "rgb8",
                                                         "topic": "/camera/image_raw",
                                                         "width": 640})
             if s.name != "processor"]
    results = run_plan(specs)
    assert results["sink"].returncode == 1
    assert "frame 0 is 1920x1080 rgb8, expected 640x1080 rgb8" in results["sink"].stderr
    assert results["camera"].returncode == 0


@pytest.mark.parametrize("text, error", [
    ("camera:\n  ros__parameters:\n    rate: fast\n", "rate must be a number, not 'fast'"),
    ("camera:\n  ros__parameters:\n    fps: 30\n", "unknown parameter 'fps'"),
    ("camra:\n  ros__parameters:\n    rate: 30.0\n", "unknown node sections ['camra']"),
    ("camera: [1, 2\n", "is not valid YAML"),
    ("camera:\n  rate: 30\n", "must be {ros__parameters:"),
])
def test_a_broken_parameter_file_is_refused_before_anything_starts(tmp_path, text, error):
    bad = tmp_path / "image_pipeline.yaml"
    bad.write_text(text)
    with pytest.raises(ParamsError, match=re.escape(error)):
        plan("image_pipeline", bad, {}, CONFIG / "agnoshm.yaml")


def test_a_broken_agnoshm_config_is_refused_before_anything_starts(tmp_path):
    bad = tmp_path / "agnoshm.yaml"
    bad.write_text("pool_size: 3M\n")
    with pytest.raises(ConfigError, match="pool_size must be a multiple of 2 MiB"):
        plan("image_pipeline", PARAMS, {}, bad)


def test_a_bad_launch_argument_is_refused_before_anything_starts():
    with pytest.raises(ParamsError, match="count must be an integer, not 'many'"):
        plan("image_pipeline", PARAMS, {"camera": {"count": "many"}})


def test_each_program_reports_a_bad_parameter_file_with_exit_status_2(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    count: -3\n")
    for module in ("image_publisher", "image_processor", "image_subscriber"):
        result = subprocess.run([sys.executable, "-m", f"agnoshm.demo.{module}", "--params-file",
                                 str(bad)], capture_output=True, text=True, timeout=60,
                                env=child_env(), cwd=child_cwd())
        assert result.returncode == 2, result.stderr
        assert "ParamsError" in result.stderr and "count must be at least 0" in result.stderr
