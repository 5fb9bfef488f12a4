"""``latency_pong``: the receiving half of the latency pair; writes the results as JSON.

Receives ``latency_ping``'s messages in place, measures stamp-to-callback
latency, checks that sequence numbers only grow and that every message has
the expected size, and when the end message arrives writes ``output``::

    {"topic": ..., "size": 4096, "rate": 100.0, "duration": 5.0, "sent": 500,
     "received": 500, "lost": 0, "in_order": true, "sizes_ok": true,
     "latency_us": {"count": 500, "p50_us": ..., "p90_us": ..., "p99_us": ...,
                    "mean_us": ..., "min_us": ..., "max_us": ...}}

Lost messages (a slow receiver falls out of the publisher's depth) are
counted, not fatal: a slow machine never fails a benchmark. Exit 1 if a
message arrived out of order or with the wrong size, or nothing arrived.

    latency_pong --size 1048576 --output latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import agnoshm
from agnoshm.demo import DemoError, DemoNode, run
from agnoshm.demo.latency_ping import HEADER, MIN_SIZE
from agnoshm.demo.params import Param, add_arguments, parse

PARAMETERS = [
    Param("topic", "/agnoshm_latency", "topic to receive on"),
    Param("size", 4096, "expected message size in bytes (0: any)", minimum=0),
    Param("output", "agnoshm_latency.json", "where to write the results (JSON)"),
    Param("depth", 10, "QoS history depth (KEEP_LAST)", minimum=1),
    Param("timeout", 0.0, "give up (exit 1) after this many seconds (0: never)", minimum=0),
]


def summarize(samples_ns: list[int]) -> dict[str, float]:
    """count, p50, p90, p99, mean, min and max of nanosecond samples, in microseconds."""
    values = np.asarray(samples_ns, dtype=np.float64) / 1e3
    if values.size == 0:
        return {"count": 0}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"count": int(values.size), "p50_us": float(p50), "p90_us": float(p90),
            "p99_us": float(p99), "mean_us": float(values.mean()),
            "min_us": float(values.min()), "max_us": float(values.max())}


class Pong:
    """The callback: one latency sample per message, order and size checks."""

    def __init__(self, size: int):
        self.size = size
        self.latencies: list[int] = []
        self.last_seq = -1
        self.lost = 0
        self.errors: list[str] = []
        self.end: tuple | None = None

    def __call__(self, msg) -> None:
        now = time.monotonic_ns()
        data = msg.data
        if data.size < MIN_SIZE:
            self.errors.append(f"a message of {data.size} bytes (at least {MIN_SIZE} expected)")
            return
        seq, stamp, end, rate, duration = HEADER.unpack(bytes(data[:MIN_SIZE]))
        if end:
            self.end = (seq, rate, duration)
            return
        if self.size and data.size != self.size:
            self.errors.append(f"message {seq} has {data.size} bytes, expected {self.size}")
        if seq <= self.last_seq:
            self.errors.append(f"message {seq} arrived after message {self.last_seq}")
        else:
            self.lost += seq - self.last_seq - 1
            self.last_seq = seq
        self.latencies.append(now - stamp)


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="latency_pong", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, PARAMETERS, "pong")
    args = parse(parser, PARAMETERS, "pong", argv)
    output = Path(args.output)
    if not output.parent.is_dir():
        raise DemoError(f"cannot write results to {output}: {output.parent} is not a directory")
    node = DemoNode(args.node_name, ros=args.ros, ros_args=args.ros_args, prog="latency_pong")
    pong = Pong(args.size)
    try:
        node.create_subscription(agnoshm.Bytes, args.topic, pong, args.depth)
        if not node.spin_until(lambda: pong.end is not None or bool(pong.errors),
                               args.timeout or None):
            raise DemoError(f"no end message from latency_ping on {args.topic} within "
                            f"{args.timeout} s ({len(pong.latencies)} messages received)")
    finally:
        node.close()
    if pong.errors:
        raise DemoError("; ".join(pong.errors[:3]))
    sent, rate, duration = pong.end
    pong.lost += max(0, sent - 1 - pong.last_seq)  # messages after the last one received
    results = {"topic": args.topic, "size": args.size, "rate": rate, "duration": duration,
               "sent": sent, "received": len(pong.latencies), "lost": pong.lost,
               "in_order": True, "sizes_ok": True, "latency_us": summarize(pong.latencies)}
    tmp = output.with_name(f".{output.name}.{os.getpid()}")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(output)
    if not pong.latencies:
        raise DemoError(f"latency_ping sent {sent} messages and none arrived")
    stats = results["latency_us"]
    print(f"latency {args.size} B: p50 {stats['p50_us']:.1f} us, p99 {stats['p99_us']:.1f} us "
          f"({len(pong.latencies)} of {sent} received) -> {output}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run("latency_pong", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
