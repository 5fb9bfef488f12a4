"""rclpy QoS settings agnoshm cannot honour, refused without importing rclpy.

History, depth and durability are :func:`agnoshm.qos.resolve_qos`'s.  This
module checks the rest of an ``rclpy.qos.QoSProfile`` (Humble and Jazzy have
the same attributes): ``deadline``, ``lifespan`` and
``liveliness_lease_duration`` (``rclpy.duration.Duration``, read through
``.nanoseconds``) and ``liveliness`` (``LivelinessPolicy``, compared as an int).
Reliability is always accepted: delivery within depth is reliable.
"""

from __future__ import annotations

from agnoshm.errors import InvalidQoSError

#: Durations at or above this count as "not set": rmw's RMW_DURATION_INFINITE is
#: INT64_MAX ns, and Jazzy's RMW_QOS_DEADLINE_BEST_AVAILABLE / lease BEST_AVAILABLE
#: are INT64_MAX - 1 ns.  0 (RMW_DURATION_UNSPECIFIED, the rmw default) is not set either.
_INFINITE_NS = 9_223_372_036_000_000_000

#: rclpy ``LivelinessPolicy`` values agnoshm honours: SYSTEM_DEFAULT 0, AUTOMATIC 1 and
#: BEST_AVAILABLE 5 (Jazzy).  Refused: MANUAL_BY_TOPIC 3, UNKNOWN 4, and 2 (rmw's old
#: MANUAL_BY_NODE, which neither Humble's nor Jazzy's rclpy enum has any more).
_LIVELINESS_OK = {0, 1, 5}

_DURATIONS = (("deadline", "deadline events"), ("lifespan", "message expiry"),
              ("liveliness_lease_duration", "liveliness leases"))


def check_ros_qos(qos) -> None:
    """Refuse rclpy QoS settings agnoshm cannot honour.

    :param qos: an int depth, or a QoS profile (rclpy's, agnoshm's or any object
        with the same attribute names).
    :raises InvalidQoSError: for a deadline, lifespan or liveliness lease, or a
        liveliness other than AUTOMATIC (or its defaults).
    """
    if isinstance(qos, int):
        return
    for field, what in _DURATIONS:
        value = getattr(qos, field, None)
        ns = getattr(value, "nanoseconds", value)
        if isinstance(ns, int) and 0 < ns < _INFINITE_NS:
            raise InvalidQoSError(f"{field} {value!r} cannot be honoured: agnoshm has no {what}; "
                                  f"leave {field} at its default")
    liveliness = getattr(qos, "liveliness", None)
    if liveliness is not None and int(liveliness) not in _LIVELINESS_OK:
        name = getattr(liveliness, "name", liveliness)
        raise InvalidQoSError(f"liveliness {name} cannot be honoured: agnoshm detects dead "
                              "processes itself and has no assert_liveliness(); use AUTOMATIC")
