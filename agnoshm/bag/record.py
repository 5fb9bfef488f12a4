"""Record agnoshm topics into a rosbag2 bag with MCAP storage."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from agnoshm.bag import CLOCK_OFFSET_KEY, BagError
from agnoshm.transport.waiting import wait_for_work

BAG_VERSION = 9  # rosbag2 metadata version (Iron and newer; rosbags writes 8 or 9)
MIN_DEPTH = 10
POLL_S = 0.1  # how often a waiting recorder looks for new topics and its stop event


@dataclass
class RecordSummary:
    """What a recording wrote."""

    path: Path
    counts: dict[str, int] = field(default_factory=dict)  # topic -> messages
    clock_offset_ns: int = 0
    first_ns: int | None = None  # wall-clock bag timestamps
    last_ns: int | None = None

    @property
    def messages(self) -> int:
        return sum(self.counts.values())


class _Topic:
    """One recorded topic: its subscription and, once known, its bag connection."""

    def __init__(self, name: str):
        self.name = name
        self.subscription = None
        self.type_name = ""
        self.qos = None
        self.connection = None


def record(path, topics: list[str], *, count: int | None = None, duration: float | None = None,
           stop: threading.Event | None = None,
           on_message: Callable[[str, int], None] | None = None,
           on_waiting: Callable[[list[str]], None] | None = None,
           on_open: Callable[[Path], None] | None = None) -> RecordSummary:
    """Record ``topics`` into a new bag directory ``path`` until a stop condition.

    Topics that do not exist yet are subscribed when they appear.  Each message's
    bag timestamp is its publish time in wall-clock nanoseconds.

    :param count: stop after this many messages (all topics together).
    :param duration: stop after this many seconds.
    :param stop: stop when this event is set (e.g. by a signal handler).
    :param on_message: called with ``(topic, messages so far)`` after each write.
    :param on_waiting: called once with the topics that do not exist yet.
    :param on_open: called with ``path`` once the bag is created, before anything is recorded
        (a caller announces the recording here, never before an error).
    :raises BagError: if ``path`` exists or a topic's type cannot be resolved.
    """
    import agnoshm
    from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

    from agnoshm.msg.types import default_registry

    path = Path(path)
    try:
        writer = Writer(path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
    except WriterError as err:
        raise BagError(f"cannot write bag {path}: {err} Choose another output directory.") from None
    offset = time.time_ns() - time.monotonic_ns()
    summary = RecordSummary(path, {name: 0 for name in topics}, offset)
    writer.set_custom_data(CLOCK_OFFSET_KEY, str(offset))
    typestore = default_registry().rosbags.typestore
    started = not agnoshm.ok()
    node = agnoshm.Node(f"_agnoshm_bag_record_{os.getpid()}")
    stop = stop or threading.Event()
    deadline = None if duration is None else time.monotonic() + duration
    pending = [_Topic(name) for name in topics]
    recording: list[_Topic] = []
    try:
        writer.open()
        try:
            if on_open is not None:
                on_open(path)
            _subscribe_existing(node, pending, recording, writer, typestore)
            if pending and on_waiting is not None:
                on_waiting([t.name for t in pending])
            doorbell = node._runtime.doorbell

            def look():
                """One message from each topic that has one (round robin), or how long to sleep:
                at most POLL_S, to subscribe topics that appear and to see ``stop``."""
                if pending:
                    _subscribe_existing(node, pending, recording, writer, typestore)
                taken = [(topic, msg) for topic in recording
                         if (msg := topic.subscription.take()) is not None]
                return (taken or None), POLL_S

            def write(taken) -> bool:
                """Write ``(topic, message)`` pairs; True once ``count`` is reached."""
                for topic, msg in taken:
                    _write(writer, typestore, topic, msg, summary)
                    if on_message is not None:
                        on_message(topic.name, summary.messages)
                    if count is not None and summary.messages >= count:
                        return True
                return False

            while not stop.is_set():
                taken = wait_for_work(doorbell, look, deadline=deadline, stop=stop.is_set)
                if taken is None:  # stopped, or the duration is over
                    break
                if write(taken):
                    return summary
                if deadline is not None and time.monotonic() >= deadline:
                    break
            # Messages already taken (a take holds a batch back) are in the bag, not lost.
            for topic in recording:
                pending_messages = iter(topic.subscription.take_pending, None)
                if write((topic, msg) for msg in pending_messages):
                    break
            return summary
        finally:
            for topic in recording:  # topics that got no message still belong in the bag
                if topic.connection is None:
                    _connect(writer, typestore, topic)
            writer.close()
    finally:
        node.destroy_node()
        if started:
            agnoshm.shutdown()


def _subscribe_existing(node, pending: list, recording: list, writer, typestore) -> None:
    """Subscribe to every pending topic that now exists in the registry."""
    import agnoshm
    from agnoshm.errors import TypeMismatchError
    from agnoshm.msg import get_message

    registry = node._runtime.registry
    for topic in list(pending):
        found = registry.read_topic(topic.name)
        if found is None:
            continue
        type_name = found.type_name
        try:
            msg_type = get_message(type_name)
        except TypeMismatchError as err:
            raise BagError(f"cannot record {topic.name}: its type {type_name} cannot be "
                           f"resolved here: {err}") from None
        depth = max([MIN_DEPTH] + [p.depth for p in found.publishers])
        durability = agnoshm.DurabilityPolicy.TRANSIENT_LOCAL if found.transient_local \
            else agnoshm.DurabilityPolicy.VOLATILE
        topic.subscription = node.create_polling_subscription(
            msg_type, topic.name, agnoshm.QoSProfile(depth=depth, durability=durability))
        topic.type_name = msg_type.type_name
        topic.qos = (depth, int(durability))
        pending.remove(topic)
        recording.append(topic)
        if topic.type_name in typestore.fielddefs:
            _connect(writer, typestore, topic)


def _connect(writer, typestore, topic: _Topic) -> None:
    from rosbags.interfaces import (
        Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime)

    depth, durability = topic.qos
    never = QosTime(0x7FFFFFFF, 0xFFFFFFFF)
    qos = Qos(QosHistory.KEEP_LAST, depth, QosReliability.RELIABLE, QosDurability(durability),
              never, never, QosLiveliness.AUTOMATIC, never, False)
    topic.connection = writer.add_connection(topic.name, topic.type_name, typestore=typestore,
                                             offered_qos_profiles=[qos])


def _write(writer, typestore, topic: _Topic, msg, summary: RecordSummary) -> None:
    data = typestore.serialize_cdr(msg.to_rosbags(typestore), topic.type_name)
    if topic.connection is None:  # a registered type reaches the store with its first message
        _connect(writer, typestore, topic)
    stamp = msg.timestamp_ns + summary.clock_offset_ns
    writer.write(topic.connection, stamp, data)
    summary.counts[topic.name] += 1
    summary.first_ns = stamp if summary.first_ns is None else min(summary.first_ns, stamp)
    summary.last_ns = stamp if summary.last_ns is None else max(summary.last_ns, stamp)
