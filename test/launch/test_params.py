"""Parameters of the demo programs: the same ROS 2 parameter files with and without ROS 2.

Precedence: defaults < ``--params-file`` files (``/**`` first, then the node's
section; later files win) < ``--ros-args -p`` < the program's own flags.
"""

from __future__ import annotations

import argparse

import pytest

from agnoshm.demo.params import Param, ParamsError, add_arguments, parse, split_ros_args

PARAMS = [Param("rate", 30.0, "fps", minimum=0.001), Param("count", 0, "frames", minimum=0),
          Param("frame_id", "camera", "frame"), Param("check", True, "check"),
          Param("mode", "mono8", "mode", choices=("mono8", "half"))]


def _parse(argv):
    parser = argparse.ArgumentParser(prog="t")
    add_arguments(parser, PARAMS, "camera")
    return parse(parser, PARAMS, "camera", argv)


def _file(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_then_wildcard_then_node_section_then_flags(tmp_path):
    path = _file(tmp_path, "camera:\n  ros__parameters: {rate: 15}\n"
                           "/**:\n  ros__parameters: {rate: 5.0, count: 7, other_nodes_param: 1}\n")
    args = _parse(["--params-file", path])
    assert (args.rate, args.count, args.frame_id, args.check) == (15.0, 7, "camera", True)
    args = _parse(["--params-file", path, "--count", "3", "--no-check"])
    assert (args.count, args.check) == (3, False)


def test_ros_args_as_launch_ros_passes_them(tmp_path):
    path = _file(tmp_path, "/cam2:\n  ros__parameters: {frame_id: left}\n")
    args = _parse(["--rate", "10", "--ros-args", "-r", "__node:=cam2", "--params-file", path,
                   "-p", "count:=4", "--log-level", "debug", "--"])
    assert (args.node_name, args.frame_id, args.count, args.rate) == ("cam2", "left", 4, 10.0)
    assert args.ros_args[:3] == ["--ros-args", "-r", "__node:=cam2"]


def test_other_nodes_sections_are_ignored(tmp_path):
    path = _file(tmp_path, "sink:\n  ros__parameters: {anything: 1}\n")
    assert _parse(["--params-file", path]).rate == 30.0


@pytest.mark.parametrize("text, error", [
    ("camera:\n  ros__parameters: {fps: 1}\n", "unknown parameter 'fps'"),
    ("camera:\n  ros__parameters: {count: 1.5}\n", "count must be an integer, not 1.5"),
    ("camera:\n  ros__parameters: {count: true}\n", "count must be an integer, not True"),
    ("camera:\n  ros__parameters: {frame_id: 7}\n", "frame_id must be a string, not 7"),
    ("camera:\n  ros__parameters: {rate: .nan}\n", "rate must be a finite number"),
    ("camera:\n  ros__parameters: {rate: 0}\n", "rate must be at least 0.001"),
    ("camera:\n  ros__parameters: {mode: color}\n", "mode must be one of mono8, half"),
    ("camera:\n  rate: 1\n", "must be {ros__parameters:"),
    ("- camera\n", "must map node names"),
    ("camera: {ros__parameters: {rate: 1}\n", "is not valid YAML"),
])
def test_bad_files_raise_params_error_naming_file_node_and_parameter(tmp_path, text, error):
    path = _file(tmp_path, text)
    with pytest.raises(ParamsError, match=None) as info:
        _parse(["--params-file", path])
    assert error in str(info.value) and path in str(info.value)


def test_missing_file_and_bad_ros_args(tmp_path):
    with pytest.raises(ParamsError, match="cannot read it"):
        _parse(["--params-file", str(tmp_path / "nope.yaml")])
    with pytest.raises(ParamsError, match="expected NAME:=VALUE"):
        _parse(["--ros-args", "-p", "count"])
    with pytest.raises(ParamsError, match="unknown parameter"):
        _parse(["--ros-args", "-p", "fps:=3"])


def test_split_ros_args():
    assert split_ros_args(["a", "--ros-args", "-p", "x:=1", "--", "b"]) == (
        ["a", "b"], ["--ros-args", "-p", "x:=1"])
