"""Play a rosbag2 bag (MCAP or sqlite3) into agnoshm topics at the recorded timing."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from agnoshm.bag import BagError

DEFAULT_DEPTH = 10


@dataclass
class PlaySummary:
    """What a playback published."""

    path: Path
    counts: dict[str, int] = field(default_factory=dict)  # topic -> messages published
    loops: int = 0

    @property
    def messages(self) -> int:
        return sum(self.counts.values())


def play(path, *, rate: float = 1.0, loop: bool = False, topics: list[str] | None = None,
         wait_for_subscribers: bool = False, stop: threading.Event | None = None,
         on_message: Callable[[str, int], None] | None = None) -> PlaySummary:
    """Publish the messages of the bag at ``path`` into agnoshm topics.

    Each message is deserialized with rosbags and published with one copy into a
    loan.  Message ``i`` is published ``(t_i - t_0) / rate`` seconds after the
    start, ``t`` being the bag timestamps.  A type that agnoshm does not know is
    taken from the bag's own message definitions.

    :param rate: playback speed factor (> 0).
    :param loop: start over at the end until ``stop`` is set.
    :param topics: play only these topics (default: all).
    :param wait_for_subscribers: first wait until every topic has a subscription.
    :param stop: stop when this event is set.
    :param on_message: called with ``(topic, messages so far)`` after each publish.
    :raises BagError: if the bag cannot be read, or holds none of ``topics``.
    """
    import agnoshm
    from rosbags.rosbag2 import Reader

    if not rate > 0:
        raise BagError(f"rate must be a positive number, not {rate}")
    path = Path(path)
    stop = stop or threading.Event()
    try:
        reader = Reader(path)
        reader.open()
    except Exception as err:  # rosbags raises ReaderError, and OSError for missing files
        raise BagError(f"cannot read bag {path}: {err}") from None
    try:
        connections = [c for c in reader.connections if topics is None or c.topic in topics]
        if not connections:
            known = sorted({c.topic for c in reader.connections})
            raise BagError(f"bag {path} holds none of {topics}; its topics: {', '.join(known)}")
        typestore = _prepare_types(connections)
        summary = PlaySummary(path, {c.topic: 0 for c in connections})
        started = not agnoshm.ok()
        node = agnoshm.Node(f"_agnoshm_bag_play_{os.getpid()}")
        try:
            publishers = {}
            for c in connections:
                if c.topic not in publishers:
                    publishers[c.topic] = node.create_publisher(c.msgtype, c.topic, _qos(c))
            if wait_for_subscribers:
                while not stop.is_set() and any(p.get_subscription_count() == 0
                                                 for p in publishers.values()):
                    stop.wait(0.01)
            while not stop.is_set():
                _play_once(reader, connections, typestore, publishers, rate, stop, summary,
                           on_message)
                summary.loops += 1
                if not loop:
                    break
        finally:
            node.destroy_node()  # publishers linger for subscribers to take their last messages
            if started:
                agnoshm.shutdown()
        return summary
    finally:
        reader.close()


def _play_once(reader, connections, typestore, publishers, rate, stop, summary, on_message):
    first = None
    start = time.monotonic_ns()
    for connection, timestamp, raw in reader.messages(connections=connections):
        if first is None:
            first = timestamp
        due = start + (timestamp - first) / rate
        while True:
            wait = (due - time.monotonic_ns()) / 1e9
            if wait <= 0 or stop.wait(wait):
                break
        if stop.is_set():
            return
        msg = typestore.deserialize_cdr(raw, connection.msgtype)
        publishers[connection.topic].publish(msg)
        summary.counts[connection.topic] += 1
        if on_message is not None:
            on_message(connection.topic, summary.messages)


def _prepare_types(connections):
    """The rosbags type store agnoshm resolves types from, with the bag's types added."""
    from rosbags.typesys import get_types_from_msg

    from agnoshm.msg.types import default_registry

    registry = default_registry()
    typestore = registry.rosbags.typestore
    for c in connections:
        if c.msgtype in typestore.fielddefs or c.msgtype in registry:
            continue
        definition = getattr(c.msgdef, "data", c.msgdef)
        if not definition or str(getattr(c.msgdef, "format", "MSG")).endswith("IDL"):
            raise BagError(f"agnoshm does not know {c.msgtype} (topic {c.topic}) and the bag "
                           "has no .msg definition of it: register it with "
                           "agnoshm.register_msg(...) first")
        typestore.register(get_types_from_msg(definition, c.msgtype))
    return typestore


def _qos(connection):
    """Depth and durability as the recorded publisher offered them."""
    import agnoshm

    depth, durability = DEFAULT_DEPTH, agnoshm.DurabilityPolicy.VOLATILE
    profiles = getattr(connection.ext, "offered_qos_profiles", None) or []
    if profiles:
        offered = profiles[0]
        depth = max(depth, int(offered.depth) or 0)
        if getattr(offered.durability, "value", offered.durability) == \
                int(agnoshm.DurabilityPolicy.TRANSIENT_LOCAL):
            durability = agnoshm.DurabilityPolicy.TRANSIENT_LOCAL
    return agnoshm.QoSProfile(depth=depth, durability=durability)
