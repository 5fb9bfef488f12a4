"""Load and soak: the worker processes and the driver shared by test/test_stress.py and
scripts/soak.py.

Each of ``processes`` workers owns the publishers of the topics ``t`` with
``t % processes == index`` and subscribes to a random subset of all topics.
Topic ``t`` carries messages of ``SIZES[t % len(SIZES)]`` bytes (64 B .. 8 MiB).
While traffic flows, each worker destroys and re-creates random subscriptions
and publishers, and some callbacks stall (sleep, or keep the message alive for
a while, which pins it in the publisher's pool).  Every callback checks the
payload (untorn) and that the messages of each publisher arrive in strictly
increasing order (never twice).  A worker reports sent/received counts, a
latency sample (publish to callback, CLOCK_MONOTONIC across processes), its
RSS and its pool's /dev/shm use after warm-up and at the end.

The run length is a workload size, not a synchronization: every check holds
whatever the machine's speed.
"""

from __future__ import annotations

import itertools
import os
import random
import resource  # noqa: F401  (Linux only, like agnoshm)
import time

from workers import TIMEOUT, _valid, fill, read_header

SIZES = (64, 512, 4096, 65536, 1 << 20, 8 << 20)
RESERVOIR = 20000  # latency samples kept per worker (bounded: RSS must stay flat)


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def shm_bytes(pid: int) -> int:
    """Bytes of /dev/shm that ``pid``'s pool occupies (allocated blocks, not its sparse size)."""
    try:
        return os.stat(f"/dev/shm/agnocast@{pid}").st_blocks * 512
    except FileNotFoundError:
        return 0


def worker(index: int, processes: int, topics: int, duration: float, warmup: float, seed: int,
           ready, start, out) -> None:
    import agnoshm

    rng = random.Random(seed * 1000 + index)
    node = agnoshm.Node(f"stress{index}")
    names = [f"/stress/t{t}" for t in range(topics)]
    own = [t for t in range(topics) if t % processes == index]
    my_id = os.getpid()
    counters = {t: 0 for t in own}
    small = [t for t in own if SIZES[t % len(SIZES)] < (1 << 20)]
    publishers = {t: node.create_publisher(agnoshm.Bytes, names[t], _depth(t)) for t in own}
    stats = {"sent": 0, "received": 0, "torn": 0, "disorder": 0, "stalls": 0,
             "churn_subs": 0, "churn_pubs": 0, "errors": []}
    latencies: list[int] = []
    seen_latencies = 0
    last: dict[tuple, int] = {}
    parked: list = []  # messages a "stalled" consumer keeps alive for a while

    def callback(msg, t, skey):
        nonlocal seen_latencies
        now = time.monotonic_ns()
        data = msg.data
        publisher_id, counter = read_header(data)
        stats["received"] += 1
        if len(data) != SIZES[t % len(SIZES)] or not _valid(data):
            stats["torn"] += 1
        key = (skey, publisher_id)
        if last.get(key, -1) >= counter:
            stats["disorder"] += 1
            stats["errors"].append(f"topic {t} ({SIZES[t % len(SIZES)]} B), subscription {skey}: "
                                   f"message {counter} of {publisher_id} after {last[key]}, "
                                   f"seq {msg.seq}")
        last[key] = counter
        seen_latencies += 1
        sample = now - msg.timestamp_ns
        if len(latencies) < RESERVOIR:
            latencies.append(sample)
        else:
            j = rng.randrange(seen_latencies)
            if j < RESERVOIR:
                latencies[j] = sample
        roll = rng.random()
        if roll < 0.002:
            stats["stalls"] += 1
            time.sleep(rng.uniform(0.02, 0.2))  # a stalled subscriber (the load, not a sync)
        elif roll < 0.01 and len(parked) < 8:
            parked.append(msg)  # hold it: the publisher may not reuse its memory meanwhile

    subscriptions: dict = {}
    serial = itertools.count()

    def subscribe(t):
        key = (t, next(serial))
        subscriptions[key] = node.create_subscription(
            agnoshm.Bytes, names[t], lambda msg, t=t, key=key: callback(msg, t, key), 8)

    for t in rng.sample(range(topics), min(topics, 16)):
        subscribe(t)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    ready.set()
    start.wait(TIMEOUT)
    begin = time.monotonic()
    warm = None
    round_no = 0
    try:
        while time.monotonic() - begin < duration:
            round_no += 1
            for t in own:
                pub = publishers[t]
                msg = pub.borrow_loaned_message()
                fill(msg.alloc("data", SIZES[t % len(SIZES)]), my_id * 1000 + t, counters[t])
                pub.publish(msg)
                counters[t] += 1
                stats["sent"] += 1
            executor.spin_once(timeout_sec=0)
            executor.spin_once(timeout_sec=0)
            if parked and rng.random() < 0.2:
                parked.pop(0)
            if round_no % 25 == 0:  # churn: a subscription goes, another comes
                key = rng.choice(list(subscriptions))
                node.destroy_subscription(subscriptions.pop(key))
                subscribe(rng.randrange(topics))
                stats["churn_subs"] += 1
            if round_no % 100 == 0 and small:  # churn: a publisher goes and comes back
                # (only small-message topics: a destroyed publisher keeps the blocks that
                # subscribers still hold until its process exits -- docs/design.md)
                t = rng.choice(small)
                node.destroy_publisher(publishers[t])
                publishers[t] = node.create_publisher(agnoshm.Bytes, names[t], _depth(t))
                stats["churn_pubs"] += 1
            if warm is None and time.monotonic() - begin >= warmup:
                warm = {"rss": rss_bytes(), "shm": shm_bytes(my_id), "sent": stats["sent"]}
    except Exception as err:  # reported, the test fails on it
        stats["errors"].append(f"{type(err).__name__}: {err}")
    parked.clear()
    executor.spin_once(timeout_sec=0)
    if warm is None:
        warm = {"rss": rss_bytes(), "shm": shm_bytes(my_id), "sent": stats["sent"]}
    end = {"rss": rss_bytes(), "shm": shm_bytes(my_id)}
    out.put(("done", index, os.getpid(), stats, latencies, warm, end))
    node.destroy_node()
    agnoshm.shutdown()


def _depth(t: int) -> int:
    return 2 if SIZES[t % len(SIZES)] >= (1 << 20) else 8


def percentile(values, q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def run(processes: int = 8, topics: int = 64, duration: float = 60.0, warmup: float | None = None,
        seed: int = 1) -> dict:
    """Run the load in the current domain; return the merged report."""
    import workers

    ctx = workers.context()
    out = ctx.Queue()
    start = ctx.Event()
    readies = [ctx.Event() for _ in range(processes)]
    warmup = duration * 0.2 if warmup is None else warmup
    procs = [ctx.Process(target=worker, args=(i, processes, topics, duration, warmup, seed,
                                              readies[i], start, out))
             for i in range(processes)]
    for p in procs:
        p.start()
    for r in readies:
        if not r.wait(TIMEOUT):
            raise TimeoutError("a stress worker did not start")
    start.set()
    reports = [out.get(timeout=duration + TIMEOUT) for _ in procs]
    for p in procs:
        p.join(TIMEOUT)
    totals = {k: sum(r[3][k] for r in reports)
              for k in ("sent", "received", "torn", "disorder", "stalls", "churn_subs",
                        "churn_pubs")}
    latencies = [x for r in reports for x in r[4]]
    return {
        **totals,
        "errors": [e for r in reports for e in r[3]["errors"]],
        "exitcodes": [p.exitcode for p in procs],
        "pids": [r[2] for r in reports],
        "p50_us": percentile(latencies, 50) / 1000,
        "p99_us": percentile(latencies, 99) / 1000,
        "rss_start": sum(r[5]["rss"] for r in reports),
        "rss_end": sum(r[6]["rss"] for r in reports),
        "shm_start": sum(r[5]["shm"] for r in reports),
        "shm_end": sum(r[6]["shm"] for r in reports),
        "per_worker": [(r[1], r[5], r[6]) for r in reports],
        "duration": duration,
        "processes": processes,
        "topics": topics,
    }


def format_report(report: dict) -> str:
    mib = 1 << 20
    return (f"{report['processes']} processes, {report['topics']} topics, {report['duration']:.0f} s: "
            f"sent {report['sent']}, received {report['received']}, torn {report['torn']}, "
            f"duplicated/out of order {report['disorder']}, stalls {report['stalls']}, "
            f"churn {report['churn_subs']} subscriptions + {report['churn_pubs']} publishers; "
            f"latency p50 {report['p50_us']:.0f} us, p99 {report['p99_us']:.0f} us; "
            f"RSS {report['rss_start'] / mib:.0f} -> {report['rss_end'] / mib:.0f} MiB; "
            f"/dev/shm {report['shm_start'] / mib:.0f} -> {report['shm_end'] / mib:.0f} MiB")
