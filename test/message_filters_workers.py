"""Code that test_message_filters.py runs in a child process (spawn start method).

:func:`stamper` publishes one stamped message per command, in the order the test
sends them, so the test decides exactly what the synchronizer sees and when.
"""

from __future__ import annotations

import os
import time

from workers import TIMEOUT

#: what the stamper publishes: kind -> (type, topic)
TOPICS = {
    "image": ("sensor_msgs/msg/Image", "/camera/image"),
    "info": ("sensor_msgs/msg/CameraInfo", "/camera/camera_info"),
    "text": ("std_msgs/msg/String", "/text"),
}
IMAGE_BYTES = 64


def image_byte(stamp_ns: int) -> int:
    """The value every pixel of the image stamped ``stamp_ns`` holds."""
    return (stamp_ns // 1_000_000) % 251


def stamper(commands, out, depth: int) -> None:
    """Publish what ``commands`` asks, then say so on ``out``.

    A command is ``(kind, stamp_ns)`` (``stamp_ns`` None: now, system clock) or
    ``("stop",)``.  Images carry :data:`IMAGE_BYTES` bytes of :func:`image_byte`; a
    publish that fails is reported as ``("error", text)`` and ends the worker.
    """
    import agnoshm

    node = agnoshm.Node("stamper")
    pubs = {kind: node.create_publisher(msg_type, topic, depth)
            for kind, (msg_type, topic) in TOPICS.items()}
    out.put(("ready", os.getpid()))
    try:
        while (command := commands.get(timeout=TIMEOUT))[0] != "stop":
            kind, stamp_ns = command
            stamp_ns = time.time_ns() if stamp_ns is None else stamp_ns
            _publish(kind, pubs[kind], stamp_ns)
            out.put(("sent", kind, stamp_ns))
    except Exception as err:  # noqa: BLE001  the test reads it
        out.put(("error", f"{type(err).__name__}: {err}"))
    node.destroy_node()
    agnoshm.shutdown()


def _publish(kind: str, pub, stamp_ns: int) -> None:
    msg = pub.borrow_loaned_message()
    if kind == "text":
        msg.data = str(stamp_ns)
    else:
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        msg.header.frame_id = "camera"
        msg.height, msg.width = 1, IMAGE_BYTES
        if kind == "image":
            msg.encoding = "mono8"
            msg.step = IMAGE_BYTES
            msg.alloc("data", IMAGE_BYTES)[:] = image_byte(stamp_ns)
    pub.publish(msg)
