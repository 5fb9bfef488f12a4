"""``image_publisher``: a camera publishing 1920x1080 rgb8 ``sensor_msgs/msg/Image`` frames.

Each frame is borrowed from this process's pool and filled in place
(``msg.alloc("data", ...)``): nothing is copied on the way to subscribers.
Frame ``n`` carries ``n`` in its first 8 bytes (little endian) and
:func:`frame_value` ``(n)`` in every other byte, so receivers check order and
content; ``header.stamp`` is the wall-clock time of publication.

    image_publisher --count 100 --rate 30 --wait-subscribers 1
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from agnoshm.demo import DemoNode, run
from agnoshm.demo.params import Param, add_arguments, parse

IMAGE_TYPE = "sensor_msgs/msg/Image"
CHANNELS = {"mono8": 1, "rgb8": 3, "bgr8": 3}
COUNTER_BYTES = 8

PARAMETERS = [
    Param("topic", "/camera/image_raw", "topic to publish on"),
    Param("width", 1920, "image width in pixels", minimum=1),
    Param("height", 1080, "image height in pixels", minimum=1),
    Param("encoding", "rgb8", "pixel encoding", choices=tuple(CHANNELS)),
    Param("frame_id", "camera", "header.frame_id"),
    Param("rate", 30.0, "frames per second", minimum=0.001),
    Param("count", 0, "stop after this many frames (0: run until Ctrl-C)", minimum=0),
    Param("depth", 10, "QoS history depth (KEEP_LAST)", minimum=1),
    Param("wait_subscribers", 1, "publish only while at least this many subscriptions listen",
          minimum=0),
]


def frame_value(counter: int) -> int:
    """The byte value that fills frame ``counter`` (after its 8-byte counter)."""
    return (counter * 37 + 11) % 256


def write_counter(data: np.ndarray, counter: int) -> None:
    """Store ``counter`` in the first 8 bytes of ``data`` (a flat uint8 array)."""
    data[:COUNTER_BYTES] = np.frombuffer(counter.to_bytes(COUNTER_BYTES, "little"), np.uint8)


def read_counter(data) -> int:
    """The frame counter in the first 8 bytes of ``data``."""
    return int.from_bytes(bytes(data[:COUNTER_BYTES]), "little")


def paint(data: np.ndarray, counter: int) -> None:
    """Fill a frame's pixels for frame ``counter`` (the camera driver's work)."""
    data.fill(frame_value(counter))
    write_counter(data, counter)


def pixels_ok(data, counter: int) -> bool:
    """True if every byte after the counter holds ``frame_value(counter)``."""
    body = np.asarray(data)[COUNTER_BYTES:]
    return bool(body.size == 0 or (body == frame_value(counter)).all())


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="image_publisher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, PARAMETERS, "camera")
    args = parse(parser, PARAMETERS, "camera", argv)
    channels = CHANNELS[args.encoding]
    step = args.width * channels
    size = step * args.height
    node = DemoNode(args.node_name, ros=args.ros, ros_args=args.ros_args, prog="image_publisher")
    sent = 0
    try:
        pub = node.create_publisher(IMAGE_TYPE, args.topic, args.depth)

        def on_timer():
            nonlocal sent
            if (args.count and sent >= args.count) or \
                    pub.get_subscription_count() < args.wait_subscribers:
                return
            msg = pub.borrow_loaned_message()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
            msg.header.frame_id = args.frame_id
            msg.height, msg.width, msg.encoding = args.height, args.width, args.encoding
            msg.is_bigendian, msg.step = 0, step
            paint(msg.alloc("data", size), sent)
            pub.publish(msg)
            print(f"published frame {sent} {args.width}x{args.height} {args.encoding} "
                  f"{size} bytes", flush=True)
            sent += 1

        node.create_timer(1.0 / args.rate, on_timer)
        node.spin_until(lambda: bool(args.count) and sent >= args.count)
    finally:
        node.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("image_publisher", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
