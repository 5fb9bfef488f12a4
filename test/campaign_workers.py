"""Child-process code of the fault campaign (test/registry/test_campaign.py,
scripts/fault_campaign.py).

* :func:`victim_main` runs in a subprocess started with ``AGNOSHM_FAULT`` set:
  a workload that passes every fault point of :mod:`agnoshm.faults` (init,
  endpoint creation and announcement, borrow, publish, take, release,
  reclaim, reaping, repair, shutdown) and so dies at the armed one.  It exits 0
  only if the armed point was never reached (the caller treats that as a failure).
* :func:`survivor` runs for a whole campaign: it subscribes and publishes on the
  campaign topic and answers commands, so a test can check after every kill that
  a process that was there all along still publishes and receives, with no
  duplicate and no torn message.

Like the other workers: reports through queues or stdout, waits on events or
queues, never sleeps for synchronization.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading

from workers import TIMEOUT, _valid, fill, read_header

#: how many times the victim's loop passes each per-message point
LOOPS = 40
#: how many times each point is passed by the workload (the armed count must not exceed it)
HITS = {"init.joined": 1, "init.pool": 1, "init.queue": 1, "subscription.registered": 1,
        "publisher.registered": 1, "publisher.announce": 2, "borrow": LOOPS,
        "publish.before": LOOPS, "publish.inside": LOOPS, "publish.logged": LOOPS,
        "publish.after": LOOPS, "take.claimed": LOOPS, "take.inside": LOOPS, "take.after": LOOPS, "release.inside": LOOPS - 4,
        "reclaim.inside": LOOPS - 8, "reap.inside": 1, "repair.inside": 1,
        "shutdown.leave": 1}
SIZES = (64, 4096, 65536, 1 << 20)


def victim_main() -> None:
    """``python -c 'import campaign_workers as w; w.victim_main()' TOPIC POINT``

    ``POINT`` only selects the extra steps (reap, repair) the workload takes;
    ``AGNOSHM_FAULT`` (read at import of agnoshm) decides where it dies.
    """
    topic, point = sys.argv[1], sys.argv[2]
    import agnoshm
    from agnoshm import context

    my_id = os.getpid()
    node = agnoshm.Node("victim")
    sub = node.create_polling_subscription(agnoshm.Bytes, topic, 8)
    pub = node.create_publisher(agnoshm.Bytes, topic, 4)
    held = []
    for i in range(LOOPS):
        msg = pub.borrow_loaned_message()
        fill(msg.alloc("data", SIZES[i % len(SIZES)]), my_id, i)
        pub.publish(msg)
        received = sub.take()
        if received is not None:
            held.append(received)
        if len(held) > 2:
            held.pop(0)  # the oldest view dies: its reference is released
    held.clear()
    del received
    registry = context.get_runtime().registry
    if point == "reap.inside":
        _reap_a_dead_process(registry)
    elif point == "repair.inside":
        _repair_after_a_dead_owner(registry)
    node.destroy_node()
    agnoshm.shutdown()
    print("finished without reaching the fault point", flush=True)


def _reap_a_dead_process(registry) -> None:
    """Make this process the one that reaps a dead process: a forked child joins,
    then, holding the global lock so no other process can reap it first, this
    process kills it and reaps it."""
    import agnoshm
    from agnoshm import faults

    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            faults.arm(None)
            agnoshm.init()
            os.write(write_end, b"j")
            signal.pause()
        finally:
            os._exit(1)
    os.close(write_end)
    assert os.read(read_end, 1) == b"j", "the sacrificial child did not join"
    print("sacrificed", child, flush=True)  # the campaign checks its objects are gone too
    with registry.lock:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        registry._reap_dead_locked()


def _repair_after_a_dead_owner(registry) -> None:
    """Make this process the one that repairs: a thread of it takes the global lock and
    ends holding it (the kernel marks the robust mutex owner-dead, as for a dead
    process); this thread then locks, gets EOWNERDEAD and runs ``Registry.repair``."""
    owner = threading.Thread(target=registry.lock.acquire)
    owner.start()
    owner.join()
    registry.lock.acquire()
    registry.lock.release()


# -- the long-lived survivor -----------------------------------------------------------------


def survivor(topic: str, my_id: int, ready, commands, out) -> None:
    """Subscribe and publish on ``topic``; obey ``commands``:

    * ``("publish", n)``: publish ``n`` messages (id ``my_id``, counters continuing),
      report ``("published", last counter)``;
    * ``("await", publisher id, counter)``: receive until that message arrived,
      report ``("seen", {publisher id: [counters]}, torn, reached)``;
    * ``("stop",)``: leave.
    """
    import agnoshm

    node = agnoshm.Node(f"survivor{my_id}")
    seen: dict[int, list[int]] = {}
    torn: list = []

    def callback(msg):
        data = msg.data
        publisher_id, counter = read_header(data)
        if not _valid(data):
            torn.append((publisher_id, counter))
        seen.setdefault(publisher_id, []).append(counter)

    node.create_subscription(agnoshm.Bytes, topic, callback, 64)
    pub = node.create_publisher(agnoshm.Bytes, topic, 16)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    ready.set()
    counter = 0
    while True:
        try:
            command = commands.get(timeout=0.01)
        except queue.Empty:
            executor.spin_once(timeout_sec=0.01)
            continue
        if command[0] == "publish":
            for _ in range(command[1]):
                msg = pub.borrow_loaned_message()
                fill(msg.alloc("data", SIZES[counter % len(SIZES)]), my_id, counter)
                pub.publish(msg)
                counter += 1
            out.put(("published", counter - 1))
        elif command[0] == "await":
            _, publisher_id, wanted = command
            reached = executor.spin_until(lambda: wanted in seen.get(publisher_id, ()),
                                          timeout_sec=TIMEOUT)
            out.put(("seen", {k: list(v) for k, v in seen.items()}, list(torn), bool(reached)))
        elif command[0] == "stop":
            break
    node.destroy_node()
    agnoshm.shutdown()
    out.put(("stopped", os.getpid()))


# -- the driver: one process that is itself a survivor and kills victims -------------------------


def _queue_exists(pid: int) -> bool:
    from agnoshm import _libc
    from agnoshm.names import queue_name

    try:
        mqd = _libc.mq_open(queue_name(pid).encode(), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC,
                            0, None)
    except FileNotFoundError:
        return False
    _libc.mq_close(mqd)
    return True


def objects_of(pids) -> list[str]:
    """The pools and announcement queues of ``pids`` that still exist."""
    found = [f"/dev/shm/agnocast@{pid}" for pid in pids
             if os.path.exists(f"/dev/shm/agnocast@{pid}")]
    return found + [f"/new_publisher@{pid}" for pid in pids if _queue_exists(pid)]


class CampaignFailure(AssertionError):
    pass


class Campaign:
    """This process publishes (id 0) and polls the campaign topic; a survivor process
    (id 1) does the same; :meth:`kill_once` runs a victim to its death and then checks
    that everything of it is reclaimed and that both survivors still talk."""

    ROUND = 5

    def __init__(self, topic: str):
        import subprocess  # noqa: F401  (checked early: the driver needs it)

        import agnoshm
        import workers

        self.topic = topic
        self.node = agnoshm.Node("campaign")
        self.pub = self.node.create_publisher(agnoshm.Bytes, topic, 16)
        self.sub = self.node.create_polling_subscription(agnoshm.Bytes, topic, 64)
        self.registry = agnoshm.context.get_runtime().registry
        ctx = workers.context()
        self.commands, self.out, ready = ctx.Queue(), ctx.Queue(), ctx.Event()
        self.survivor = ctx.Process(target=survivor, args=(topic, 1, ready, self.commands, self.out))
        self.survivor.start()
        if not ready.wait(TIMEOUT):
            raise CampaignFailure("the survivor did not start")
        workers.wait_until(lambda: self.pub.get_subscription_count() >= 2,
                           what="the survivor's subscription")
        self.seen: dict[int, list[int]] = {}
        self.torn: list = []
        self.counter = 0
        self.victims: list[int] = []
        self.sacrificed: list[int] = []  # processes victims killed (reap.inside)
        self.stats = {"sent": 0, "received": 0}

    # -- traffic ------------------------------------------------------------------
    def _drain(self) -> None:
        while True:
            msg = self.sub.take()
            if msg is None:
                return
            data = msg.data
            publisher_id, counter = read_header(data)
            if not _valid(data):
                self.torn.append((publisher_id, counter))
            self.seen.setdefault(publisher_id, []).append(counter)
            self.stats["received"] += 1
            del data, msg

    def _publish(self, n: int) -> None:
        for _ in range(n):
            msg = self.pub.borrow_loaned_message()
            fill(msg.alloc("data", SIZES[self.counter % len(SIZES)]), 0, self.counter)
            self.pub.publish(msg)
            self.counter += 1
            self.stats["sent"] += 1

    def _reply(self, kind: str):
        reply = self.out.get(timeout=TIMEOUT)
        if reply[0] != kind:
            raise CampaignFailure(f"survivor answered {reply!r}, expected {kind!r}")
        return reply

    @staticmethod
    def _check_no_duplicates(where: str, seen: dict, torn: list) -> None:
        if torn:
            raise CampaignFailure(f"{where} received torn messages {torn[:5]}")
        for publisher_id, counters in seen.items():
            if any(a >= b for a, b in zip(counters, counters[1:])):
                raise CampaignFailure(f"{where} received messages of {publisher_id} twice or out "
                                      f"of order: {counters}")

    # -- one kill -------------------------------------------------------------------
    def kill_once(self, point: str, count: int) -> int:
        """Run a victim armed at ``point:count``; check the aftermath; return its pid."""
        import subprocess

        import workers
        from sources import child_cwd, child_env

        env = child_env(os.path.dirname(os.path.abspath(__file__)),
                        AGNOSHM_FAULT=f"{point}:{count}")
        self.commands.put(("publish", 8))  # traffic in flight while the victim works and dies
        victim = subprocess.Popen(
            [sys.executable, "-c", "import campaign_workers as w; w.victim_main()", self.topic,
             point], env=env, cwd=child_cwd(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._publish(4)
        try:
            output, _ = victim.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            victim.kill()
            output, _ = victim.communicate()
            raise CampaignFailure(f"victim at {point}:{count} hung: {output.decode()[-2000:]}")
        self.victims.append(victim.pid)
        self.sacrificed += [int(line.split()[1]) for line in output.decode().splitlines()
                            if line.startswith("sacrificed ")]
        if victim.returncode != -signal.SIGKILL:
            raise CampaignFailure(f"victim at {point}:{count} exited with {victim.returncode}, "
                                  f"not SIGKILL: {output.decode()[-3000:]}")
        self._reply("published")
        pid = victim.pid

        def reclaimed():
            self.registry.reap_dead()
            self._drain()
            pids = [self.registry.processes[s].pid for s in self.registry.live_slots()]
            return not (set(pids) & {pid, *self.sacrificed}) and not objects_of(
                [pid, *self.sacrificed])

        workers.wait_until(reclaimed, what=f"victim {pid} ({point}:{count}) to be reaped")
        problems = self.registry.check_consistency()
        if problems:
            raise CampaignFailure(f"registry inconsistent after {point}:{count}: {problems}")
        self.check_round()
        return pid

    def check_round(self) -> None:
        """Both survivors still publish and receive: every message of this round arrives
        once, in order, untorn."""
        import workers

        first = self.counter
        self._publish(self.ROUND)
        self.commands.put(("await", 0, self.counter - 1))
        _, seen, torn, reached = self._reply("seen")
        if not reached:
            raise CampaignFailure("the survivor process stopped receiving")
        self._check_no_duplicates("the survivor process", seen, torn)
        missing = set(range(first, self.counter)) - set(seen.get(0, ()))
        if missing:
            raise CampaignFailure(f"the survivor process missed messages {sorted(missing)}")
        self.commands.put(("publish", self.ROUND))
        _, last = self._reply("published")
        workers.wait_until(lambda: self._drain() or last in self.seen.get(1, ()),
                           what="the survivor's messages")
        self._check_no_duplicates("the campaign process", self.seen, self.torn)
        received = set(self.seen.get(1, ()))
        missing = set(range(last - self.ROUND + 1, last + 1)) - received
        if missing:
            raise CampaignFailure(f"the campaign process missed survivor messages {sorted(missing)}")

    def pids(self) -> list[int]:
        """Every process this campaign started."""
        return [*self.victims, *self.sacrificed, self.survivor.pid]

    def close(self) -> None:
        self.commands.put(("stop",))
        try:
            self._reply("stopped")
        finally:
            self.survivor.join(TIMEOUT)
        if self.survivor.exitcode != 0:
            raise CampaignFailure(f"the survivor exited with {self.survivor.exitcode}")
        self.node.destroy_node()
