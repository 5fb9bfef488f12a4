"""``talker``: publish "Hello World: <n>" on /chatter with zero copies."""

from __future__ import annotations

import argparse

import agnoshm
from agnoshm.demo import spin_until_count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="talker", description=__doc__)
    parser.add_argument("--topic", default="/chatter")
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second")
    parser.add_argument("--count", type=int, default=0, help="stop after this many (0: forever)")
    parser.add_argument("--wait-subscribers", type=int, default=0,
                        help="publish only once this many subscriptions listen")
    args = parser.parse_args(argv)
    node = agnoshm.Node("talker")
    pub = node.create_publisher(agnoshm.Bytes, args.topic, 10)
    sent = 0

    def on_timer():
        nonlocal sent
        if pub.get_subscription_count() < args.wait_subscribers:
            return
        text = f"Hello World: {sent}".encode()
        msg = pub.borrow_loaned_message()
        msg.alloc("data", len(text))[:] = memoryview(text).cast("B")
        pub.publish(msg)
        print(f"Publishing: '{text.decode()}'", flush=True)
        sent += 1

    node.create_timer(1.0 / args.rate, on_timer)
    spin_until_count(node, lambda: args.count and sent >= args.count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
