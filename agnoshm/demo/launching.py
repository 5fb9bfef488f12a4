"""What the launch files in ``launch/`` start, kept out of them so that it is testable without ROS.

A launch file names a *pipeline* (:data:`PIPELINES`: which node runs which
console script, and its parameter file in ``config/``) and which launch
arguments override which parameters. At launch time :func:`launch_setup`:

1. checks everything before anything starts: the agnoshm configuration
   (``agnoshm_config``, default ``$AGNOSHM_CONFIG`` else ``config/agnoshm.yaml``),
   the parameter file (every node section, every value) and the launch
   arguments. A problem raises :class:`agnoshm.config.ConfigError` (or its
   subclass ``ParamsError``) and no process is started;
2. starts one process per node: ``launch_ros.actions.Node`` (``ros2 run``
   executables in ``lib/agnoshm``, parameters through ``--ros-args --params-file``)
   when launch_ros is importable and agnoshm is installed in the ament index,
   else ``launch.actions.ExecuteProcess`` running ``python -m agnoshm.demo.<script>
   --params-file FILE`` (works from a source checkout). ``use_ros:=true|false``
   forces either way;
3. shuts the launch down as soon as a process fails, so nothing waits forever.

:func:`plan` returns the same commands for plain ``subprocess`` use (tests).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from pathlib import Path
from typing import Mapping

from agnoshm.config import ConfigError, load_config
from agnoshm.demo.params import Param, ParamsError, check_params_file

# pipeline -> (parameter file in config/, [(node name, console script)] in start order)
PIPELINES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "talker_listener": ("talker_listener.yaml", [("listener", "listener"), ("talker", "talker")]),
    "image_pipeline": ("image_pipeline.yaml", [("sink", "image_subscriber"),
                                               ("processor", "image_processor"),
                                               ("camera", "image_publisher")]),
    "latency_bench": ("latency_bench.yaml", [("pong", "latency_pong"), ("ping", "latency_ping")]),
}
USE_ROS_CHOICES = ("auto", "true", "false")


def parameters_of(executable: str) -> list[Param]:
    """The parameters that console script ``executable`` declares."""
    return importlib.import_module(f"agnoshm.demo.{executable}").PARAMETERS


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
    """One process of a pipeline: node name, console script, parameter file, extra flags."""

    name: str
    executable: str
    params_file: str
    arguments: tuple[str, ...] = ()

    def command(self, python: str | None = None) -> list[str]:
        """The command line that runs it from any checkout: ``python -m agnoshm.demo.<script>``."""
        return [python or sys.executable, "-m", f"agnoshm.demo.{self.executable}",
                "--node-name", self.name, "--params-file", self.params_file, *self.arguments]


def check_agnoshm_config(path: str | os.PathLike | None) -> None:
    """Load the agnoshm configuration file ``path`` as a process would; raise ConfigError."""
    if path:
        try:
            load_config({"AGNOSHM_CONFIG": os.fspath(path)})
        except ConfigError as err:
            if os.fspath(path) in str(err):
                raise
            raise ConfigError(f"{os.fspath(path)}: {err}") from None


def plan(pipeline: str, params_file: str | os.PathLike,
         overrides: Mapping[str, Mapping[str, object]] | None = None,
         agnoshm_config: str | os.PathLike | None = None) -> list[ProcessSpec]:
    """Check the configuration and return the processes of ``pipeline``, in start order.

    :param overrides: node name -> parameter -> value (a launch argument's text is
        read as YAML, as ``-p name:=value`` is, except for string parameters),
        passed as command-line flags.
    :raises ConfigError: for a bad agnoshm configuration; ``ParamsError`` for a bad
        parameter file, node name, parameter or value. Nothing has started then.
    """
    import yaml

    if pipeline not in PIPELINES:
        raise ParamsError(f"unknown pipeline {pipeline!r} (known: {', '.join(PIPELINES)})")
    _, nodes = PIPELINES[pipeline]
    check_agnoshm_config(agnoshm_config)
    params_file = os.fspath(params_file)
    if not Path(params_file).is_file():
        raise ParamsError(f"parameter file {params_file} does not exist")
    check_params_file(params_file, {name: parameters_of(exe) for name, exe in nodes})
    overrides = dict(overrides or {})
    unknown = set(overrides) - {name for name, _ in nodes}
    if unknown:
        raise ParamsError(f"{pipeline}: no node named {sorted(unknown)}")
    specs = []
    for name, executable in nodes:
        by_name = {p.name: p for p in parameters_of(executable)}
        arguments: list[str] = []
        for param, value in overrides.get(name, {}).items():
            if param not in by_name:
                raise ParamsError(f"{executable} has no parameter {param!r}")
            if isinstance(value, str) and by_name[param].kind is not str:
                try:
                    value = yaml.safe_load(value)
                except yaml.YAMLError:
                    pass
            value = by_name[param].convert(value, f"launch argument for {name}.{param}")
            flag = "--" + param.replace("_", "-")
            if isinstance(value, bool):
                arguments.append(flag if value else "--no-" + param.replace("_", "-"))
            else:
                arguments += [flag, str(value)]
        specs.append(ProcessSpec(name, executable, params_file, tuple(arguments)))
    return specs


def process_env(agnoshm_config: str | None) -> dict[str, str]:
    """Variables added to every process's environment."""
    env = {"PYTHONUNBUFFERED": "1"}
    if agnoshm_config:
        env["AGNOSHM_CONFIG"] = agnoshm_config
    return env


# -- launch (imported only inside these functions) ---------------------------------------------

def declare_common_arguments(pipeline: str, config_dir: Path) -> list:
    """``params_file``, ``agnoshm_config`` and ``use_ros`` launch arguments."""
    from launch.actions import DeclareLaunchArgument
    from launch.substitutions import EnvironmentVariable

    params_name, _ = PIPELINES[pipeline]
    return [
        DeclareLaunchArgument("params_file", default_value=str(config_dir / params_name),
                              description="ROS 2 parameter file of the nodes"),
        DeclareLaunchArgument(
            "agnoshm_config",
            default_value=EnvironmentVariable("AGNOSHM_CONFIG",
                                              default_value=str(config_dir / "agnoshm.yaml")),
            description="agnoshm configuration file (AGNOSHM_CONFIG of every process)"),
        DeclareLaunchArgument("use_ros", default_value="auto", choices=list(USE_ROS_CHOICES),
                              description="auto: rclpy nodes (launch_ros) where ROS 2 and the "
                                          "installed package are found; false: plain processes"),
    ]


def _installed_executables(executables: list[str]) -> bool:
    try:
        import launch_ros.actions  # noqa: F401  (imports rclpy)
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return False
    try:
        prefix = Path(get_package_prefix("agnoshm"))
    except PackageNotFoundError:
        return False
    return all(os.access(prefix / "lib" / "agnoshm" / exe, os.X_OK) for exe in executables)


def _fail_fast(name: str):
    """An ``on_exit`` handler: a process that fails shuts the whole launch down."""
    def on_exit(event, context):
        from launch.actions import EmitEvent
        from launch.events import Shutdown

        if event.returncode not in (0, None):
            return [EmitEvent(event=Shutdown(reason=f"{name} exited with {event.returncode}"))]
        return None

    return on_exit


def launch_setup(context, pipeline: str, overrides: Mapping[str, list[tuple[str, str]]]) -> list:
    """``OpaqueFunction`` body of the launch files: check everything, then the process actions.

    :param overrides: launch argument -> [(node name, parameter)] it sets when not empty.
    """
    from launch.actions import ExecuteProcess

    config = context.launch_configurations
    agnoshm_config = config.get("agnoshm_config", "")
    use_ros = config.get("use_ros", "auto")
    if use_ros not in USE_ROS_CHOICES:
        raise ParamsError(f"use_ros must be one of {', '.join(USE_ROS_CHOICES)}, not {use_ros!r}")
    values: dict[str, dict[str, object]] = {}
    for argument, targets in overrides.items():
        text = config.get(argument, "")
        if text != "":
            for node, param in targets:
                values.setdefault(node, {})[param] = text
    try:
        specs = plan(pipeline, config["params_file"], values, agnoshm_config or None)
    except ConfigError as err:  # launch prints only str(err): name the type in it
        raise type(err)(f"{type(err).__name__}: {err}") from None
    env = process_env(agnoshm_config or None)
    ros = use_ros == "true" or (use_ros == "auto" and
                                _installed_executables([s.executable for s in specs]))
    actions = []
    for spec in specs:
        if ros:
            try:
                from launch_ros.actions import Node
            except ImportError as err:
                raise ConfigError(f"use_ros:=true needs launch_ros ({err}); source ROS 2") from None
            actions.append(Node(package="agnoshm", executable=spec.executable, name=spec.name,
                                exec_name=spec.name, parameters=[spec.params_file],
                                arguments=list(spec.arguments), output="screen",
                                additional_env=env, on_exit=_fail_fast(spec.name)))
        else:
            actions.append(ExecuteProcess(cmd=spec.command(), name=spec.name, output="screen",
                                          additional_env=env, on_exit=_fail_fast(spec.name)))
    return actions
