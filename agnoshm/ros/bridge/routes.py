"""Which topics the bridge relays, and in which direction: :func:`plan` and its :class:`Route`\\ s.

Pure logic over the snapshots of :mod:`agnoshm.ros.bridge.graph` and the
configured topics; testable without ROS 2.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

from agnoshm.ros.bridge.graph import AgnoshmTopic, RosTopic

TO_ROS = "to_ros"
TO_AGNOSHM = "to_agnoshm"
BOTH = "both"
DIRECTIONS = (TO_ROS, TO_AGNOSHM, BOTH)

DEFAULT_DEPTH = 10


@dataclasses.dataclass(frozen=True)
class TopicConfig:
    """A configured topic: bridged whether or not it has peers."""

    name: str
    direction: str = BOTH
    type_name: str | None = None
    depth: int | None = None


@dataclasses.dataclass(frozen=True)
class Route:
    """What the bridge runs for one topic."""

    topic: str
    type_name: str
    direction: str
    depth: int = DEFAULT_DEPTH
    transient_local_to_ros: bool = False  # agnoshm source is latched: replay it to ROS
    transient_local_to_agnoshm: bool = False
    best_effort_from_ros: bool = False  # the ROS source publishes BEST_EFFORT

    @property
    def key(self) -> tuple[str, str]:
        """Routes with the same key are the same bridge (QoS details follow the first)."""
        return self.type_name, self.direction

    @property
    def to_ros(self) -> bool:
        return self.direction in (TO_ROS, BOTH)

    @property
    def to_agnoshm(self) -> bool:
        return self.direction in (TO_AGNOSHM, BOTH)


def plan(agnoshm: Mapping[str, AgnoshmTopic], ros: Mapping[str, RosTopic], *,
         configured: Iterable[TopicConfig] = (), on_demand: bool = True,
         ) -> tuple[dict[str, Route], dict[str, str]]:
    """Decide which topics to bridge, in which direction.

    On demand, ``to_ros`` needs an agnoshm publisher and a ROS subscriber,
    ``to_agnoshm`` a ROS publisher and an agnoshm subscription (bridges never
    count).  Configured topics are bridged in their configured direction, plus
    any direction demand adds.

    :returns: ``(routes, skipped)``: topic → :class:`Route`, and topic → why a
        wanted topic is not bridged (type unknown or different on the two sides).
    """
    routes: dict[str, Route] = {}
    skipped: dict[str, str] = {}
    wanted: dict[str, tuple[str, TopicConfig | None]] = {}
    if on_demand:
        for name, a in agnoshm.items():
            r = ros.get(name)
            if r is None:
                continue
            to_ros = a.publishers > 0 and r.subscribers > 0
            to_agnoshm = r.publishers > 0 and a.subscriptions > 0
            if to_ros or to_agnoshm:
                wanted[name] = (BOTH if to_ros and to_agnoshm else TO_ROS if to_ros else TO_AGNOSHM,
                                None)
    for config in configured:
        demand = wanted.get(config.name, (config.direction, None))[0]
        wanted[config.name] = (_union(config.direction, demand), config)
    for name, (direction, config) in sorted(wanted.items()):
        a, r = agnoshm.get(name), ros.get(name)
        type_name = (config and config.type_name) or (a and a.type_name) or \
            (r and len(r.type_names) == 1 and r.type_names[0]) or None
        reason = _type_problem(type_name, a, r)
        if reason:
            skipped[name] = reason
            continue
        depth = (config and config.depth) or (a and a.depth) or DEFAULT_DEPTH
        routes[name] = Route(
            name, type_name, direction, depth,
            transient_local_to_ros=bool(a and a.publishers_transient_local),
            transient_local_to_agnoshm=bool(r and r.publishers_transient_local),
            best_effort_from_ros=bool(r and r.publishers_best_effort))
    return routes, skipped


def _union(a: str, b: str) -> str:
    return a if a == b else BOTH


def _type_problem(type_name, a: AgnoshmTopic | None, r: RosTopic | None) -> str | None:
    if not type_name:
        return "message type unknown: give it (TYPE in --topic, `type:` in YAML) or wait for an endpoint"
    if a is not None and a.type_name != type_name:
        return f"agnoshm carries {a.type_name}, not {type_name}"
    if r is not None and r.type_names and type_name not in r.type_names:
        return f"ROS 2 carries {', '.join(r.type_names)}, agnoshm {type_name}"
    if a is not None and r is not None and r.type_hash and a.type_hash and r.type_hash != a.type_hash:
        return (f"{type_name} differs: agnoshm {a.type_hash}, ROS 2 {r.type_hash} (use the same "
                "message definitions on both sides)")
    return None
