"""Message synchronization over agnoshm subscriptions, shaped like ROS 2's ``message_filters``.

Filters pass messages on to the callbacks registered on them. A :class:`Subscriber`
feeds an agnoshm subscription in; a synchronizer listens on several inputs and calls
its callbacks with one message per input once their stamps (``msg.header.stamp``)
match::

    from agnoshm import message_filters

    image = message_filters.Subscriber(node, "sensor_msgs/msg/Image", "/camera/image")
    info = message_filters.Subscriber(node, "sensor_msgs/msg/CameraInfo", "/camera/info")
    sync = message_filters.ApproximateTimeSynchronizer([image, info], 10, slop=0.02)
    sync.registerCallback(lambda image, info: ...)   # read-only views, never copies
    agnoshm.spin(node)

The messages are the subscriptions' received views, passed on as they are. A view
keeps its publisher's memory in use, so a synchronizer keeps one only while it can
still be part of a match: it drops it once it matched, once its queue is over
``queue_size``, and once every later message of another input must miss it. That
last rule assumes that each input's stamps do not go backwards, as ROS 2's C++
ApproximateTime policy requires; rclpy's ``message_filters`` keeps such messages
until its queue overflows. Otherwise matching follows rclpy's ``message_filters``:
the same queues, slop test and choice of messages.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from numbers import Real
from typing import Any, Callable, Iterable

import agnoshm
from agnoshm.errors import HeaderlessMessageError, InvalidSynchronizerError
from agnoshm.msg import MessageType, get_message

__all__ = ["ApproximateTimeSynchronizer", "HeaderlessMessageError", "InvalidSynchronizerError",
           "SimpleFilter", "Subscriber", "TimeSynchronizer"]

NS_PER_SEC = 1_000_000_000


class SimpleFilter:
    """A filter: calls every registered callback with what it outputs."""

    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Callable, tuple]] = {}

    def registerCallback(self, cb: Callable, *args: Any) -> int:  # noqa: N802 (ROS 2's name)
        """Call ``cb(*outputs, *args)`` whenever this filter outputs; return a connection id."""
        connection = len(self.callbacks)
        self.callbacks[connection] = (cb, args)
        return connection

    def signalMessage(self, *msg: Any) -> None:  # noqa: N802 (ROS 2's name)
        """Pass ``msg`` (one message, or one per input) to every registered callback."""
        for cb, args in list(self.callbacks.values()):
            cb(*(msg + args))


class Subscriber(SimpleFilter):
    """The filter at the start of a chain: an agnoshm subscription's messages, as they come.

    :param node: an ``agnoshm.Node`` or an ``rclpy.node.Node`` (through
        :func:`agnoshm.ros.create_subscription`; callbacks then run in rclpy's executor).
    :param msg_type: a ROS 2 message type, as ``create_subscription`` takes it.
    :param topic: the topic name.
    :param qos_profile: an int depth or a ``QoSProfile``; 10 as in ``message_filters``.
    :param callback_group: the subscription's callback group (default: the node's).
    """

    def __init__(self, node, msg_type, topic: str, qos_profile=10, *, callback_group=None):
        super().__init__()
        self.node = node
        self.topic = topic
        self.sub = agnoshm.create_subscription(node, msg_type, topic, self.callback, qos_profile,
                                               callback_group=callback_group)

    @property
    def msg_type(self) -> MessageType:
        return self.sub.msg_type

    def callback(self, msg) -> None:
        self.signalMessage(msg)

    def getTopic(self) -> str:  # noqa: N802 (ROS 2's name)
        return self.topic

    def __getattr__(self, key: str):
        """Everything else is the subscription's (as in ``message_filters``)."""
        if key == "sub":  # not set: __init__ failed before it
            raise AttributeError(key)
        return getattr(self.sub, key)


class TimeSynchronizer(SimpleFilter):
    """Output one message per input when all inputs have a message with the same stamp.

    ``registerCallback(cb)``: ``cb(msg_1, ..., msg_n)`` in the order of ``fs``. Matched
    sets come out oldest stamp first.

    :param fs: the input filters (two or more), e.g. :class:`Subscriber` s.
    :param queue_size: messages kept per input while they wait for a match; past
        that, the oldest stamp goes.
    :raises InvalidSynchronizerError: for fewer than two inputs, an input that is no
        filter, or ``queue_size`` < 1.
    :raises HeaderlessMessageError: if a :class:`Subscriber` input's type has no
        ``header.stamp`` (and, at a message, if another input's message has none).
    """

    allow_headerless = False
    _headerless_fix = ("use ApproximateTimeSynchronizer(fs, queue_size, slop, "
                       "allow_headerless=True) to stamp them with their receive time, or a type "
                       "with a header")

    def __init__(self, fs: Iterable, queue_size: int):
        super().__init__()
        fs = _checked_inputs(fs, type(self).__name__)
        self.queue_size = _checked_queue_size(queue_size)
        self.lock = threading.Lock()
        self._names = [_describe(f, index) for index, f in enumerate(fs)]
        for index, f in enumerate(fs):
            msg_type = getattr(f, "msg_type", None)
            if not self.allow_headerless and isinstance(msg_type, MessageType) \
                    and not has_stamp(msg_type):
                self._refuse_headerless(index, msg_type.type_name)
        self.connectInput(fs)

    def connectInput(self, fs) -> None:  # noqa: N802 (ROS 2's name)
        """Listen on ``fs``: one queue (stamp in ns -> message) per input."""
        self.queues: list[dict[int, Any]] = [{} for _ in fs]
        self._last: list[int | None] = [None] * len(fs)  # stamp of each input's latest message
        self.input_connections = [f.registerCallback(self.add, queue, index)
                                  for index, (f, queue) in enumerate(zip(fs, self.queues))]

    def add(self, msg, my_queue: dict, my_queue_index: int | None = None) -> None:
        """Take ``msg`` from the input that owns ``my_queue``; output what it completes."""
        index = self._index(my_queue, my_queue_index)
        stamp = self._stamp(msg, index)
        with self.lock:
            my_queue[stamp] = msg
            self._last[index] = stamp
            while len(my_queue) > self.queue_size:
                del my_queue[min(my_queue)]
            matched = self._match(index, stamp)
            self._drop_unmatchable()
            # under the lock, as message_filters does: outputs keep their stamps' order
            for msgs in matched:
                self.signalMessage(*msgs)

    def _match(self, index: int, stamp: int) -> list[tuple]:
        """Remove and return every set of messages with one stamp, oldest first."""
        common = set(self.queues[0]).intersection(*self.queues[1:])
        return [tuple(queue.pop(t) for queue in self.queues) for t in sorted(common)]

    def _can_match(self, index: int, stamp: int) -> bool:
        """Whether the message at ``stamp`` of input ``index`` may still be output."""
        waiting = False
        for j, queue in enumerate(self.queues):
            if j == index:
                continue
            last = self._last[j]
            if last is None or last < stamp:  # j may still bring this stamp
                waiting = True
            elif stamp not in queue:
                return False
        return waiting  # a match needs one more message: it comes from another input

    def _drop_unmatchable(self) -> None:
        for index, queue in enumerate(self.queues):
            for stamp in [s for s in queue if not self._can_match(index, s)]:
                del queue[stamp]

    def _index(self, queue: dict, index: int | None) -> int:
        if index is not None:
            return index
        return next(i for i, q in enumerate(self.queues) if q is queue)

    def _stamp(self, msg, index: int) -> int:
        """``msg.header.stamp`` in ns; with ``allow_headerless``, the receive time."""
        stamp = stamp_of(msg)
        if stamp is not None:
            return stamp
        if not self.allow_headerless:
            self._refuse_headerless(index, _type_name(msg))
        return time.time_ns()  # what rclpy's ROSClock().now() reads without sim time

    def _refuse_headerless(self, index: int, type_name: str):
        raise HeaderlessMessageError(
            f"{type(self).__name__}: {self._names[index]} carries {type_name}, which has no "
            f"header.stamp to synchronize by: {self._headerless_fix}")


class ApproximateTimeSynchronizer(TimeSynchronizer):
    """Output one message per input when the inputs have messages with stamps within ``slop``.

    As in ``message_filters``: each new message is matched with the messages of the
    other inputs, the closest stamps first, and a set is output when its newest and
    oldest stamps are less than ``slop`` apart.

    :param fs: the input filters (two or more).
    :param queue_size: messages kept per input while they wait for a match.
    :param slop: seconds (> 0) by which the stamps of a set may differ.
    :param allow_headerless: stamp messages without ``header.stamp`` with their receive
        time (system clock, ``time.time_ns()``, what rclpy's ``ROSClock`` reads without
        ``use_sim_time``); off, such an input raises :class:`HeaderlessMessageError`.
    :raises InvalidSynchronizerError: as :class:`TimeSynchronizer`, or for ``slop`` <= 0.
    """

    _headerless_fix = ("pass allow_headerless=True to stamp them with their receive time "
                       "(system clock), or use a type with a header")

    def __init__(self, fs: Iterable, queue_size: int, slop: float, allow_headerless: bool = False):
        self.slop = _checked_slop(slop)
        self._slop_ns = round(self.slop * NS_PER_SEC)
        self.allow_headerless = bool(allow_headerless)
        super().__init__(fs, queue_size)

    def _match(self, index: int, stamp: int) -> list[tuple]:
        """The set with the new message whose stamps are closest to its stamp (at most one)."""
        slop = self._slop_ns
        others = [j for j in range(len(self.queues)) if j != index]
        nearest = []
        for j in others:
            near = sorted((s for s in self.queues[j] if abs(s - stamp) <= slop),
                          key=lambda s: abs(s - stamp))
            if not near:
                return []
            nearest.append(near)
        for stamps in itertools.product(*nearest):
            if max(*stamps, stamp) - min(*stamps, stamp) < slop:
                msgs = [None] * len(self.queues)
                msgs[index] = self.queues[index].pop(stamp)
                for j, s in zip(others, stamps):
                    msgs[j] = self.queues[j].pop(s)
                return [tuple(msgs)]
        return []

    def _can_match(self, index: int, stamp: int) -> bool:
        slop = self._slop_ns
        waiting = False
        for j, queue in enumerate(self.queues):
            if j == index:
                continue
            last = self._last[j]
            if last is None or last - stamp < slop:  # a later message of j may be close enough
                waiting = True
            elif not any(abs(s - stamp) < slop for s in queue):
                return False
        return waiting


def has_stamp(msg_type) -> bool:
    """Whether messages of ``msg_type`` carry ``header.stamp`` (a ``std_msgs/Header``)."""
    definition = get_message(msg_type).definition
    header = next((f for f in definition.fields if f.name == "header"), None)
    if header is None or not header.type.is_message or header.type.is_array \
            or header.type.is_sequence:
        return False
    return any(f.name == "stamp" for f in get_message(header.type.base).definition.fields)


def stamp_of(msg) -> int | None:
    """``msg.header.stamp`` in ns (a view, an rclpy or rosbags message), or None if it has none."""
    stamp = getattr(getattr(msg, "header", None), "stamp", None)
    if stamp is None:
        return None
    nanoseconds = getattr(stamp, "nanoseconds", None)  # an rclpy.time.Time
    if nanoseconds is not None:
        return int(nanoseconds)
    return stamp.sec * NS_PER_SEC + stamp.nanosec


def _type_name(msg) -> str:
    # an agnoshm view, a rosbags message, else the class (rclpy's classes are named as the type)
    name = getattr(type(msg), "_type_name", None) or getattr(type(msg), "__msgtype__", None)
    return name if isinstance(name, str) else type(msg).__qualname__


def _describe(f, index: int) -> str:
    topic = getattr(f, "topic", None)
    return f"input {index} (topic {topic!r})" if isinstance(topic, str) else f"input {index}"


def _checked_inputs(fs, kind: str) -> list:
    try:
        fs = list(fs)
    except TypeError:
        raise InvalidSynchronizerError(
            f"{kind} takes a list of input filters, not a {type(fs).__name__}: pass "
            "[Subscriber(node, MsgType, topic), ...]") from None
    if len(fs) < 2:
        raise InvalidSynchronizerError(
            f"{kind} needs at least 2 inputs to synchronize, got {len(fs)}: pass a list of two "
            "or more filters, or register your callback on the one input directly "
            "(f.registerCallback(cb))")
    for index, f in enumerate(fs):
        if not callable(getattr(f, "registerCallback", None)):
            raise InvalidSynchronizerError(
                f"{kind}: input {index} is a {type(f).__name__}, not a filter: pass "
                "message_filters.Subscriber(node, MsgType, topic) objects (or any object "
                "with registerCallback)")
    return fs


def _checked_queue_size(queue_size) -> int:
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
        raise InvalidSynchronizerError(
            f"queue_size must be an int >= 1 (messages kept per input while they wait for a "
            f"match), got {queue_size!r}: pass e.g. 10")
    return queue_size


def _checked_slop(slop) -> float:
    if isinstance(slop, bool) or not isinstance(slop, Real) or not math.isfinite(slop) \
            or slop <= 0:
        raise InvalidSynchronizerError(
            f"slop must be a positive number of seconds (how far apart the stamps of a set may "
            f"be), got {slop!r}: pass e.g. 0.1, or use TimeSynchronizer for equal stamps")
    return float(slop)
