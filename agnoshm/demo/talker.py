"""``talker``: publish "Hello World: <n>" on /chatter with zero copies.

    talker --count 20 --rate 10 --wait-subscribers 1
"""

from __future__ import annotations

import argparse
import sys

import agnoshm
from agnoshm.demo import DemoNode, run
from agnoshm.demo.params import Param, add_arguments, parse

PARAMETERS = [
    Param("topic", "/chatter", "topic to publish on"),
    Param("rate", 10.0, "messages per second", minimum=0.001),
    Param("count", 0, "stop after this many (0: run until Ctrl-C)", minimum=0),
    Param("wait_subscribers", 0, "publish only once this many subscriptions listen", minimum=0),
    Param("depth", 10, "QoS history depth (KEEP_LAST)", minimum=1),
]


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="talker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, PARAMETERS, "talker")
    args = parse(parser, PARAMETERS, "talker", argv)
    node = DemoNode(args.node_name, ros=args.ros, ros_args=args.ros_args, prog="talker")
    sent = 0
    try:
        pub = node.create_publisher(agnoshm.Bytes, args.topic, args.depth)

        def on_timer():
            nonlocal sent
            if (args.count and sent >= args.count) or \
                    pub.get_subscription_count() < args.wait_subscribers:
                return
            text = f"Hello World: {sent}".encode()
            msg = pub.borrow_loaned_message()
            msg.alloc("data", len(text))[:] = memoryview(text).cast("B")
            pub.publish(msg)
            print(f"Publishing: '{text.decode()}'", flush=True)
            sent += 1

        node.create_timer(1.0 / args.rate, on_timer)
        node.spin_until(lambda: bool(args.count) and sent >= args.count)
    finally:
        node.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("talker", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
