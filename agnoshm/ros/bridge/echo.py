"""Echo prevention: the bridge never hands a message back to the side it came from.

On the agnoshm side a message published by a bridge's agnoshm publisher is
recognised by its publisher record (:func:`is_bridged_message`).  On the ROS
side rclpy reports no publisher GID per message, so when a topic is bridged
both ways the bridge publishes serialized bytes and remembers their digests
(:class:`EchoFilter`).
"""

from __future__ import annotations

import collections
import hashlib
import threading
import time

from agnoshm.ros.bridge.graph import is_bridge_node


def is_bridged_message(view, registry, own_name: str = "") -> bool:
    """Whether a received agnoshm message was published by a bridge (so it came from ROS 2
    and must not go back there)."""
    return is_bridge_node(registry.publisher_node_name(view._owner.publisher), own_name)


class EchoFilter:
    """Recognises the bridge's own ROS 2 publications when its ROS subscription gets them.

    The bridge publishes serialized bytes and :meth:`note`\\ s each; :meth:`is_echo`
    consumes one matching note.  A foreign message with identical bytes that
    arrives first consumes the note instead and the bridge's own copy passes:
    either way agnoshm gets that content exactly once.  Notes whose copy never
    came back (lost, or no matching subscription yet) expire after ``max_age_sec``.
    """

    def __init__(self, max_age_sec: float = 10.0, max_entries: int = 4096, clock=time.monotonic):
        self.max_age_sec = max_age_sec
        self.max_entries = max_entries
        self._clock = clock
        self._order: collections.deque = collections.deque()  # (time, digest), oldest first
        self._times: dict[bytes, collections.deque] = {}
        self._lock = threading.Lock()  # note() and is_echo() may run on different threads

    def __len__(self) -> int:
        return sum(len(q) for q in self._times.values())

    @staticmethod
    def _digest(data: bytes) -> bytes:
        return hashlib.blake2b(data, digest_size=16).digest()

    def note(self, data: bytes) -> None:
        """Remember that the bridge published ``data`` to ROS 2."""
        digest = self._digest(data)
        with self._lock:
            now = self._clock()
            self._order.append((now, digest))
            self._times.setdefault(digest, collections.deque()).append(now)
            self._expire(now)

    def is_echo(self, data: bytes) -> bool:
        """Whether ``data`` (received from ROS 2) is one of the bridge's own publications."""
        digest = self._digest(data)
        with self._lock:
            self._expire(self._clock())
            times = self._times.get(digest)
            if not times:
                return False
            times.popleft()
            if not times:
                del self._times[digest]
            return True

    def _expire(self, now: float) -> None:
        order = self._order
        while order and (order[0][0] < now - self.max_age_sec or len(order) > self.max_entries):
            stamp, digest = order.popleft()
            times = self._times.get(digest)
            if times and times[0] <= stamp:  # not consumed yet: forget it
                times.popleft()
                if not times:
                    del self._times[digest]
