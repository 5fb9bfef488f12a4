#!/usr/bin/env python3
"""Random-kill campaign: SIGKILL victims at random fault points, check after each.

    python scripts/fault_campaign.py --kills 1000 [--seed 1] [--points publish.inside,take.inside]

Each kill starts a fresh victim process armed at a random point of
``agnoshm.faults.FAULT_POINTS`` and a random count (``point:N``), while this
process and a long-lived survivor process publish and subscribe on the same
topic.  After each death it checks what ``test/registry/test_campaign.py``
checks: the victim died at the point, its registry records, pool and queue are
reclaimed, the registry is consistent, and both survivors still exchange every
message exactly once, untorn.  It prints a tally per point (every 100 kills and
at the end) and exits 1 if any kill failed a check.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "test")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--points", default="", help="comma-separated subset of the points")
    parser.add_argument("--domain", type=int, default=None, help="ROS_DOMAIN_ID (default: a free one)")
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = str(args.domain if args.domain is not None
                                      else 60000 + os.getpid() % 5000)
    os.environ.setdefault("AGNOSHM_POOL_SIZE", "256M")

    import agnoshm
    import campaign_workers
    from agnoshm.faults import FAULT_POINTS

    points = [p for p in args.points.split(",") if p] or list(FAULT_POINTS)
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    print(f"fault campaign: {args.kills} kills over {len(points)} points, seed {seed}, "
          f"domain {os.environ['ROS_DOMAIN_ID']}", flush=True)
    killed, survived, failures = Counter(), Counter(), []
    started = time.monotonic()
    campaign = campaign_workers.Campaign("/fault_campaign")
    pids = [os.getpid()]
    try:
        for k in range(1, args.kills + 1):
            point = rng.choice(points)
            count = rng.randint(1, campaign_workers.HITS[point])
            killed[point] += 1
            try:
                campaign.kill_once(point, count)
                survived[point] += 1
            except campaign_workers.CampaignFailure as err:
                failures.append((point, count, str(err)[:500]))
                print(f"FAILED {point}:{count}: {str(err)[:500]}", flush=True)
                pids += campaign.pids()
                try:
                    campaign.close()
                finally:
                    campaign = campaign_workers.Campaign("/fault_campaign")
            if k % 100 == 0 or k == args.kills:
                print(f"-- {k} kills, {time.monotonic() - started:.0f} s", flush=True)
    finally:
        pids += campaign.pids()
        campaign.close()
        stats = dict(campaign.stats)
        agnoshm.shutdown()
    left = campaign_workers.objects_of(pids)
    print(f"\n{'point':26} {'kills':>6} {'survived':>9}")
    for point in points:
        print(f"{point:26} {killed[point]:6d} {survived[point]:9d}")
    total_killed, total_survived = sum(killed.values()), sum(survived.values())
    print(f"{'total':26} {total_killed:6d} {total_survived:9d}")
    print(f"messages (last campaign process): sent {stats['sent']}, received {stats['received']}")
    print(f"elapsed {time.monotonic() - started:.0f} s; failures {len(failures)}; "
          f"objects left in /dev/shm and /dev/mqueue: {left or 'none'}")
    return 0 if not failures and not left else 1


if __name__ == "__main__":
    sys.exit(main())
