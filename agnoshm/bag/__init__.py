"""Recording agnoshm topics into rosbag2 bags (MCAP storage) and playing bags back.

:func:`record` is a zero-copy subscriber that serializes each message to CDR
(``view.to_rosbags()`` then the rosbags type store's ``serialize_cdr``) and
writes it with its publish time, converted from ``CLOCK_MONOTONIC`` to wall
time with one offset measured at the start (stored in the bag's
``custom_data`` as ``agnoshm.monotonic_to_realtime_ns``).  :func:`play`
deserializes each message with rosbags and publishes it (the one-copy path)
at the recorded timing.  Any rosbag2 reader (rosbags, ``ros2 bag``) reads
the bags; ``play`` reads bags of either storage (MCAP or sqlite3).
"""

from __future__ import annotations

from agnoshm.errors import AgnoshmError


class BagError(AgnoshmError):
    """Raised when a bag cannot be written, read or played (the message says why)."""


#: custom_data key holding ``time.time_ns() - time.monotonic_ns()`` at the start of a recording
CLOCK_OFFSET_KEY = "agnoshm.monotonic_to_realtime_ns"

from agnoshm.bag.play import PlaySummary, play  # noqa: E402
from agnoshm.bag.record import RecordSummary, record  # noqa: E402

__all__ = ["BagError", "CLOCK_OFFSET_KEY", "PlaySummary", "RecordSummary", "play", "record"]
