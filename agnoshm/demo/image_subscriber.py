"""``image_subscriber``: the sink of the image pipeline; checks every frame it receives.

For each ``sensor_msgs/msg/Image`` (read in place, no copy) it checks that the
frame counter follows the previous one (frames start at ``first``, none
missing), that width, height, encoding, step and data size are the expected
ones, and that every pixel holds the frame's value (see
:mod:`agnoshm.demo.image_publisher`). It prints one line per frame::

    frame 3 1920x1080 mono8 2073600 bytes latency 4.1 ms

and exits 0 after ``count`` frames, 1 at the first failed check or on timeout.

    image_subscriber --topic /camera/image_processed --encoding mono8 --count 100
"""

from __future__ import annotations

import argparse
import sys
import time

from agnoshm.demo import DemoError, DemoNode, run
from agnoshm.demo.image_publisher import CHANNELS, IMAGE_TYPE, pixels_ok, read_counter
from agnoshm.demo.params import Param, add_arguments, parse

PARAMETERS = [
    Param("topic", "/camera/image_processed", "topic to receive images on"),
    Param("width", 1920, "expected width (0: any)", minimum=0),
    Param("height", 1080, "expected height (0: any)", minimum=0),
    Param("encoding", "mono8", "expected encoding (empty: any)", choices=("", *CHANNELS)),
    Param("count", 0, "stop after this many frames (0: run until Ctrl-C)", minimum=0),
    Param("first", 0, "counter of the first expected frame (-1: whatever comes first)", minimum=-1),
    Param("check_pixels", True, "check every pixel of every frame"),
    Param("depth", 10, "QoS history depth (KEEP_LAST)", minimum=1),
    Param("timeout", 0.0, "give up (exit 1) after this many seconds (0: never)", minimum=0),
]


class Sink:
    """The callback: checks one frame and prints its line."""

    def __init__(self, args):
        self.args = args
        self.expected = None if args.first < 0 else args.first
        self.received = 0

    def __call__(self, msg) -> None:
        args = self.args
        now = time.time_ns()
        width, height, encoding, step = msg.width, msg.height, msg.encoding, msg.step
        data = msg.data
        counter = read_counter(data)
        if self.expected is not None and counter != self.expected:
            raise DemoError(f"frame {counter} arrived out of order: expected frame {self.expected}")
        if (args.width and width != args.width) or (args.height and height != args.height) \
                or (args.encoding and encoding != args.encoding):
            raise DemoError(f"frame {counter} is {width}x{height} {encoding}, expected "
                            f"{args.width or '*'}x{args.height or '*'} {args.encoding or '*'}")
        channels = CHANNELS.get(encoding)
        if channels is None or step != width * channels or data.size != step * height:
            raise DemoError(f"frame {counter}: {data.size} bytes with step {step} do not match "
                            f"{width}x{height} {encoding}")
        if args.check_pixels and not pixels_ok(data, counter):
            raise DemoError(f"frame {counter}: pixels do not hold the frame's value")
        stamp = msg.header.stamp
        latency_ms = (now - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e6
        print(f"frame {counter} {width}x{height} {encoding} {data.size} bytes "
              f"latency {latency_ms:.1f} ms", flush=True)
        self.expected = counter + 1
        self.received += 1


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="image_subscriber", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, PARAMETERS, "sink")
    args = parse(parser, PARAMETERS, "sink", argv)
    node = DemoNode(args.node_name, ros=args.ros, ros_args=args.ros_args, prog="image_subscriber")
    try:
        sink = Sink(args)
        node.create_subscription(IMAGE_TYPE, args.topic, sink, args.depth)
        done = node.spin_until(lambda: bool(args.count) and sink.received >= args.count,
                               args.timeout or None)
        if args.count and not done:
            raise DemoError(f"received {sink.received} of {args.count} frames in {args.timeout} s")
    finally:
        node.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("image_subscriber", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
