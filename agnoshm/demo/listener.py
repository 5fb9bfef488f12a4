"""``listener``: print what arrives on /chatter, read in place in the talker's pool."""

from __future__ import annotations

import argparse

import agnoshm
from agnoshm.demo import spin_until_count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="listener", description=__doc__)
    parser.add_argument("--topic", default="/chatter")
    parser.add_argument("--count", type=int, default=0, help="stop after this many (0: forever)")
    args = parser.parse_args(argv)
    node = agnoshm.Node("listener")
    heard = 0

    def on_message(msg):
        nonlocal heard
        print(f"I heard: '{bytes(msg.data).decode(errors='replace')}'", flush=True)
        heard += 1

    node.create_subscription(agnoshm.Bytes, args.topic, on_message, 10)
    spin_until_count(node, lambda: args.count and heard >= args.count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
