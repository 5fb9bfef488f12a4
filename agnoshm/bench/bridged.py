"""The ping-pong that measures a bridged path: agnoshm → bridge → … → bridge → agnoshm.

Shared by :mod:`~agnoshm.bench.zenoh_bridge` and :mod:`~agnoshm.bench.ros_bridge`,
so that their rows compare: the same pong, the same pacing (one message in
flight), the same statistics.  A benchmark starts its bridges with :func:`start`
and hands them to :func:`through`, which starts the pong, waits for everyone to
be ready and pings from the first domain.

Latency is half the round trip (p50/p99); throughput is what one message in
flight moves (size / mean one-way latency), the rate a request-reply peer sees.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import Callable

from agnoshm.bench import BenchError, summarize

#: the pong process: answers each ``{ping}`` message with a copy on ``{pong}`` (``str.format``)
PONG = """
import agnoshm, numpy as np
from agnoshm.msg import get_message
kind = get_message({type_name!r})
node = agnoshm.Node("bridged_pong")
pub = node.create_publisher(kind, {pong!r}, 10)
def answer(m):
    out = pub.borrow_loaned_message()
    out.alloc("data", len(m.data))[:] = np.asarray(m.data)
    pub.publish(out)
node.create_subscription(kind, {ping!r}, answer, 10)
print("ready", flush=True)
try:
    agnoshm.spin(node)
except (KeyboardInterrupt, agnoshm.ExternalShutdownException):
    pass
node.destroy_node(); agnoshm.shutdown()
"""


def free_domain(start: int) -> int:
    """The first agnoshm domain from ``start`` on that has no registry."""
    from agnoshm.names import SHM_DIR, registry_name

    domain = start
    while os.path.exists(SHM_DIR + registry_name(domain)):
        domain += 1
    return domain


def domains(default: int) -> tuple[int, int]:
    """Two free agnoshm domains, from ``ROS_DOMAIN_ID`` on (``default`` when it is 0 or
    unset); this process's ``ROS_DOMAIN_ID`` becomes the first (it pings there)."""
    ping_domain = free_domain(int(os.environ.get("ROS_DOMAIN_ID", "0")) or default)
    pong_domain = free_domain(ping_domain + 1)
    os.environ["ROS_DOMAIN_ID"] = str(ping_domain)
    return ping_domain, pong_domain


def start(args: list[str], domain: int, **env: str) -> subprocess.Popen:
    """Start ``python args`` with ``ROS_DOMAIN_ID=domain``, then ``env`` (which may set it
    otherwise); its stdout and stderr come to us as one text stream."""
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "PYTHONUNBUFFERED": "1", **env}
    return subprocess.Popen([sys.executable, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_line(proc: subprocess.Popen, text: str) -> None:
    """Read ``proc``'s output until a line holds ``text``; then pass the rest on to our
    stderr (so that a full pipe never blocks the child, and its problems show)."""
    for line in proc.stdout:
        if text in line:
            threading.Thread(target=lambda: [sys.stderr.write(rest) for rest in proc.stdout],
                             daemon=True).start()
            return
        sys.stderr.write(line)
    raise BenchError(f"a child process ({' '.join(proc.args[1:3])[:60]}…) ended before "
                     f"printing {text!r}: its output is above")


def stop(children: list[subprocess.Popen], timeout: float) -> None:
    """SIGINT every child (rclpy and agnoshm both end cleanly on it), then wait for each."""
    import signal

    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    for child in children:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def through(bridges: list[subprocess.Popen], pong_domain: int, type_name: str, ping_topic: str,
            pong_topic: str, sizes: list[int], rounds: int, timeout: float) -> list[dict]:
    """Start :data:`PONG` in ``pong_domain``, wait until every one of ``bridges`` (started
    by :func:`start`) bridges ``pong_topic``, then :func:`ping`; stop every child."""
    children = list(bridges)
    try:
        children.append(start(["-c", PONG.format(type_name=type_name, ping=ping_topic,
                                                 pong=pong_topic)], pong_domain))
        for child in bridges:
            wait_line(child, f"bridging {pong_topic}")
        wait_line(children[-1], "ready")
        return ping(sizes, rounds, type_name, ping_topic, pong_topic, timeout)
    finally:
        stop(children, timeout)


def ping(sizes: list[int], rounds: int, type_name: str, ping_topic: str, pong_topic: str,
         timeout: float = 60.0) -> list[dict]:
    """Ping ``pong_topic``'s answerer through ``ping_topic`` at each size (this process's
    ``ROS_DOMAIN_ID`` is the first domain); return one summary per size.

    ``rounds`` round trips at sizes up to 64 KiB, a tenth of them above (at least 3).
    """
    import numpy as np

    import agnoshm
    from agnoshm.msg import get_message

    kind = get_message(type_name)
    node = agnoshm.Node("bridged_ping")
    pub = node.create_publisher(kind, ping_topic, 10)
    arrived = threading.Event()
    seen = [-1]

    def on_pong(msg):
        seen[0] = int(np.asarray(msg.data)[:8].view(np.int64)[0])
        arrived.set()

    node.create_subscription(kind, pong_topic, on_pong, 10)
    done = threading.Event()
    spinner = threading.Thread(target=lambda: [agnoshm.spin_once(node, timeout_sec=0.1)
                                               for _ in iter(done.is_set, True)], daemon=True)
    spinner.start()

    def send(size: int, tag: int) -> None:
        msg = pub.borrow_loaned_message()
        msg.alloc("data", max(size, 8))[:8] = np.frombuffer(np.int64(tag).tobytes(), np.uint8)
        pub.publish(msg)

    results = []
    try:
        deadline = time.monotonic() + timeout  # warm-up: until one round trip completes
        while seen[0] < 0 and time.monotonic() < deadline:
            arrived.clear()
            send(64, 0)
            arrived.wait(0.5)
        if seen[0] < 0:
            raise BenchError("no pong came back through the bridges")
        tag = 0
        for size in sizes:
            samples = []
            for _ in range(max(3, rounds if size <= 1 << 16 else rounds // 10)):
                tag += 1
                arrived.clear()
                begin = time.perf_counter_ns()
                send(size, tag)
                while seen[0] != tag:
                    if not arrived.wait(timeout):
                        raise BenchError(f"ping {tag} of {size} B never came back")
                    arrived.clear()
                samples.append((time.perf_counter_ns() - begin) // 2)
            summary = summarize(samples)
            summary.update(size=size, throughput_mb_s=size / summary["mean_us"])
            results.append(summary)
            print(f"{size:>9} B  p50 {summary['p50_us'] / 1e3:8.2f} ms  p99 "
                  f"{summary['p99_us'] / 1e3:8.2f} ms  {summary['throughput_mb_s']:8.1f} MB/s "
                  f"(one in flight, {summary['count']} round trips)", flush=True)
    finally:
        done.set()
        spinner.join()
        node.destroy_node()
        agnoshm.shutdown()
    return results


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """The options both benchmarks share: ``--sizes``, ``--rounds``, ``--json``."""
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,1048576,6000000")
    parser.add_argument("--rounds", type=int, default=200,
                        help="round trips at sizes up to 64 KiB (a tenth above)")
    parser.add_argument("--json", metavar="FILE")
    return parser


def run(args: argparse.Namespace, measure: Callable[[list[int], int], list[dict]]) -> int:
    """Print the load average, measure, save ``--json``; return the exit status (1 and a
    one-line error when a process or a pong failed)."""
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    try:
        results = measure([int(s) for s in args.sizes.split(",")], args.rounds)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0
