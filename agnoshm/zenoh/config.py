"""The Zenoh bridge's configuration: options, ``--topic`` specs and the YAML file.

YAML keys (``config/zenoh_bridge.yaml`` documents each): ``topics`` (names,
``NAME:TYPE`` strings, or mappings with ``name``, ``type``, ``depth``,
``durability``), ``connect`` and ``listen`` (lists of Zenoh endpoints such as
``tcp/192.168.1.10:7447``), ``mode`` (``peer`` or ``client``), ``domain`` (the ROS
domain id in the data keys; default ``ROS_DOMAIN_ID``), ``depth`` (default KEEP_LAST
depth) and ``on_demand`` (also relay every agnoshm topic that has a remote peer).  Command-line options win; a ``--topic`` replaces a YAML entry of the same
name.  With neither ``connect`` nor ``listen`` anywhere, the bridge connects to
``tcp/localhost:7447``, where rmw_zenoh's router (``ros2 run rmw_zenoh_cpp rmw_zenohd``)
listens by default.  Every problem raises :class:`ZenohConfigError` naming the key
and the fix.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from agnoshm.config import read_yaml_mapping
from agnoshm.zenoh.errors import ZenohConfigError
from agnoshm.zenoh.keyexpr import check_topic_name

DEFAULT_CONNECT = ("tcp/localhost:7447",)
DEFAULT_DEPTH = 10
MODES = ("peer", "client")
DURABILITIES = ("volatile", "transient_local")
_YAML_KEYS = ("topics", "connect", "listen", "mode", "domain", "depth", "on_demand")
_TOPIC_KEYS = ("name", "type", "depth", "durability")


@dataclasses.dataclass(frozen=True)
class TopicConfig:
    """A configured topic; ``type_name`` None means: learn it from agnoshm or the graph."""

    name: str
    type_name: str | None = None
    depth: int | None = None
    transient_local: bool = False


@dataclasses.dataclass(frozen=True)
class BridgeOptions:
    """The effective configuration of one bridge."""

    topics: tuple = ()
    mode: str = "peer"
    connect: tuple = DEFAULT_CONNECT
    listen: tuple = ()
    domain: int = 0
    depth: int = DEFAULT_DEPTH
    on_demand: bool = False  # also relay every agnoshm topic with a remote peer (demand.py)

    def depth_of(self, topic: TopicConfig) -> int:
        return topic.depth or self.depth


def _absolute(name: str) -> str:
    return name if name.startswith("/") else "/" + name


def parse_topic(spec: str) -> TopicConfig:
    """``NAME[:TYPE]``, e.g. ``/camera/image:sensor_msgs/msg/Image``.

    :raises ZenohConfigError: for an empty name or a malformed type.
    :raises ZenohTopicNameError: for a name Zenoh cannot carry.
    """
    name, _, type_name = spec.partition(":")
    return topic_config({"name": name, "type": type_name or None})


def topic_config(item) -> TopicConfig:
    """A :class:`TopicConfig` from a YAML entry (a name, ``NAME:TYPE``, or a mapping)."""
    if isinstance(item, str):
        return parse_topic(item)
    if not isinstance(item, dict):
        raise ZenohConfigError(f"a topic entry must be a name or a mapping, not {item!r}")
    unknown = set(item) - set(_TOPIC_KEYS)
    if unknown:
        raise ZenohConfigError(f"unknown topic key(s) {sorted(unknown)} in {item!r} "
                               f"(known: {', '.join(_TOPIC_KEYS)})")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ZenohConfigError(f"a topic needs a name, got {item!r}")
    name = check_topic_name(_absolute(name))
    type_name = item.get("type")
    if type_name is not None and (not isinstance(type_name, str) or type_name.count("/") != 2):
        raise ZenohConfigError(f"type of {name} must look like pkg/msg/Name, not {type_name!r}")
    depth = item.get("depth")
    if depth is not None:
        depth = _positive(depth, f"depth of {name}")
    durability = item.get("durability", "volatile")
    if durability not in DURABILITIES:
        raise ZenohConfigError(f"durability of {name} must be one of {', '.join(DURABILITIES)}, "
                               f"not {durability!r}")
    return TopicConfig(name, type_name, depth, durability == "transient_local")


def _positive(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ZenohConfigError(f"{what} must be an int of at least 1, not {value!r}")
    return value


def _endpoints(value, key: str) -> tuple:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and "/" in v
                                                       for v in value):
        raise ZenohConfigError(f"{key} must be a list of Zenoh endpoints like "
                               f"tcp/192.168.1.10:7447, not {value!r}")
    return tuple(value)


def load_options(path: str | None = None, *, topics: Iterable[str] = (),
                 connect: Iterable[str] | None = None, listen: Iterable[str] | None = None,
                 mode: str | None = None, domain: int | None = None, depth: int | None = None,
                 on_demand: bool | None = None, default_domain: int = 0) -> BridgeOptions:
    """Merge the YAML file and the command-line values (which win).

    :param default_domain: the domain when neither sets one (the caller's ``ROS_DOMAIN_ID``).
    """
    data = (read_yaml_mapping(path, _YAML_KEYS, ZenohConfigError, "Zenoh bridge configuration")
            if path is not None else {})
    entries = data.get("topics") or []
    if not isinstance(entries, list):
        raise ZenohConfigError("`topics` must be a list")
    configured = {c.name: c for c in map(topic_config, entries)}
    configured.update((c.name, c) for c in map(parse_topic, topics))
    on_demand = data.get("on_demand", False) if on_demand is None else on_demand
    if not isinstance(on_demand, bool):
        raise ZenohConfigError(f"on_demand must be true or false, not {on_demand!r}")
    if not configured and not on_demand:
        raise ZenohConfigError("nothing to bridge: name the topics with --topic NAME[:TYPE] "
                               "(repeatable) or under `topics` in the YAML file, or bridge "
                               "every topic with a remote peer: --on-demand")
    mode = mode or data.get("mode", "peer")
    if mode not in MODES:
        raise ZenohConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    connect = _endpoints(data.get("connect", []), "connect") if connect is None else \
        _endpoints(list(connect), "--connect")
    listen = _endpoints(data.get("listen", []), "listen") if listen is None else \
        _endpoints(list(listen), "--listen")
    if not connect and not listen:
        connect = DEFAULT_CONNECT
    if mode == "client" and not connect:
        raise ZenohConfigError("a client only connects: give --connect ENDPOINT (a router or "
                               "a peer that listens), or use --mode peer")
    domain = data.get("domain", default_domain) if domain is None else domain
    if isinstance(domain, bool) or not isinstance(domain, int) or domain < 0:
        raise ZenohConfigError(f"domain must be a non-negative int, not {domain!r}")
    depth = _positive(data.get("depth", DEFAULT_DEPTH) if depth is None else depth, "depth")
    return BridgeOptions(tuple(configured.values()), mode, connect, listen, domain, depth,
                         on_demand)
