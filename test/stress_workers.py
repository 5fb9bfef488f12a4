"""Load and soak: the worker processes and the drivers shared by test/test_stress.py and
scripts/soak.py.

Two workloads run on the same machinery:

* **stress** (:func:`run`): each of ``processes`` workers owns the publishers of the
  topics ``t`` with ``t % processes == index`` and publishes on all of them as fast
  as it can, round after round.  Topic ``t`` carries messages of
  ``SIZES[t % len(SIZES)]`` bytes (64 B .. 8 MiB).  Each worker subscribes to a
  random 16 topics, destroys and re-creates a subscription every 25 rounds and a
  publisher every 100, and its callbacks stall at random (sleep, or keep the message
  alive for a while, which pins it in the publisher's pool).
* **soak** (:func:`run_soak`): a robot-like graph at fixed rates (:data:`ROBOT`): a
  30 Hz 1920x1080x3 camera image, a 10 Hz point cloud, 100 Hz IMU, 50 Hz tf, ...,
  with subscription and publisher churn and stalls, meant to run for hours.

Every callback checks the payload (untorn) and that the messages of each publisher
arrive in strictly increasing order (never twice).  A worker reports sent/received
counts, a latency sample (publish to callback, CLOCK_MONOTONIC across processes) and
memory samples (:func:`memory_sample`) after warm-up and at the end.  The end sample
is taken once *every* worker has stopped publishing and dropped what it held, so
the pool figures are those of a quiet system.

The run length is a workload size, not a synchronization: every check holds
whatever the machine's speed.  Workers stop together through events.
"""

from __future__ import annotations

import array
import gc
import itertools
import os
import queue
import random
import time

from workers import TIMEOUT, _valid, fill, read_header

SIZES = (64, 512, 4096, 65536, 1 << 20, 8 << 20)
RESERVOIR = 20000  # latency samples kept per worker, preallocated (memory must stay flat)
MiB = 1 << 20


# -- memory ------------------------------------------------------------------------------------


def _is_agnoshm_mapping(path: str) -> bool:
    return "agnocast@" in path or "agnoshm-registry-domain" in path


def private_bytes(pid: int | str = "self") -> int:
    """Private_Clean + Private_Dirty of ``pid``'s mappings, agnoshm's shared objects excluded.

    Plain RSS counts every page of the pools (our own and the peers' read-only
    views) that the process touched, and those pages come and go with the
    traffic.  A page of a shared mapping that only this process maps is also
    counted as "private" by the kernel, so the pools and the registry are left
    out by name: what remains is the heap, the stacks and the libraries' data,
    where a leak of per-message Python or native memory shows.
    """
    total = 0
    skip = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if not head.endswith(":"):  # a mapping header: "start-end perms offset dev inode path"
                fields = line.split(None, 5)
                skip = len(fields) == 6 and _is_agnoshm_mapping(fields[5])
            elif not skip and head in ("Private_Clean:", "Private_Dirty:"):
                total += int(line.split()[1]) * 1024
    return total


def shm_bytes(pid: int) -> int:
    """Bytes of /dev/shm that ``pid``'s pool occupies (allocated blocks, not its sparse size)."""
    try:
        return os.stat(f"/dev/shm/agnocast@{pid}").st_blocks * 512
    except FileNotFoundError:
        return 0


def memory_sample() -> dict:
    """This process's memory: private (non-agnoshm) bytes, live Python objects, pool use."""
    import agnoshm

    runtime = agnoshm.context.get_runtime()
    gc.collect()
    return {"private": private_bytes(), "objects": len(gc.get_objects()),
            "pool_used": runtime.allocator.used_bytes,
            "pool_committed": runtime.allocator.committed_bytes,
            "shm": shm_bytes(os.getpid())}


# -- receiving ---------------------------------------------------------------------------------


class Receiver:
    """The callbacks' checks and statistics; bounded memory whatever the run length."""

    def __init__(self, rng: random.Random, size_of, stall_probability: float,
                 park_probability: float, stall_range: tuple[float, float]):
        self.rng = rng
        self.size_of = size_of
        self.stall_probability = stall_probability
        self.park_probability = park_probability
        self.stall_range = stall_range
        self.stats = {"sent": 0, "received": 0, "torn": 0, "disorder": 0, "stalls": 0,
                      "churn_subs": 0, "churn_pubs": 0, "errors": []}
        self.latencies = array.array("q", bytes(8 * RESERVOIR))
        self.n_latencies = 0  # samples offered to the reservoir so far
        self.last: dict = {}  # subscription key -> {publisher id: last counter}
        self.parked: list = []  # messages a "stalled" consumer keeps alive for a while

    def callback(self, msg, t: int, skey) -> None:
        now = time.monotonic_ns()
        data = msg.data
        publisher_id, counter = read_header(data)
        stats = self.stats
        stats["received"] += 1
        if len(data) != self.size_of(t) or not _valid(data):
            stats["torn"] += 1
        last = self.last.setdefault(skey, {})
        if last.get(publisher_id, -1) >= counter:
            stats["disorder"] += 1
            if len(stats["errors"]) < 20:
                stats["errors"].append(f"topic {t} ({self.size_of(t)} B), subscription {skey}: "
                                       f"message {counter} of {publisher_id} after "
                                       f"{last[publisher_id]}, seq {msg.seq}")
        last[publisher_id] = counter
        sample = now - msg.timestamp_ns
        if self.n_latencies < RESERVOIR:
            self.latencies[self.n_latencies] = sample
        else:
            j = self.rng.randrange(self.n_latencies + 1)
            if j < RESERVOIR:
                self.latencies[j] = sample
        self.n_latencies += 1
        roll = self.rng.random()
        if roll < self.stall_probability:
            stats["stalls"] += 1
            time.sleep(self.rng.uniform(*self.stall_range))  # a stalled subscriber (load, not sync)
        elif roll < self.stall_probability + self.park_probability and len(self.parked) < 8:
            self.parked.append(msg)  # hold it: the publisher may not reuse its memory meanwhile

    def forget(self, skey) -> None:
        self.last.pop(skey, None)

    def latency_sample(self) -> list[int]:
        return list(self.latencies[:min(self.n_latencies, RESERVOIR)])


class Endpoints:
    """A worker's node, publishers and churned subscriptions."""

    def __init__(self, node, receiver: Receiver, names: list[str], depth_of):
        self.node = node
        self.receiver = receiver
        self.names = names
        self.depth_of = depth_of
        self.publishers: dict = {}
        self.subscriptions: dict = {}
        self.departed = 0  # bytes kept by destroyed publishers (see renew_publisher)
        self._serial = itertools.count()

    def publish(self, t: int, counter: int, publisher_id: int, size: int) -> None:
        pub = self.publishers[t]
        msg = pub.borrow_loaned_message()
        fill(msg.alloc("data", size), publisher_id, counter)
        pub.publish(msg)
        self.receiver.stats["sent"] += 1

    def create_publisher(self, t: int) -> None:
        import agnoshm

        self.publishers[t] = self.node.create_publisher(agnoshm.Bytes, self.names[t],
                                                        self.depth_of(t))

    def renew_publisher(self, t: int) -> None:
        port = self.publishers[t]._port
        self.node.destroy_publisher(self.publishers[t])
        # A destroyed publisher keeps the blocks of messages that subscribers held at
        # that moment until this process exits (docs/design.md, "Departures"): the
        # one growth the design allows.  Count it, so that the flatness check can
        # tell it from a leak.
        size_of = port.allocator.size_of
        self.departed += sum(size_of(a) for blocks in port._blocks.values() for a in blocks)
        self.create_publisher(t)
        self.receiver.stats["churn_pubs"] += 1

    def subscribe(self, t: int) -> None:
        import agnoshm

        key = (t, next(self._serial))
        receiver = self.receiver
        self.subscriptions[key] = self.node.create_subscription(
            agnoshm.Bytes, self.names[t], lambda msg: receiver.callback(msg, t, key), 8)

    def unsubscribe(self, key) -> None:
        self.node.destroy_subscription(self.subscriptions.pop(key))
        self.receiver.forget(key)

    def churn_subscription(self, rng: random.Random, choices) -> None:
        self.unsubscribe(rng.choice(list(self.subscriptions)))
        self.subscribe(rng.choice(choices))
        self.receiver.stats["churn_subs"] += 1


def _quiesce(executor, ends: "Endpoints", stopped, everyone_stopped) -> dict:
    """Stop together with the others; return the end memory sample of a quiet system.

    Phase 1: stop publishing, drop what is parked.  Phase 2 (once nobody publishes):
    take what is still pending, so nothing is in flight.  Then every publisher
    frees what is out of depth and the sample is taken.
    """
    import agnoshm

    runtime = agnoshm.context.get_runtime()
    for phase in range(2):
        ends.receiver.parked.clear()
        deadline = time.monotonic() + TIMEOUT  # a watchdog
        while (any(s.has_data() for s in ends.subscriptions.values())
               and time.monotonic() < deadline):
            executor.spin_once(timeout_sec=0)
        ends.receiver.parked.clear()
        gc.collect()
        runtime.housekeeping()  # deferred releases go back to their publishers
        stopped[phase].set()
        everyone_stopped[phase].wait(TIMEOUT)
    runtime.housekeeping()
    return memory_sample()


def _report(out, index, receiver, warm, end, extra=None) -> None:
    out.put(("done", index, os.getpid(), receiver.stats, receiver.latency_sample(), warm, end,
             extra or {}))


# -- stress ------------------------------------------------------------------------------------


def _depth(t: int) -> int:
    return 2 if SIZES[t % len(SIZES)] >= (1 << 20) else 8


def _size(t: int) -> int:
    return SIZES[t % len(SIZES)]


def worker(index: int, processes: int, topics: int, duration: float, warmup: float, seed: int,
           ready, start, stopped, everyone_stopped, out) -> None:
    import agnoshm

    rng = random.Random(seed * 1000 + index)
    node = agnoshm.Node(f"stress{index}")
    names = [f"/stress/t{t}" for t in range(topics)]
    own = [t for t in range(topics) if t % processes == index]
    my_id = os.getpid()
    counters = {t: 0 for t in own}
    small = [t for t in own if _size(t) < (1 << 20)]
    receiver = Receiver(rng, _size, stall_probability=0.002, park_probability=0.008,
                        stall_range=(0.02, 0.2))
    ends = Endpoints(node, receiver, names, _depth)
    for t in own:
        ends.create_publisher(t)
    for t in rng.sample(range(topics), min(topics, 16)):
        ends.subscribe(t)
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
                ends.publish(t, counters[t], my_id * 1000 + t, _size(t))
                counters[t] += 1
            executor.spin_once(timeout_sec=0)
            executor.spin_once(timeout_sec=0)
            if receiver.parked and rng.random() < 0.2:
                receiver.parked.pop(0)
            if round_no % 25 == 0:  # churn: a subscription goes, another comes
                ends.churn_subscription(rng, range(topics))
            if round_no % 100 == 0 and small:  # churn: a publisher goes and comes back
                # (only small-message topics: a destroyed publisher keeps the blocks that
                # subscribers still hold until its process exits -- docs/design.md)
                ends.renew_publisher(rng.choice(small))
            if warm is None and time.monotonic() - begin >= warmup:
                warm = {**memory_sample(), "sent": receiver.stats["sent"],
                        "received": receiver.stats["received"]}
    except Exception as err:  # reported, the test fails on it
        receiver.stats["errors"].append(f"{type(err).__name__}: {err}")
    end = _quiesce(executor, ends, stopped, everyone_stopped)
    if warm is None:
        warm = end
    retained = sum(_depth(t) * _size(t) for t in own)  # what the publishers' depths keep
    _report(out, index, receiver, warm, end, {"retained": retained, "departed": ends.departed})
    node.destroy_node()
    agnoshm.shutdown()


def percentile(values, q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _drive(ctx, targets, duration: float, progress=None, on_quiet=None) -> tuple[list, list]:
    """Start the workers (``targets``: (function, args) without the events), run, collect.

    ``progress(item, pids)`` gets the workers' progress reports; ``on_quiet(pids)`` runs
    while every worker has stopped, drained and not yet taken its end sample.
    """
    out = ctx.Queue()
    start = ctx.Event()
    everyone = [ctx.Event(), ctx.Event()]
    readies = [ctx.Event() for _ in targets]
    stops = [[ctx.Event(), ctx.Event()] for _ in targets]
    procs = [ctx.Process(target=function, args=(*args, readies[i], start, stops[i], everyone,
                                                out))
             for i, (function, args) in enumerate(targets)]
    reports: list = []

    def collect(block: bool) -> None:
        while True:
            try:
                item = out.get(timeout=TIMEOUT) if block else out.get_nowait()
            except queue.Empty:
                if block:
                    raise TimeoutError("a worker did not report") from None
                return
            if item[0] == "progress":
                if progress is not None:
                    progress(item, [p.pid for p in procs])
            else:
                reports.append(item)
            if block:
                return

    for p in procs:
        p.start()
    try:
        for r, p in zip(readies, procs):
            if not r.wait(TIMEOUT):
                raise TimeoutError(f"worker {p.pid} did not start (exit code {p.exitcode})")
        start.set()
        deadline = time.monotonic() + duration + TIMEOUT  # a watchdog: workers stop on their own
        for phase in range(2):
            for s, p in zip(stops, procs):
                while not s[phase].wait(1.0):
                    collect(block=False)
                    if time.monotonic() > deadline or p.exitcode is not None:
                        raise TimeoutError(f"worker {p.pid} did not stop (exit code {p.exitcode})")
            if phase == 1 and on_quiet is not None:
                on_quiet([p.pid for p in procs])
            everyone[phase].set()
        while len(reports) < len(procs):
            collect(block=True)
    finally:
        for p in procs:
            p.join(TIMEOUT)
            if p.exitcode is None:
                p.kill()
                p.join(TIMEOUT)
    return reports, procs


def _merge(reports, procs, duration: float, processes: int, topics: int) -> dict:
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
        "per_worker": sorted((r[1], r[5], r[6], r[7]) for r in reports),
        "duration": duration,
        "processes": processes,
        "topics": topics,
    }


def run(processes: int = 8, topics: int = 64, duration: float = 60.0, warmup: float | None = None,
        seed: int = 1) -> dict:
    """Run the stress load in the current domain; return the merged report."""
    import workers

    warmup = duration * 0.2 if warmup is None else warmup
    targets = [(worker, (i, processes, topics, duration, warmup, seed)) for i in range(processes)]
    reports, procs = _drive(workers.context(), targets, duration)
    return _merge(reports, procs, duration, processes, topics)


# -- soak: a robot at fixed rates ---------------------------------------------------------------

# topic name, message bytes, rate (Hz), publishing worker, depth
ROBOT_TOPICS = [
    ("/camera/image_raw", 1920 * 1080 * 3, 30.0, 0, 2),
    ("/camera/camera_info", 512, 30.0, 0, 8),
    ("/lidar/points", 120_000 * 16, 10.0, 1, 2),
    ("/imu", 256, 100.0, 2, 16),
    ("/tf", 1024, 50.0, 2, 16),
    ("/odom", 720, 50.0, 3, 16),
    ("/perception/objects", 16384, 30.0, 3, 8),
    ("/map", 4 << 20, 0.5, 4, 2),
    ("/cmd_vel", 64, 50.0, 4, 8),
    ("/diagnostics", 4096, 1.0, 5, 8),
]
# per worker: topics subscribed for the whole run (by index), and whether it churns
ROBOT_WORKERS = [
    {"name": "camera", "subscribe": [8]},
    {"name": "lidar", "subscribe": [8]},
    {"name": "imu", "subscribe": []},
    {"name": "perception", "subscribe": [0, 1, 2, 3, 4]},
    {"name": "planner", "subscribe": [2, 3, 4, 5, 6, 7]},
    {"name": "monitor", "subscribe": [0, 2, 5, 6, 7, 9], "churn": True},
]


def soak_worker(index: int, duration: float, warmup: float, seed: int, report_every: float,
                ready, start, stopped, everyone_stopped, out) -> None:
    """One robot process: publish its topics at their rates, receive, churn, stall."""
    import agnoshm

    spec = ROBOT_WORKERS[index]
    rng = random.Random(seed * 1000 + index)
    node = agnoshm.Node(f"soak_{spec['name']}")
    names = [t[0] for t in ROBOT_TOPICS]
    own = [t for t, topic in enumerate(ROBOT_TOPICS) if topic[3] == index]
    my_id = os.getpid()
    counters = {t: 0 for t in own}
    receiver = Receiver(rng, lambda t: ROBOT_TOPICS[t][1], stall_probability=0.001,
                        park_probability=0.004, stall_range=(0.02, 0.15))
    ends = Endpoints(node, receiver, names, lambda t: ROBOT_TOPICS[t][4])
    for t in own:
        ends.create_publisher(t)
    for t in spec["subscribe"]:
        ends.subscribe(t)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    ready.set()
    start.wait(TIMEOUT)
    begin = time.monotonic()
    due = {t: begin + rng.random() / ROBOT_TOPICS[t][2] for t in own}
    next_churn_sub = begin + rng.uniform(1, 4)
    next_churn_pub = begin + rng.uniform(20, 60)
    next_report = begin + report_every
    warm = None
    try:
        while (now := time.monotonic()) - begin < duration:
            for t in own:
                if now >= due[t]:
                    ends.publish(t, counters[t], my_id * 1000 + t, ROBOT_TOPICS[t][1])
                    counters[t] += 1
                    # fixed rate; a late message is not made up for (a sensor drops frames)
                    due[t] = max(due[t] + 1 / ROBOT_TOPICS[t][2], now)
            if spec.get("churn") and now >= next_churn_sub:  # a tool attaches and detaches
                ends.churn_subscription(rng, range(len(ROBOT_TOPICS)))
                next_churn_sub = now + rng.uniform(1, 4)
            if own and now >= next_churn_pub:  # a driver restarts its publisher
                small = [t for t in own if ROBOT_TOPICS[t][1] < (1 << 20)]
                if small:
                    ends.renew_publisher(rng.choice(small))
                next_churn_pub = now + rng.uniform(20, 60)
            if receiver.parked and rng.random() < 0.05:
                receiver.parked.pop(0)
            if warm is None and now - begin >= warmup:
                warm = {**memory_sample(), "sent": receiver.stats["sent"],
                        "received": receiver.stats["received"]}
            if now >= next_report:
                next_report += report_every
                out.put(("progress", index, os.getpid(), now - begin,
                         {k: receiver.stats[k] for k in ("sent", "received", "torn", "disorder")},
                         memory_sample()))
            wait = min(due.values(), default=now + 0.05) - time.monotonic()
            executor.spin_once(timeout_sec=max(0.0, min(wait, 0.05)))
    except Exception as err:  # reported, the run fails on it
        receiver.stats["errors"].append(f"{type(err).__name__}: {err}")
    end = _quiesce(executor, ends, stopped, everyone_stopped)
    if warm is None:
        warm = end
    retained = sum(ROBOT_TOPICS[t][4] * ROBOT_TOPICS[t][1] for t in own)
    _report(out, index, receiver, warm, end, {"retained": retained, "departed": ends.departed,
                                              "name": spec["name"]})
    node.destroy_node()
    agnoshm.shutdown()


def run_soak(duration: float, warmup: float, seed: int = 1, report_every: float = 300.0,
             progress=None, on_quiet=None) -> dict:
    """Run the robot soak in the current domain; return the merged report."""
    import workers

    targets = [(soak_worker, (i, duration, warmup, seed, report_every))
               for i in range(len(ROBOT_WORKERS))]
    reports, procs = _drive(workers.context(), targets, duration, progress, on_quiet)
    return _merge(reports, procs, duration, len(ROBOT_WORKERS), len(ROBOT_TOPICS))


# -- reporting ----------------------------------------------------------------------------------


def format_report(report: dict) -> str:
    warm = [w for _, w, _, _ in report["per_worker"]]
    end = [e for _, _, e, _ in report["per_worker"]]

    def total(samples, key):
        return sum(s[key] for s in samples) / MiB

    return (f"{report['processes']} processes, {report['topics']} topics, "
            f"{report['duration']:.0f} s: "
            f"sent {report['sent']}, received {report['received']}, torn {report['torn']}, "
            f"duplicated/out of order {report['disorder']}, stalls {report['stalls']}, "
            f"churn {report['churn_subs']} subscriptions + {report['churn_pubs']} publishers; "
            f"latency p50 {report['p50_us']:.0f} us, p99 {report['p99_us']:.0f} us; "
            f"after warm-up -> end (sum of workers): "
            f"private memory {total(warm, 'private'):.1f} -> {total(end, 'private'):.1f} MiB, "
            f"Python objects {sum(s['objects'] for s in warm)} -> "
            f"{sum(s['objects'] for s in end)}, "
            f"pool blocks in use {total(warm, 'pool_used'):.1f} -> "
            f"{total(end, 'pool_used'):.1f} MiB, "
            f"/dev/shm {total(warm, 'shm'):.0f} -> {total(end, 'shm'):.0f} MiB")


def format_worker(index: int, warm: dict, end: dict, extra: dict) -> str:
    name = extra.get("name", f"worker {index}")
    return (f"  {name}: private {warm['private'] / MiB:.1f} -> {end['private'] / MiB:.1f} MiB, "
            f"objects {warm['objects']} -> {end['objects']}, "
            f"pool in use {warm['pool_used'] / MiB:.1f} -> {end['pool_used'] / MiB:.1f} MiB "
            f"(depths keep {extra.get('retained', 0) / MiB:.1f}, destroyed publishers "
            f"{extra.get('departed', 0) / MiB:.1f}), "
            f"/dev/shm {warm['shm'] / MiB:.0f} -> {end['shm'] / MiB:.0f} MiB")


# -- flatness -----------------------------------------------------------------------------------

# Bounds on what one worker may gain from the warm-up sample to the end sample.  They
# are fixed amounts while the work done between the samples is large, so a leak that
# grows with the traffic crosses them and the noise does not:
# * private memory: pymalloc arenas, numpy's small-block cache and the allocator's
#   free lists settle early; measured growth is under 0.5 MiB per worker (stress and
#   soak, docs/reliability.md).  A stress worker handles 28 000 to 54 000 messages
#   (sent + received) after warm-up (measured; fewer on a busier machine), a soak
#   worker millions, so a native or Python leak of 300 bytes per message or more
#   crosses 8 MiB.
# * Python objects: the same endpoints exist at both samples, and the end sample
#   is taken with nothing in flight, so the count moves by less than a hundred
#   (measured); a stress worker receives 5 600 to 11 000 messages after warm-up,
#   so keeping one object per message (a view, a lease, a dict entry) crosses 2000.
# * pool blocks in use: at the end sample nothing is in flight or held, so a
#   publisher's pool holds at most its topics' depth of messages (plus 1/8 for
#   TLSF rounding and the publishers' spare root structs) and what destroyed
#   publishers keep by design (counted exactly, see Endpoints.renew_publisher);
#   one leaked block per message exceeds that at once for the big topics, and
#   after a few hundred messages for the small ones.
# /dev/shm use is reported, not bounded here: a pool's committed pages are a
# high-water mark that never shrinks (memory/pool.py) and is bounded by the pool size.
PRIVATE_GROWTH = 8 * MiB
OBJECT_GROWTH = 2000
POOL_SLACK = 4 * MiB


def growth_problems(report: dict) -> list[str]:
    """Workers whose memory grew beyond the bounds above (empty: flat)."""
    problems = []
    for index, warm, end, extra in report["per_worker"]:
        if end["private"] - warm["private"] > PRIVATE_GROWTH:
            problems.append(f"worker {index}: private memory {warm['private']} -> {end['private']}")
        if end["objects"] - warm["objects"] > OBJECT_GROWTH:
            problems.append(f"worker {index}: Python objects {warm['objects']} -> {end['objects']}")
        limit = extra.get("retained", 0) * 9 // 8 + extra.get("departed", 0) + POOL_SLACK
        if end["pool_used"] > limit:
            problems.append(f"worker {index}: {end['pool_used']} bytes of its pool in use at the "
                            f"end, more than its depths keep ({limit})")
    return problems
