"""The bridge's configuration: ``--topic`` specs and the YAML file, merged into :class:`BridgeOptions`.

YAML keys: ``on_demand`` (bool), ``period`` (seconds) and ``topics`` (names, or
mappings with ``name``, ``direction``, ``type``, ``depth``); docs/ros.md shows
an example.  Every problem raises :class:`BridgeConfigError` naming the key
and the fix.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from agnoshm.config import read_yaml_mapping
from agnoshm.errors import InvalidTopicNameError
from agnoshm.ros.bridge.graph import BRIDGE_NODE_NAME
from agnoshm.ros.bridge.routes import BOTH, DIRECTIONS, TopicConfig
from agnoshm.topic_name import expand_topic_name

DEFAULT_PERIOD_SEC = 1.0


class BridgeConfigError(ValueError):
    """Raised for a bad ``--topic`` value or bridge YAML file."""


@dataclasses.dataclass(frozen=True)
class BridgeOptions:
    """The effective configuration: configured topics, on-demand bridging, update period."""

    topics: tuple = ()
    on_demand: bool = True
    period_sec: float = DEFAULT_PERIOD_SEC


def parse_topic(spec: str) -> TopicConfig:
    """``NAME[:DIRECTION[:TYPE]]``, e.g. ``/camera/image:to_ros:sensor_msgs/msg/Image``.

    :raises BridgeConfigError: for an empty name or an unknown direction.
    """
    name, _, rest = spec.partition(":")
    direction, _, type_name = rest.partition(":")
    return topic_config({"name": name, "direction": direction or BOTH, "type": type_name or None})


def topic_config(item) -> TopicConfig:
    """A :class:`TopicConfig` from a YAML entry: a name, or a mapping with ``name`` and
    optional ``direction``, ``type`` and ``depth``."""
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict):
        raise BridgeConfigError(f"a topic entry must be a name or a mapping, not {item!r}")
    unknown = set(item) - {"name", "direction", "type", "depth"}
    if unknown:
        raise BridgeConfigError(f"unknown topic key(s) {sorted(unknown)} in {item!r} "
                                "(known: name, direction, type, depth)")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise BridgeConfigError(f"a topic needs a name, got {item!r}")
    try:
        expand_topic_name(name, BRIDGE_NODE_NAME, "/")  # relative names resolve on the node later
    except InvalidTopicNameError as err:
        raise BridgeConfigError(str(err)) from err
    direction = item.get("direction") or BOTH
    if direction not in DIRECTIONS:
        raise BridgeConfigError(f"direction of {name} must be one of {', '.join(DIRECTIONS)}, "
                                f"not {direction!r}")
    type_name = item.get("type")
    if type_name is not None and (not isinstance(type_name, str) or type_name.count("/") not in (1, 2)):
        raise BridgeConfigError(f"type of {name} must look like pkg/msg/Name, not {type_name!r}")
    depth = item.get("depth")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise BridgeConfigError(f"depth of {name} must be an int of at least 1, not {depth!r}")
    return TopicConfig(name, direction, type_name, depth)


def load_options(path: str | None = None, topics: Iterable[str] = (), on_demand: bool | None = None,
                 period_sec: float | None = None) -> BridgeOptions:
    """Merge the YAML file (keys ``on_demand``, ``period``, ``topics``) and the arguments
    (which win; ``--topic`` entries replace a YAML entry of the same name)."""
    data = {}
    if path is not None:
        data = read_yaml_mapping(path, ("on_demand", "period", "topics"), BridgeConfigError,
                                 "bridge configuration")
    entries = data.get("topics") or []
    if not isinstance(entries, list):
        raise BridgeConfigError("`topics` must be a list")
    configured = {c.name: c for c in map(topic_config, entries)}
    configured.update((c.name, c) for c in map(parse_topic, topics))
    demand = data.get("on_demand", True) if on_demand is None else on_demand
    if not isinstance(demand, bool):
        raise BridgeConfigError(f"on_demand must be true or false, not {demand!r}")
    period = data.get("period", DEFAULT_PERIOD_SEC) if period_sec is None else period_sec
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not 0 < period < 3600:
        raise BridgeConfigError(f"period must be a number of seconds in (0, 3600), not {period!r}")
    if not demand and not configured:
        raise BridgeConfigError("nothing to bridge: on-demand bridging is off and no topic is "
                                "configured (add --topic NAME, or drop --no-on-demand)")
    return BridgeOptions(tuple(configured.values()), demand, float(period))


def split_ros_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` into a program's own arguments and ROS ones (``--ros-args ... [--]``)."""
    own, ros, inside = [], [], False
    for arg in argv:
        if arg == "--ros-args":
            inside = True
            ros.append(arg)
        elif inside and arg == "--":
            inside = False
        else:
            (ros if inside else own).append(arg)
    return own, ros
