#!/usr/bin/env python3
"""Soak: the load of test/test_stress.py for hours.

    python scripts/soak.py --duration 4h [--processes 8] [--topics 64] [--seed 1]

8 processes (default) publish and subscribe on 64 topics with messages of
64 B .. 8 MiB, destroy and re-create publishers and subscriptions while traffic
flows, and stall at random.  At the end it prints messages sent/received, torn
and duplicated counts (must be 0), p50/p99 latency, and the workers' RSS and
/dev/shm use after warm-up (10 % of the run, at most 10 minutes) and at the end,
which must be flat.  Exit status 1 if a check failed or anything was left in
/dev/shm or /dev/mqueue.
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=seconds, default=3600.0, help="e.g. 600, 30m, 4h")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--topics", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--domain", type=int, default=None)
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = str(args.domain if args.domain is not None
                                      else 65000 + os.getpid() % 500)
    os.environ.setdefault("AGNOSHM_POOL_SIZE", "1G")
    os.environ.setdefault("AGNOSHM_LINGER_SEC", "0.05")

    import agnoshm
    import campaign_workers
    import stress_workers

    registry = agnoshm.context.get_runtime().registry
    warmup = min(args.duration * 0.1, 600.0)
    print(f"soak: {args.processes} processes, {args.topics} topics, {args.duration:.0f} s "
          f"(warm-up {warmup:.0f} s), domain {os.environ['ROS_DOMAIN_ID']}", flush=True)
    started = time.monotonic()
    report = stress_workers.run(args.processes, args.topics, args.duration, warmup, args.seed)
    registry.reap_dead()
    problems = registry.check_consistency()
    agnoshm.shutdown()
    left = campaign_workers.objects_of(report["pids"] + [os.getpid()])
    print(stress_workers.format_report(report))
    mib = 1 << 20
    for index, warm, end in sorted(report["per_worker"]):
        print(f"  worker {index}: RSS {warm['rss'] / mib:.0f} -> {end['rss'] / mib:.0f} MiB, "
              f"/dev/shm {warm['shm'] / mib:.0f} -> {end['shm'] / mib:.0f} MiB")
    print(f"elapsed {time.monotonic() - started:.0f} s; errors {report['errors'] or 'none'}; "
          f"exit codes {report['exitcodes']}; registry problems {problems or 'none'}; "
          f"left in /dev/shm and /dev/mqueue: {left or 'none'}")
    ok = (not report["errors"] and report["torn"] == 0 and report["disorder"] == 0
          and set(report["exitcodes"]) == {0} and not problems and not left)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
