"""agnoshm → Zenoh → agnoshm: what leaving the machine through the Zenoh bridge costs.

    python -m agnoshm.bench.zenoh_bridge [--sizes 64,1048576,6000000] [--rounds 200]

Two agnoshm domains joined on loopback by two Zenoh bridges (``agnoshm.zenoh``,
one listening on 127.0.0.1, the other connecting; multicast scouting off).  This
process pings on ``/zb_ping`` in the first domain; a pong process in the second
domain answers each ping on ``/zb_pong`` with a copy.  Latency is half the round
trip (p50/p99); throughput is what one message in flight moves (size / mean
one-way latency), the rate a request-reply peer sees.  Each message crosses two
bridges each way: CDR serialization, a Zenoh put over TCP, deserialization into
a loan.  Prints one line per size and, with ``--json FILE``, saves the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time

from agnoshm.bench import summarize

TYPE = "agnoshm/msg/Bytes"
PONG = """
import agnoshm, numpy as np, sys
node = agnoshm.Node("zb_pong")
pub = node.create_publisher(agnoshm.Bytes, "/zb_pong", 10)
node.create_subscription(agnoshm.Bytes, "/zb_ping", lambda m: pub.publish(np.asarray(m.data)), 10)
print("ready", flush=True)
try:
    agnoshm.spin(node)
except (KeyboardInterrupt, agnoshm.ExternalShutdownException):
    pass
node.destroy_node(); agnoshm.shutdown()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_domain(start: int) -> int:
    from agnoshm.names import SHM_DIR, registry_name

    domain = start
    while os.path.exists(SHM_DIR + registry_name(domain)):
        domain += 1
    return domain


def _start(args: list[str], domain: int) -> subprocess.Popen:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=None)  # problems show on our stderr


def _wait_line(proc: subprocess.Popen, text: str) -> None:
    for line in proc.stdout:
        if text in line:
            return
    raise RuntimeError(f"process {proc.args[:3]} ended before printing {text!r}")


def measure(sizes: list[int], rounds: int, timeout: float = 60.0) -> list[dict]:
    """Run the ping-pong for each size; return one summary per size."""
    ping_domain = _free_domain(int(os.environ.get("ROS_DOMAIN_ID", "0")) or 910_000)
    pong_domain = _free_domain(ping_domain + 1)
    os.environ["ROS_DOMAIN_ID"] = str(ping_domain)  # this process pings in the first domain
    port = _free_port()
    topics = ["--topic", f"/zb_ping:{TYPE}", "--topic", f"/zb_pong:{TYPE}", "--domain",
              str(ping_domain)]
    children = [
        _start(["-m", "agnoshm.zenoh", *topics, "--listen", f"tcp/127.0.0.1:{port}"], ping_domain),
        _start(["-m", "agnoshm.zenoh", *topics, "--connect", f"tcp/127.0.0.1:{port}"],
               pong_domain),
        _start(["-c", PONG], pong_domain)]
    try:
        for child, text in zip(children, ("bridging /zb_pong", "bridging /zb_pong", "ready")):
            _wait_line(child, text)
        return _ping(sizes, rounds, timeout)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout)


def _ping(sizes: list[int], rounds: int, timeout: float) -> list[dict]:
    import numpy as np

    import agnoshm

    node = agnoshm.Node("zb_ping")
    pub = node.create_publisher(agnoshm.Bytes, "/zb_ping", 10)
    arrived = threading.Event()
    seen = [-1]

    def on_pong(msg):
        seen[0] = int(np.asarray(msg.data)[:8].view(np.int64)[0])
        arrived.set()

    node.create_subscription(agnoshm.Bytes, "/zb_pong", on_pong, 10)
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [agnoshm.spin_once(node, timeout_sec=0.1)
                                               for _ in iter(stop.is_set, True)], daemon=True)
    spinner.start()
    results = []
    try:
        tag = 0
        deadline = time.monotonic() + timeout  # warm-up: until one round trip completes
        while seen[0] < 0 and time.monotonic() < deadline:
            arrived.clear()
            pub.publish(np.zeros(64, np.uint8))  # tag 0
            arrived.wait(0.5)
        if seen[0] < 0:
            raise RuntimeError("no pong came back through the bridges")
        for size in sizes:
            samples = []
            for _ in range(max(3, rounds if size <= 1 << 16 else rounds // 10)):
                tag += 1
                msg = pub.borrow_loaned_message()
                data = msg.alloc("data", max(size, 8))
                data[:8] = np.frombuffer(np.int64(tag).tobytes(), np.uint8)
                arrived.clear()
                start = time.perf_counter_ns()
                pub.publish(msg)
                while seen[0] != tag:
                    if not arrived.wait(timeout):
                        raise RuntimeError(f"ping {tag} of {size} B never came back")
                    arrived.clear()
                samples.append((time.perf_counter_ns() - start) // 2)
            summary = summarize(samples)
            summary.update(size=size, throughput_mb_s=size / summary["mean_us"])
            results.append(summary)
            print(f"{size:>9} B  p50 {summary['p50_us'] / 1e3:8.2f} ms  p99 "
                  f"{summary['p99_us'] / 1e3:8.2f} ms  {summary['throughput_mb_s']:8.1f} MB/s "
                  f"(one in flight, {summary['count']} round trips)", flush=True)
    finally:
        stop.set()
        spinner.join()
        node.destroy_node()
        agnoshm.shutdown()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agnoshm.bench.zenoh_bridge",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,1048576,6000000")
    parser.add_argument("--rounds", type=int, default=200,
                        help="round trips at sizes up to 64 KiB (a tenth above)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    results = measure([int(s) for s in args.sizes.split(",")], args.rounds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
