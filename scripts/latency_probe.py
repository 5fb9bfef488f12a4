"""Where one message's latency goes, between two processes (issues 16 and 19).

The publisher fills a 64-byte ``agnoshm.Bytes`` through ``alloc()``, stamps it
(CLOCK_MONOTONIC ns at byte 8) and publishes it, one message in flight, with a
pause between messages as ``agnoshm bench`` paces them; the subscriber's callback
notes when it starts and when it has read the stamp through ``msg.data``.  Printed:
the medians of ``borrow() + alloc()``, ``publish()``, stamp to callback and stamp
to the stamp's read, in microseconds.  A probe, not a benchmark: it compares no
transports (``agnoshm bench`` does), it shows where one transport's time goes.

    python scripts/latency_probe.py                      # the path AGNOSHM_NATIVE picks
    AGNOSHM_NATIVE=0 python scripts/latency_probe.py --messages 600
    AGNOSHM_BUSY_POLL_US=5000 python scripts/latency_probe.py   # the receiver never sleeps
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import struct
import time

STAMP = struct.Struct("<q")
WARMUP = 20


def _subscriber(sock: socket.socket, domain: int, messages: int, out) -> None:
    import agnoshm

    agnoshm.init(domain_id=domain)
    node = agnoshm.Node("probe_subscriber")
    entered, read = [], []

    def callback(msg) -> None:
        start = time.monotonic_ns()
        stamp = STAMP.unpack_from(msg.data, 8)[0]
        done = time.monotonic_ns()
        entered.append(start - stamp)
        read.append(done - stamp)
        sock.send(b"a")

    node.create_subscription(agnoshm.Bytes, "/latency_probe", callback, 10)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    sock.send(b"r")
    executor.spin_until(lambda: len(read) >= messages, 120)
    out.put((entered, read))
    agnoshm.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--pause-ms", type=float, default=2.0)
    parser.add_argument("--domain", type=int, default=150 + os.getpid() % 50)
    args = parser.parse_args()
    import agnoshm

    here, there = socket.socketpair()
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    child = spawn.Process(target=_subscriber, args=(there, args.domain, args.messages, out))
    child.start()
    agnoshm.init(domain_id=args.domain)
    node = agnoshm.Node("probe_publisher")
    pub = node.create_publisher(agnoshm.Bytes, "/latency_probe", 10)
    here.settimeout(120)
    if here.recv(1) != b"r" or not pub.wait_for_subscription(120):
        raise SystemExit("the subscriber did not start")
    borrow, publish = [], []
    for _ in range(args.messages):
        start = time.perf_counter_ns()
        msg = pub.borrow_loaned_message()
        data = msg.alloc("data", 64)
        filled = time.perf_counter_ns()
        STAMP.pack_into(data, 8, time.monotonic_ns())
        stamped = time.perf_counter_ns()
        pub.publish(msg)
        published = time.perf_counter_ns()
        borrow.append(filled - start)
        publish.append(published - stamped)
        del msg, data
        if here.recv(1) != b"a":
            raise SystemExit("the subscriber went away")
        time.sleep(args.pause_ms / 1000)
    entered, read = out.get(timeout=120)
    child.join(120)
    path = "native" if type(pub._port).__name__.startswith("Native") else "pure"
    agnoshm.shutdown()

    def median(values: list) -> float:
        return statistics.median(values[WARMUP:]) / 1000

    print(f"{path} path, {args.messages} messages, {args.pause_ms:g} ms apart, p50 us: "
          f"borrow+alloc {median(borrow):.1f}, publish {median(publish):.1f}, "
          f"stamp to callback {median(entered):.1f}, stamp to its read {median(read):.1f}")


if __name__ == "__main__":
    main()
