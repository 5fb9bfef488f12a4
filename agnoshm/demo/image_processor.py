"""``image_processor``: camera images in, processed images out, zero copy on both sides.

Reads each ``sensor_msgs/msg/Image`` in place in the camera's pool and writes
the result straight into a loan from its own pool:

* ``mode: mono8`` (default): rgb8/bgr8 to grayscale mono8, same size;
* ``mode: half``: half width and height, same encoding.

The frame counter (first 8 bytes, see :mod:`agnoshm.demo.image_publisher`) and
the header are carried over. It subscribes to the input only once the output
has ``wait_subscribers`` subscriptions, so a pipeline started in any order
loses no frame.

    image_processor --count 100
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from agnoshm.demo import DemoError, DemoNode, run
from agnoshm.demo.image_publisher import CHANNELS, IMAGE_TYPE, read_counter, write_counter
from agnoshm.demo.params import Param, add_arguments, parse

PARAMETERS = [
    Param("input", "/camera/image_raw", "topic of the camera images"),
    Param("output", "/camera/image_processed", "topic of the processed images"),
    Param("mode", "mono8", "mono8: grayscale; half: half width and height", choices=("mono8", "half")),
    Param("count", 0, "stop after this many frames (0: run until Ctrl-C)", minimum=0),
    Param("depth", 10, "QoS history depth (KEEP_LAST) of both topics", minimum=1),
    Param("wait_subscribers", 1, "subscribe to the input once the output has this many "
          "subscriptions", minimum=0),
    Param("timeout", 0.0, "give up (exit 1) after this many seconds (0: never)", minimum=0),
]
# BT.601 luma in 8-bit fixed point; the weights sum to 256, so gray stays gray
_WEIGHTS = {"rgb8": (77, 150, 29), "bgr8": (29, 150, 77)}


def to_mono8(src: np.ndarray, dst: np.ndarray, encoding: str) -> None:
    """Write the grayscale of ``src`` (height x width x 3) into ``dst`` (height x width)."""
    if encoding == "mono8":
        np.copyto(dst, src[..., 0])
        return
    weights = _WEIGHTS[encoding]
    acc = src[..., 0].astype(np.uint16)
    acc *= weights[0]
    for channel in (1, 2):
        part = src[..., channel].astype(np.uint16)
        part *= weights[channel]
        acc += part
    np.right_shift(acc, 8, out=dst, casting="unsafe")


class Processor:
    """The callback: one input view in, one loaned output published."""

    def __init__(self, pub, mode: str):
        self.pub = pub
        self.mode = mode
        self.processed = 0

    def __call__(self, msg) -> None:
        height, width, encoding = msg.height, msg.width, msg.encoding
        if encoding not in CHANNELS:
            raise DemoError(f"cannot process encoding {encoding!r} (known: {', '.join(CHANNELS)})")
        channels = CHANNELS[encoding]
        src = msg.data
        if src.size != height * width * channels or msg.step != width * channels:
            raise DemoError(f"frame of {src.size} bytes does not match {width}x{height} "
                            f"{encoding} with step {msg.step}")
        counter = read_counter(src)
        image = src.reshape(height, width, channels)
        out = self.pub.borrow_loaned_message()
        out.header.stamp.sec, out.header.stamp.nanosec = msg.header.stamp.sec, msg.header.stamp.nanosec
        out.header.frame_id = msg.header.frame_id
        if self.mode == "mono8":
            out_height, out_width, out_encoding, out_channels = height, width, "mono8", 1
        else:
            out_height, out_width, out_encoding, out_channels = height // 2, width // 2, encoding, channels
        out.height, out.width, out.encoding = out_height, out_width, out_encoding
        out.is_bigendian, out.step = 0, out_width * out_channels
        data = out.alloc("data", out_height * out_width * out_channels)
        target = data.reshape(out_height, out_width, out_channels)
        if self.mode == "mono8":
            to_mono8(image, target[..., 0], encoding)
        else:
            np.copyto(target, image[:out_height * 2:2, :out_width * 2:2])
        write_counter(data, counter)
        del src, image
        self.pub.publish(out)
        print(f"processed frame {counter} {width}x{height} {encoding} -> "
              f"{out_width}x{out_height} {out_encoding}", flush=True)
        self.processed += 1


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="image_processor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, PARAMETERS, "processor")
    args = parse(parser, PARAMETERS, "processor", argv)
    timeout = args.timeout or None
    node = DemoNode(args.node_name, ros=args.ros, ros_args=args.ros_args, prog="image_processor")
    try:
        pub = node.create_publisher(IMAGE_TYPE, args.output, args.depth)
        if not node.spin_until(lambda: pub.get_subscription_count() >= args.wait_subscribers,
                               timeout):
            raise DemoError(f"no subscription on {args.output} after {args.timeout} s")
        processor = Processor(pub, args.mode)
        node.create_subscription(IMAGE_TYPE, args.input, processor, args.depth)
        done = node.spin_until(lambda: bool(args.count) and processor.processed >= args.count,
                               timeout)
        if args.count and not done:
            raise DemoError(f"processed {processor.processed} of {args.count} frames "
                            f"in {args.timeout} s")
    finally:
        node.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("image_processor", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
