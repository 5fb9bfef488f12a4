#!/usr/bin/env python3
"""Soak: a robot-like graph at fixed rates for hours (test/stress_workers.py, ``ROBOT_*``).

    nice -n 10 python scripts/soak.py --duration 4h [--warmup 10m] [--report-every 5m]

Six processes: a 30 Hz 1920x1080x3 camera image with its 30 Hz camera info, a
10 Hz 1.9 MB point cloud, 100 Hz IMU, 50 Hz tf, odometry and velocity commands,
30 Hz detections, a 4 MiB map every 2 s and 1 Hz diagnostics.  A monitor process
attaches and detaches a subscription every 1-4 s, drivers re-create a publisher
every 20-60 s, and callbacks stall at random or keep messages alive for a while.

Every ``--report-every`` it prints each process's counts and memory.  At the end
it prints messages sent/received, torn and duplicated counts (must be 0),
p50/p99 latency, and per process, after warm-up and at the end: private memory
(Private_Clean + Private_Dirty of everything but agnoshm's shared objects), live
Python objects, pool blocks in use and the pool's /dev/shm use, plus the number
and size of agnoshm's objects in /dev/shm and /dev/mqueue.  Exit status 1 if a
check failed, memory grew (stress_workers.growth_problems) or anything was left.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "test")]


def seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def our_objects(domain: int, pids) -> tuple[int, int]:
    """Number and allocated bytes of this run's objects in /dev/shm and /dev/mqueue."""
    paths = [f"/dev/shm/agnocast@{pid}" for pid in pids]
    paths += [f"/dev/mqueue/new_publisher@{pid}" for pid in pids]
    paths += glob.glob(f"/dev/shm/agnoshm-registry-domain{domain}")
    count = size = 0
    for path in paths:
        try:
            size += os.stat(path).st_blocks * 512
            count += 1
        except FileNotFoundError:
            pass
    return count, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=seconds, default=3600.0, help="e.g. 600, 30m, 4h")
    parser.add_argument("--warmup", type=seconds, default=None,
                        help="when the first memory sample is taken (default 10 %%, at most 10m)")
    parser.add_argument("--report-every", type=seconds, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--domain", type=int, default=None)
    args = parser.parse_args()
    domain = args.domain if args.domain is not None else 65000 + os.getpid() % 500
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ.setdefault("AGNOSHM_POOL_SIZE", "1G")

    import agnoshm
    import campaign_workers
    import stress_workers

    mib = 1 << 20
    registry = agnoshm.context.get_runtime().registry
    warmup = args.warmup if args.warmup is not None else min(args.duration * 0.1, 600.0)
    print(f"soak: {len(stress_workers.ROBOT_WORKERS)} processes, "
          f"{len(stress_workers.ROBOT_TOPICS)} topics, {args.duration:.0f} s "
          f"(warm-up {warmup:.0f} s), domain {domain}", flush=True)
    started = time.monotonic()
    first_objects: list = []
    end_objects: list = []

    def progress(item, pids):
        _, index, pid, elapsed, counts, sample = item
        if index == 0:
            objects = our_objects(domain, pids + [os.getpid()])
            first_objects.append(objects)
            print(f"[{elapsed:6.0f} s] /dev/shm + /dev/mqueue: {objects[0]} objects, "
                  f"{objects[1] / mib:.0f} MiB", flush=True)
        print(f"[{elapsed:6.0f} s] {stress_workers.ROBOT_WORKERS[index]['name']}: "
              f"sent {counts['sent']} received {counts['received']} torn {counts['torn']} "
              f"disorder {counts['disorder']}; private {sample['private'] / mib:.1f} MiB, "
              f"objects {sample['objects']}, pool in use {sample['pool_used'] / mib:.1f} MiB, "
              f"/dev/shm {sample['shm'] / mib:.0f} MiB", flush=True)

    report = stress_workers.run_soak(
        args.duration, warmup, args.seed, args.report_every, progress,
        on_quiet=lambda pids: end_objects.append(our_objects(domain, pids + [os.getpid()])))
    registry.reap_dead()
    problems = registry.check_consistency()
    agnoshm.shutdown()
    left = campaign_workers.objects_of(report["pids"] + [os.getpid()])
    growth = stress_workers.growth_problems(report)
    print(stress_workers.format_report(report))
    for index, warm, end, extra in report["per_worker"]:
        print(stress_workers.format_worker(index, warm, end, extra))
    if first_objects and end_objects:
        print(f"agnoshm objects in /dev/shm and /dev/mqueue: first report {first_objects[0][0]} "
              f"({first_objects[0][1] / mib:.0f} MiB), end of traffic {end_objects[0][0]} "
              f"({end_objects[0][1] / mib:.0f} MiB)")
    print(f"elapsed {time.monotonic() - started:.0f} s; errors {report['errors'] or 'none'}; "
          f"exit codes {report['exitcodes']}; registry problems {problems or 'none'}; "
          f"memory growth {growth or 'none'}; "
          f"left in /dev/shm and /dev/mqueue: {left or 'none'}", flush=True)
    ok = (not report["errors"] and report["torn"] == 0 and report["disorder"] == 0
          and set(report["exitcodes"]) == {0} and not problems and not left and not growth)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
