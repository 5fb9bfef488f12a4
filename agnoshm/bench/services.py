"""Service round trip: agnoshm's services beside an rclpy service over Fast DDS (issue 18).

``python -m agnoshm.bench.services [--calls N] [--rounds R]`` measures the round trip of
``nav_msgs/srv/GetMap`` (an empty request; the response's ``map.data`` is 64 B or 6 MB)
across processes, one call in flight, with rows alternated round by round in one run:

* **agnoshm**: a server process fills ``response.map`` in its pool (``alloc`` of the data,
  no copy, no fill: what a driver that writes in place pays); this process calls
  ``client.call()`` and reads the response view in place (it touches the first and last
  byte).
* **rclpy**: the same service with rclpy (``rmw_fastrtps_cpp``), the response's data a
  prebuilt ``array.array`` assigned each call; this process calls ``call_async`` and
  ``spin_until_future_complete``.  Needs rclpy and nav_msgs (``AMENT_PREFIX_PATH``);
  without them only the agnoshm rows run (``--no-rclpy`` skips them on purpose).

Prints one line per row (p50/p99 in µs) and ``--json`` the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from agnoshm.bench import BenchError, summarize

GETMAP = "nav_msgs/srv/GetMap"
GETMAP_SRV = "---\nnav_msgs/OccupancyGrid map\n"  # the .srv, for when rclpy is absent
SIZES = {"64 B": 64, "6 MB": 6 * 1024 * 1024}

SERVER_AGNOSHM = """
import agnoshm, sys
from agnoshm.bench.services import ensure_getmap
ensure_getmap()
node = agnoshm.Node("bench_map_server")
def serve(size):
    def fill(request, response):
        response.map.info.width = size
        response.map.info.height = 1
        response.map.alloc("data", size)  # in place, like a driver writing into the loan
        return response
    return fill
for name, size in {sizes!r}.items():
    node.create_service("nav_msgs/srv/GetMap", name, serve(size), qos_profile=4)
print("ready", flush=True)
try:
    agnoshm.spin(node)
except (KeyboardInterrupt, agnoshm.ExternalShutdownException):
    pass
"""

SERVER_RCLPY = """
import array, rclpy
from rclpy.executors import ExternalShutdownException
from nav_msgs.srv import GetMap
rclpy.init()
node = rclpy.create_node("bench_map_server_ros")
def serve(size):
    data = array.array("b", bytes(size))
    def fill(request, response):
        response.map.info.width = size
        response.map.info.height = 1
        response.map.data = data
        return response
    return fill
for name, size in {sizes!r}.items():
    node.create_service(GetMap, name, serve(size))
print("ready", flush=True)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
"""


def ensure_getmap() -> None:
    """``nav_msgs/srv/GetMap`` from rclpy, else from its ``.srv`` text (rosbags has nav_msgs)."""
    import agnoshm

    try:
        agnoshm.get_service(GETMAP)
    except agnoshm.TypeMismatchError:
        agnoshm.register_srv(GETMAP_SRV, GETMAP)


def _start(code: str, sizes: dict) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", code.format(sizes=sizes)],
                             stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        raise BenchError(f"a service server did not start (exit {child.wait()})")
    return child


def _stop(child: subprocess.Popen) -> None:
    child.send_signal(2)
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


class AgnoshmRow:
    def __init__(self, names: dict[str, str]):
        import agnoshm

        ensure_getmap()
        self.node = agnoshm.Node("bench_map_client")
        self.clients = {label: self.node.create_client(GETMAP, name) for label, name in names.items()}
        for client in self.clients.values():
            if not client.wait_for_service(30):
                raise BenchError(f"agnoshm server of {client.srv_name} not found")

    def call(self, label: str) -> int:
        start = time.perf_counter_ns()
        response = self.clients[label].call(None, timeout_sec=30)
        data = response.map.data
        _ = data[0], data[-1]  # read in place
        return time.perf_counter_ns() - start

    def close(self) -> None:
        self.node.destroy_node()


class RclpyRow:
    def __init__(self, names: dict[str, str]):
        import rclpy
        from nav_msgs.srv import GetMap

        rclpy.init()
        self.rclpy, self.request = rclpy, GetMap.Request()
        self.node = rclpy.create_node("bench_map_client_ros")
        self.clients = {label: self.node.create_client(GetMap, name) for label, name in names.items()}
        for client in self.clients.values():
            if not client.wait_for_service(timeout_sec=30):
                raise BenchError(f"rclpy server of {client.srv_name} not found")

    def call(self, label: str) -> int:
        start = time.perf_counter_ns()
        future = self.clients[label].call_async(self.request)
        self.rclpy.spin_until_future_complete(self.node, future, timeout_sec=30)
        data = future.result().map.data
        _ = data[0], data[-1]
        return time.perf_counter_ns() - start

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.shutdown()


def measure(calls: int, rounds: int, warmup: int, with_rclpy: bool) -> dict:
    names = {label: f"/bench_map_{i}" for i, label in enumerate(SIZES)}
    sizes = {names[label]: size for label, size in SIZES.items()}
    children, rows = [_start(SERVER_AGNOSHM, sizes)], {}
    try:
        rows["agnoshm"] = AgnoshmRow(names)
        if with_rclpy:
            children.append(_start(SERVER_RCLPY, sizes))
            rows["rclpy (Fast DDS)"] = RclpyRow(names)
        samples = {(row, label): [] for row in rows for label in SIZES}
        for row in rows.values():
            for label in SIZES:
                for _ in range(warmup):
                    row.call(label)
        for _ in range(rounds):  # alternated: every row and size once per round
            for name, row in rows.items():
                for label in SIZES:
                    samples[(name, label)] += [row.call(label) for _ in range(calls)]
        return {f"{name} {label}": summarize(values) for (name, label), values in samples.items()}
    finally:
        for row in rows.values():
            row.close()
        for child in children:
            _stop(child)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agnoshm.bench.services", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="calls per row and round")
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds")
    parser.add_argument("--warmup", type=int, default=10, help="calls per row before measuring")
    parser.add_argument("--no-rclpy", action="store_true", help="only the agnoshm rows")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args(argv)
    with_rclpy = not args.no_rclpy
    if with_rclpy:
        try:
            import nav_msgs.srv  # noqa: F401
            import rclpy  # noqa: F401
        except ImportError as err:
            print(f"the rclpy row needs rclpy and nav_msgs ({err}): pip install ros-rclpy "
                  "ros-rmw-fastrtps-cpp ros-nav-msgs, or pass --no-rclpy", file=sys.stderr)
            return 2
    try:
        results = measure(args.calls, args.rounds, args.warmup, with_rclpy)
    except BenchError as err:
        print(f"bench failed: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(results, indent=1))
    for name, stats in results.items():
        print(f"{name:24s} p50 {stats['p50_us']:9.1f} us   p99 {stats['p99_us']:9.1f} us   "
              f"({stats['count']} calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
