"""Quality of service, shaped like ``rclpy.qos`` and accepting rclpy's own profiles.

agnoshm honours history KEEP_LAST with a depth and durability VOLATILE or
TRANSIENT_LOCAL; delivery is always reliable within depth, so every
reliability setting is accepted.  KEEP_ALL cannot be honoured by a bounded
pool and raises :class:`~agnoshm.errors.InvalidQoSError`.
"""

from __future__ import annotations

import enum

from agnoshm.errors import InvalidQoSError


class HistoryPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    KEEP_LAST = 1
    KEEP_ALL = 2
    UNKNOWN = 3


class ReliabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    RELIABLE = 1
    BEST_EFFORT = 2
    UNKNOWN = 3
    BEST_AVAILABLE = 4


class DurabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    TRANSIENT_LOCAL = 1
    VOLATILE = 2
    UNKNOWN = 3
    BEST_AVAILABLE = 4


DEFAULT_DEPTH = 10  # rmw_qos_profile_default


class QoSProfile:
    """History, depth, reliability and durability of an endpoint (rclpy's names and values)."""

    __slots__ = ("history", "depth", "reliability", "durability")

    def __init__(self, *, history=None, depth=None, reliability=ReliabilityPolicy.RELIABLE,
                 durability=DurabilityPolicy.VOLATILE):
        if history is None:
            if depth is None:
                raise InvalidQoSError("QoSProfile needs a history or a depth, e.g. QoSProfile(depth=10)")
            history = HistoryPolicy.KEEP_LAST
        self.history = HistoryPolicy(int(history))
        self.depth = DEFAULT_DEPTH if depth is None else depth
        self.reliability = ReliabilityPolicy(int(reliability))
        self.durability = DurabilityPolicy(int(durability))

    def __eq__(self, other) -> bool:
        return isinstance(other, QoSProfile) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        return (f"QoSProfile(history={self.history.name}, depth={self.depth}, "
                f"reliability={self.reliability.name}, durability={self.durability.name})")


qos_profile_sensor_data = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
qos_profile_default = QoSProfile(depth=10)


def resolve_qos(qos) -> tuple[int, int]:
    """Turn an int depth, an agnoshm or rclpy ``QoSProfile`` into ``(depth, durability)``.

    BEST_AVAILABLE durability is passed on: the registry settles it when the endpoint
    is created, as rmw does (a publisher offers TRANSIENT_LOCAL; a subscription is
    TRANSIENT_LOCAL if every publisher of the topic then is, else VOLATILE).

    :raises InvalidQoSError: for a setting agnoshm cannot honour.
    :raises TypeError: for anything else.
    """
    if isinstance(qos, bool) or not (isinstance(qos, int) or hasattr(qos, "history")):
        raise TypeError(f"Expected QoSProfile or int, but received {type(qos)!r}")
    if isinstance(qos, int):
        history, depth, durability = HistoryPolicy.KEEP_LAST, qos, DurabilityPolicy.VOLATILE
    else:
        history, depth, durability = int(qos.history), qos.depth, int(qos.durability)
    if history == HistoryPolicy.SYSTEM_DEFAULT:
        depth = DEFAULT_DEPTH if not depth else depth
    elif history != HistoryPolicy.KEEP_LAST:
        raise InvalidQoSError(
            f"history {HistoryPolicy(history).name} cannot be honoured: agnoshm keeps the last "
            "`depth` messages in a bounded pool; use KEEP_LAST with a depth")
    if not isinstance(depth, int) or depth < 1:
        raise InvalidQoSError(f"depth must be an int of at least 1, not {depth!r}")
    if durability == DurabilityPolicy.SYSTEM_DEFAULT:
        durability = DurabilityPolicy.VOLATILE
    if durability not in (DurabilityPolicy.VOLATILE, DurabilityPolicy.TRANSIENT_LOCAL,
                          DurabilityPolicy.BEST_AVAILABLE):
        raise InvalidQoSError(f"durability {durability!r} cannot be honoured: use VOLATILE, "
                              "TRANSIENT_LOCAL or BEST_AVAILABLE")
    return depth, int(durability)
