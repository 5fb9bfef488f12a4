"""Endpoint events, shaped like ``rclpy.event_handler``: the matched event.

Pass ``event_callbacks=PublisherEventCallbacks(matched=cb)`` to ``create_publisher``
(``SubscriptionEventCallbacks`` to ``create_subscription``); rclpy's classes of the
same names work too.  ``cb(info)`` runs in the executor that spins the node (as a
task of that executor, in no callback group) whenever the number of endpoints on
the other side of the topic changed, with a :class:`MatchedInfo` shaped like rmw's
``rmw_matched_status_t``.  How changes are noticed: :mod:`agnoshm.matched`.

Of rclpy's other events, ``incompatible_qos`` and ``incompatible_type`` are accepted
and never called (agnoshm refuses such endpoints when they are created, with
``InvalidQoSError`` / ``TypeMismatchError``); ``deadline``, ``liveliness`` and
``message_lost`` are refused with :class:`UnsupportedEventTypeError`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from agnoshm.errors import AgnoshmError

#: rclpy's events agnoshm has no counterpart for: a callback for one is refused.
UNSUPPORTED_EVENTS = ("deadline", "liveliness", "message_lost")


class UnsupportedEventTypeError(AgnoshmError, ValueError):
    """An event callback agnoshm cannot honour (``deadline``, ``liveliness``, ``message_lost``)."""


@dataclasses.dataclass(frozen=True)
class MatchedInfo:
    """What a matched callback receives (rmw's ``rmw_matched_status_t``).

    ``total_count``: endpoints ever matched since this one was created;
    ``current_count``: matched now; the ``*_change`` fields: since the previous callback.
    Counts are of the other side of the topic in every process of the domain, plus
    the ROS 2 or Zenoh endpoints a bridge relays the topic to.
    """

    total_count: int
    total_count_change: int
    current_count: int
    current_count_change: int


class PublisherEventCallbacks:
    """Event callbacks of a publisher (``rclpy.event_handler.PublisherEventCallbacks``).

    :param matched: ``cb(MatchedInfo)``, called when subscriptions come or go.
    """

    def __init__(self, *, deadline: Optional[Callable] = None,
                 liveliness: Optional[Callable] = None,
                 incompatible_qos: Optional[Callable] = None,
                 incompatible_type: Optional[Callable] = None,
                 matched: Optional[Callable[[MatchedInfo], None]] = None,
                 use_default_callbacks: bool = True):
        self.deadline = deadline
        self.liveliness = liveliness
        self.incompatible_qos = incompatible_qos
        self.incompatible_type = incompatible_type
        self.matched = matched
        self.use_default_callbacks = use_default_callbacks


class SubscriptionEventCallbacks:
    """Event callbacks of a subscription (``rclpy.event_handler.SubscriptionEventCallbacks``).

    :param matched: ``cb(MatchedInfo)``, called when publishers come or go.
    """

    def __init__(self, *, deadline: Optional[Callable] = None,
                 incompatible_qos: Optional[Callable] = None,
                 liveliness: Optional[Callable] = None,
                 message_lost: Optional[Callable] = None,
                 incompatible_type: Optional[Callable] = None,
                 matched: Optional[Callable[[MatchedInfo], None]] = None,
                 use_default_callbacks: bool = True):
        self.deadline = deadline
        self.incompatible_qos = incompatible_qos
        self.liveliness = liveliness
        self.message_lost = message_lost
        self.incompatible_type = incompatible_type
        self.matched = matched
        self.use_default_callbacks = use_default_callbacks


def matched_callback(event_callbacks, topic_name: str) -> Optional[Callable]:
    """The ``matched`` callback of ``event_callbacks`` (agnoshm's or rclpy's), or None.

    Checked before the endpoint is created.

    :raises UnsupportedEventTypeError: for a ``deadline``, ``liveliness`` or
        ``message_lost`` callback.
    :raises TypeError: for an object that is not event callbacks, or a callback that
        is not callable.
    """
    if event_callbacks is None:
        return None
    if not hasattr(event_callbacks, "matched"):
        raise TypeError(f"event_callbacks must be a PublisherEventCallbacks or "
                        f"SubscriptionEventCallbacks, not {type(event_callbacks).__name__}")
    for name in UNSUPPORTED_EVENTS:
        if getattr(event_callbacks, name, None) is not None:
            raise UnsupportedEventTypeError(
                f"agnoshm has no {name} event (on {topic_name}): its endpoints are reliable "
                "within depth and live as long as their process; drop the "
                f"{name}= callback (matched= is supported)")
    callback = event_callbacks.matched
    if callback is not None and not callable(callback):
        raise TypeError(f"matched callback must be callable, not {type(callback).__name__}")
    return callback
