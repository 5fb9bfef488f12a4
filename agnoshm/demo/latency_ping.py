"""``latency_ping``: the sending half of the latency pair (see ``latency_pong``).

Publishes ``agnoshm.Bytes`` messages of ``size`` bytes at ``rate`` per second
for ``duration`` seconds, each stamped (CLOCK_MONOTONIC, shared by every
process on the machine) just before ``publish()``, then one end message that
tells the receiver how many were sent. Payload (little endian)::

    bytes 0..8   sequence number (0, 1, ...; the end message: the number sent)
    bytes 8..16  stamp, monotonic nanoseconds
    byte  16     1 on the end message, else 0
    bytes 24..40 rate and duration (float64), on the end message

    latency_ping --size 1048576 --rate 100 --duration 5
"""

from __future__ import annotations

import argparse
import struct
import sys
import time

import agnoshm
from agnoshm.demo import DemoNode, run
from agnoshm.demo.params import Param, add_arguments, parse

HEADER = struct.Struct("<QqB7xdd")  # seq, stamp, end flag, pad, rate, duration
MIN_SIZE = HEADER.size

PARAMETERS = [
    Param("topic", "/agnoshm_latency", "topic to publish on"),
    Param("size", 4096, "message size in bytes", minimum=MIN_SIZE),
    Param("rate", 100.0, "messages per second", minimum=0.001),
    Param("duration", 5.0, "seconds to publish for", minimum=0.0),
    Param("depth", 10, "QoS history depth (KEEP_LAST)", minimum=1),
    Param("wait_subscribers", 1, "start once this many subscriptions listen", minimum=0),
]


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="latency_ping", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, PARAMETERS, "ping")
    args = parse(parser, PARAMETERS, "ping", argv)
    total = max(1, round(args.rate * args.duration))
    node = DemoNode(args.node_name, ros=args.ros, ros_args=args.ros_args, prog="latency_ping")
    sent = 0
    finished = False
    try:
        pub = node.create_publisher(agnoshm.Bytes, args.topic, args.depth)

        def send(seq: int, end: bool) -> None:
            msg = pub.borrow_loaned_message()
            data = msg.alloc("data", args.size)
            data[MIN_SIZE:MIN_SIZE + 1] = 1  # touch the payload as a producer would
            data[:MIN_SIZE] = memoryview(HEADER.pack(seq, time.monotonic_ns(), end,
                                                     args.rate, args.duration)).cast("B")
            pub.publish(msg)

        def on_timer():
            nonlocal sent, finished
            if finished or pub.get_subscription_count() < args.wait_subscribers:
                return
            if sent < total:
                send(sent, False)
                sent += 1
            else:
                send(sent, True)
                finished = True

        node.create_timer(1.0 / args.rate, on_timer)
        node.spin_until(lambda: finished)
        print(f"sent {sent} messages of {args.size} bytes at {args.rate:g}/s", flush=True)
    finally:
        node.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("latency_ping", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
