"""A publisher process for the Zenoh bridge tests, driven line by line on stdin.

    python zenoh_workers.py          (ROS_DOMAIN_ID set by the test)

Commands: ``string TEXT`` publishes one std_msgs/msg/String on /chatter;
``strings N PREFIX`` publishes N of them (``PREFIX 0`` …); ``image K`` publishes a
1920×1080 rgb8 sensor_msgs/msg/Image on /image whose bytes are :func:`image_bytes`
of K; ``quit`` ends.  Each command is answered with ``done`` once published.
"""

from __future__ import annotations

import sys

import numpy as np

WIDTH, HEIGHT = 1920, 1080


def image_bytes(k: int) -> np.ndarray:
    """The pixels of image ``k`` (a pattern that differs per image and per byte)."""
    return ((np.arange(WIDTH * HEIGHT * 3, dtype=np.uint32) * 7 + k * 13) % 251).astype(np.uint8)


def main() -> int:
    import agnoshm

    node = agnoshm.Node("zenoh_test_talker")
    strings = node.create_publisher("std_msgs/msg/String", "/chatter", 100)
    images = node.create_publisher("sensor_msgs/msg/Image", "/image", 10)
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, rest = line.strip().partition(" ")
        if command == "quit":
            break
        if command == "string":
            msg = strings.borrow_loaned_message()
            msg.data = rest
            strings.publish(msg)
        elif command == "strings":
            count, _, prefix = rest.partition(" ")
            for i in range(int(count)):
                msg = strings.borrow_loaned_message()
                msg.data = f"{prefix} {i}"
                strings.publish(msg)
        elif command == "image":
            msg = images.borrow_loaned_message()
            msg.height, msg.width, msg.encoding, msg.step = HEIGHT, WIDTH, "rgb8", WIDTH * 3
            msg.header.frame_id = f"image {rest}"
            msg.alloc("data", WIDTH * HEIGHT * 3)[:] = image_bytes(int(rest))
            images.publish(msg)
        print("done", flush=True)
    node.destroy_node()
    agnoshm.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
