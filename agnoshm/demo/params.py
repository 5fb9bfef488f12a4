"""Parameters of the demo programs: command line, ROS 2 parameter files, ``--ros-args``.

Every program declares its parameters (:class:`Param`) and reads them the same
way with and without ROS 2, from (lowest to highest precedence):

1. the defaults in the program;
2. parameter files in the ROS 2 shape, given with ``--params-file FILE`` (repeatable)
   or inside ``--ros-args ... --params-file FILE`` (what ``launch_ros`` passes)::

       /**:                      # every node
         ros__parameters: {count: 100}
       camera:                   # the node named camera (also /camera, /ns/camera)
         ros__parameters: {rate: 30.0, frame_id: camera}

3. ``--ros-args -p name:=value`` (the value is read as YAML, as rcl does);
4. the program's own flags (``--rate 30``).

The node name (``--node-name``, else ``--ros-args -r __node:=NAME``, else the
program's default) picks the sections. A section for this node may hold only
this program's parameters (a typo is an error); a ``/**`` section may hold
other nodes' parameters too. Values are type-checked against the defaults.
Every problem raises :class:`ParamsError` (an :class:`agnoshm.config.ConfigError`)
naming the file, the node and the parameter.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from agnoshm.config import ConfigError
from agnoshm.ros.bridge import split_ros_args  # also part of this module's API

WILDCARDS = ("/**", "**", "/*", "*")
ROS_STANDARD = {"use_sim_time", "qos_overrides", "start_type_description_service"}
# ``--ros-args`` options that take one value and that these programs ignore
_ROS_OPTIONS_WITH_VALUE = {"--log-level", "--log-config-file", "--log-file-name", "-e", "--enclave"}


class ParamsError(ConfigError):
    """Raised when a parameter file or value is missing, malformed or of the wrong type."""


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter: its name, default (which fixes its type) and help text.

    ``minimum`` bounds numbers from below; ``choices`` lists the allowed strings.
    """

    name: str
    default: Any
    help: str
    minimum: float | None = None
    choices: tuple[str, ...] | None = None

    @property
    def kind(self) -> type:
        return type(self.default)

    def convert(self, value: Any, where: str) -> Any:
        """Return ``value`` as this parameter's type, or raise :class:`ParamsError`."""
        kind = self.kind
        if kind is bool:
            if not isinstance(value, bool):
                raise ParamsError(f"{where}: {self.name} must be true or false, not {value!r}")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ParamsError(f"{where}: {self.name} must be an integer, not {value!r}")
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamsError(f"{where}: {self.name} must be a number, not {value!r}")
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise ParamsError(f"{where}: {self.name} must be a finite number, not {value!r}")
        elif kind is str:
            if not isinstance(value, str):
                raise ParamsError(f"{where}: {self.name} must be a string, not {value!r} "
                                  "(quote it in YAML)")
        if self.minimum is not None and value < self.minimum:
            raise ParamsError(f"{where}: {self.name} must be at least {self.minimum}, not {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ParamsError(f"{where}: {self.name} must be one of {', '.join(self.choices)}, "
                              f"not {value!r}")
        return value


@dataclasses.dataclass
class RosArgs:
    """What these programs use of ``--ros-args``: the node name, parameter files, ``-p``."""

    node_name: str | None = None
    params_files: list[str] = dataclasses.field(default_factory=list)
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)


def parse_ros_args(ros_args: list[str]) -> RosArgs:
    """Read ``-r __node:=NAME``, ``--params-file FILE`` and ``-p NAME:=VALUE`` from ROS arguments."""
    import yaml

    found = RosArgs()
    tokens = [t for t in ros_args if t != "--ros-args"]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        value = tokens[i + 1] if i + 1 < len(tokens) else None
        if token in ("-r", "--remap", "-p", "--param", "--params-file") and value is None:
            raise ParamsError(f"--ros-args: {token} needs a value")
        if token in ("-r", "--remap"):
            source, _, target = value.partition(":=")
            if source == "__node" or source == "__name":
                found.node_name = target
            i += 2
        elif token in ("-p", "--param"):
            name, sep, text = value.partition(":=")
            if not sep or not name:
                raise ParamsError(f"--ros-args {token} {value!r}: expected NAME:=VALUE")
            try:
                found.overrides[name] = yaml.safe_load(text)
            except yaml.YAMLError:
                found.overrides[name] = text
            i += 2
        elif token == "--params-file":
            found.params_files.append(value)
            i += 2
        elif token in _ROS_OPTIONS_WITH_VALUE:
            i += 2
        else:
            i += 1
    return found


def _matches(key: str, node_name: str) -> bool:
    return key in WILDCARDS or key.strip("/").rsplit("/", 1)[-1] == node_name


def read_params_file(path: str | Path, node_name: str, params: Iterable[Param]) -> dict[str, Any]:
    """Return the values that ``path`` sets for ``node_name``, checked against ``params``.

    :raises ParamsError: if the file is missing, not YAML, not in the ROS 2
        parameter-file shape, or sets an unknown parameter or a wrong type for this node.
    """
    import yaml

    path = Path(path)
    by_name = {p.name: p for p in params}
    try:
        text = path.read_text()
    except OSError as err:
        raise ParamsError(f"parameter file {path}: cannot read it ({err.strerror or err})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ParamsError(f"parameter file {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"parameter file {path} must map node names to "
                          f"{{ros__parameters: {{...}}}}, not a {type(data).__name__}")
    values: dict[str, Any] = {}
    # wildcard sections first, so that a section naming the node wins
    for key in sorted(data, key=lambda k: str(k) not in WILDCARDS):
        section = data[key]
        key = str(key)
        if not _matches(key, node_name):
            continue
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict) \
                or set(section) - {"ros__parameters"}:
            raise ParamsError(f"parameter file {path}: section {key!r} must be "
                              f"{{ros__parameters: {{name: value, ...}}}}, not {section!r}")
        for name, value in section["ros__parameters"].items():
            name = str(name)
            where = f"parameter file {path}, node {key}"
            if name in by_name:
                values[name] = by_name[name].convert(value, where)
            elif key not in WILDCARDS and name not in ROS_STANDARD:
                raise ParamsError(f"{where}: unknown parameter {name!r}; "
                                  f"known: {', '.join(sorted(by_name))}")
    return values


def check_params_file(path: str | Path, nodes: Mapping[str, Iterable[Param]]) -> None:
    """Check a whole parameter file whose node sections are exactly ``nodes`` (and ``/**``).

    Used before anything starts (launch files, ``agnoshm.demo.check_config``, setup.py).

    :raises ParamsError: for a section of an unknown node, or a bad value for any node.
    """
    import yaml

    for name, params in nodes.items():
        read_params_file(path, name, params)
    data = yaml.safe_load(Path(path).read_text()) or {}
    unknown = [str(k) for k in data if not any(_matches(str(k), n) for n in nodes)]
    if unknown:
        raise ParamsError(f"parameter file {path}: unknown node sections {unknown}; "
                          f"this file configures {', '.join(nodes)} (and /** for all)")
    known = {p.name for params in nodes.values() for p in params} | ROS_STANDARD
    for key in (k for k in data if str(k) in WILDCARDS):
        stray = set(data[key]["ros__parameters"]) - known
        if stray:
            raise ParamsError(f"parameter file {path}, node {key}: unknown parameters "
                              f"{sorted(stray)}; known: {', '.join(sorted(known - ROS_STANDARD))}")


def add_arguments(parser: argparse.ArgumentParser, params: Iterable[Param], default_node: str) -> None:
    """Add one ``--flag`` per parameter plus ``--params-file``, ``--node-name`` and ``--ros``."""
    for p in params:
        flag = "--" + p.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": p.name, "default": None, "metavar": p.name.upper(),
                                  "help": f"{p.help} (default: {p.default!r})"}
        if p.kind is bool:
            kwargs = {"dest": p.name, "default": None, "action": argparse.BooleanOptionalAction,
                      "help": f"{p.help} (default: {p.default})"}
        elif p.kind in (int, float):
            kwargs["type"] = p.kind
        if p.choices:
            kwargs["choices"] = p.choices
            kwargs.pop("metavar", None)
        parser.add_argument(flag, **kwargs)
    parser.add_argument("--params-file", action="append", default=[], metavar="YAML",
                        help="ROS 2 parameter file (`node: {ros__parameters: {...}}`, `/**:` "
                             "for all); repeatable, later files win; flags win over files")
    parser.add_argument("--node-name", default=None,
                        help=f"node name, which also picks the parameter-file section "
                             f"(default: {default_node})")
    parser.add_argument("--ros", action="store_true",
                        help="run as an rclpy node (ROS 2 must be sourced); implied by --ros-args")


def parse(parser: argparse.ArgumentParser, params: list[Param], default_node: str,
          argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` and resolve every parameter (see the module docstring).

    The result has one attribute per parameter plus ``node_name``, ``ros_args``
    (the ``--ros-args ...`` part, for ``rclpy.init``) and ``ros`` (``--ros`` was given).

    :raises ParamsError: for a bad parameter file or value.
    :raises SystemExit: for a usage error (argparse prints it).
    """
    own, ros_args = split_ros_args(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(own)
    ros = parse_ros_args(ros_args)
    node_name = args.node_name or ros.node_name or default_node
    values = {p.name: p.default for p in params}
    by_name = {p.name: p for p in params}
    for path in [*ros.params_files, *args.params_file]:
        values.update(read_params_file(path, node_name, params))
    for name, value in ros.overrides.items():
        if name in by_name:
            values[name] = by_name[name].convert(value, f"--ros-args -p {name}")
        elif name not in ROS_STANDARD:
            raise ParamsError(f"--ros-args -p {name}: unknown parameter; "
                              f"known: {', '.join(sorted(by_name))}")
    for p in params:
        given = getattr(args, p.name)
        if given is not None:
            values[p.name] = p.convert(given, "--" + p.name.replace("_", "-"))
    for name, value in values.items():
        setattr(args, name, value)
    args.node_name = node_name
    args.ros_args = ros_args
    return args
