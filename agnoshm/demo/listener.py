"""``listener``: print what arrives on /chatter, read in place in the talker's pool.

    listener --count 20
"""

from __future__ import annotations

import argparse
import sys

import agnoshm
from agnoshm.demo import DemoError, DemoNode, run
from agnoshm.demo.params import Param, add_arguments, parse

PARAMETERS = [
    Param("topic", "/chatter", "topic to listen on"),
    Param("count", 0, "stop after this many (0: run until Ctrl-C)", minimum=0),
    Param("depth", 10, "QoS history depth (KEEP_LAST)", minimum=1),
    Param("timeout", 0.0, "give up (exit 1) after this many seconds (0: never)", minimum=0),
]


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="listener", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, PARAMETERS, "listener")
    args = parse(parser, PARAMETERS, "listener", argv)
    node = DemoNode(args.node_name, ros=args.ros, ros_args=args.ros_args, prog="listener")
    heard = 0
    try:
        def on_message(msg):
            nonlocal heard
            print(f"I heard: '{bytes(msg.data).decode(errors='replace')}'", flush=True)
            heard += 1

        node.create_subscription(agnoshm.Bytes, args.topic, on_message, args.depth)
        done = node.spin_until(lambda: bool(args.count) and heard >= args.count,
                               args.timeout or None)
        if args.count and not done:
            raise DemoError(f"heard {heard} of {args.count} messages in {args.timeout} s")
    finally:
        node.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("listener", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
