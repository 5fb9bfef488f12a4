"""Processes for test/test_exhaustion.py: one runs into a limit, the others carry on.

Roles (multiprocessing, spawn start method; they synchronize on events and queues):

* :func:`echo`: a bystander that answers every ``/ping`` with the same bytes on ``/pong``;
* :func:`holder`: a subscriber that keeps every message of ``/hoard`` alive until told
  to let go (a stalled consumer), which pins them in the publisher's pool;
* :func:`hoarder`: publishes 4 MiB messages on ``/hoard`` until its pool (or /dev/shm
  under it) is full, reports the error, and publishes again once space returns;
* :func:`crowd`: creates topics, publishers or subscriptions until the registry is
  full, then frees one and asks again;
* :func:`listener`: a newcomer that joins and reports the first ``/ping``;
* :func:`join_with_rlimit` / :func:`try_to_join_main`: a process that tries to join
  without room for its announcement queue.

:func:`pool_scenario` drives the first three and returns a JSON-able report;
:func:`main` runs it in a fresh process (``python -c "import exhaustion_workers;
exhaustion_workers.main()" <case> [walk]``), which the test wraps in a private
mount namespace with a small tmpfs over /dev/shm for the "full /dev/shm" case.
"""

from __future__ import annotations

import gc
import json
import os
import sys

from workers import TIMEOUT, _valid, fill, read_header, wait_until

MiB = 1 << 20
HOARD_SIZE = 4 * MiB


def take_next(sub, what: str = "a message"):
    """Poll ``sub`` until it returns a message (``wait_until``: a watchdog, not a timer)."""
    box = [None]

    def poll() -> bool:
        box[0] = sub.take()
        return box[0] is not None

    wait_until(poll, what=what)
    return box[0]


def echo(ready, stop) -> None:
    import agnoshm

    node = agnoshm.Node("echo")
    pub = node.create_publisher(agnoshm.Bytes, "/pong", 8)
    node.create_subscription(agnoshm.Bytes, "/ping", lambda m: pub.publish(bytes(m.data)), 8)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    ready.set()
    while not stop.is_set():
        executor.spin_once(timeout_sec=0.05)
    node.destroy_node()
    agnoshm.shutdown()


def holder(ready, acks, release, out, done) -> None:
    """Keep every /hoard message until ``release``; then report what arrives next."""
    import agnoshm

    node = agnoshm.Node("holder")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/hoard", 8)
    ready.set()
    kept = []
    while not release.is_set():
        msg = sub.take()
        if msg is None:
            release.wait(0.002)  # polling a subscription; the event ends it
            continue
        kept.append(msg)
        acks.put(read_header(msg.data)[1])
    kept.clear()
    gc.collect()
    agnoshm.context.get_runtime().housekeeping()
    out.put(("released",))
    got = []

    def take():
        msg = sub.take()
        if msg is not None:
            got.append((read_header(msg.data), len(msg.data), _valid(msg.data)))
        return bool(got)

    wait_until(take, what="a message after the release")
    out.put(("after release", got[0][0][1], got[0][1], got[0][2]))
    done.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


def hoarder(ready, go, acks, retry, out, done) -> None:
    """Publish until the pool is full (each message acknowledged by the holder first)."""
    import agnoshm

    node = agnoshm.Node("hoarder")
    pub = node.create_publisher(agnoshm.Bytes, "/hoard", 1)
    wait_until(lambda: pub.get_subscription_count() >= 1, what="the holder")
    ready.set()
    go.wait(TIMEOUT)
    published = 0
    error = None
    while published < 256 and error is None:
        try:
            msg = pub.borrow_loaned_message()
            fill(msg.alloc("data", HOARD_SIZE), 1, published)
        except Exception as err:  # the limit: reported, the test checks type and message
            error = err
            break
        pub.publish(msg)
        assert acks.get(timeout=TIMEOUT) == published
        published += 1
    out.put(("full", published, error and type(error).__name__,
             error and [c.__name__ for c in type(error).__mro__], error and str(error)))
    retry.wait(TIMEOUT)
    try:
        msg = pub.borrow_loaned_message()
        fill(msg.alloc("data", HOARD_SIZE), 1, published)
        pub.publish(msg)
        out.put(("recovered", None))
    except Exception as err:
        out.put(("recovered", f"{type(err).__name__}: {err}"))
    done.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


class Bystander:
    """This process's side of the ping/pong with :func:`echo`."""

    def __init__(self, node):
        import agnoshm

        self.pub = node.create_publisher(agnoshm.Bytes, "/ping", 8)
        self.sub = node.create_polling_subscription(agnoshm.Bytes, "/pong", 8)
        self.counter = 0
        wait_until(lambda: self.pub.get_subscription_count() >= 1, what="the echo process")

    def round_trips(self, n: int) -> int:
        """Send ``n`` pings of 64 KiB; return how many came back intact and in order."""
        ok = 0
        for _ in range(n):
            msg = self.pub.borrow_loaned_message()
            fill(msg.alloc("data", 65536), 7, self.counter)
            self.pub.publish(msg)
            data = take_next(self.sub, "a pong").data
            ok += read_header(data) == (7, self.counter) and _valid(data) and len(data) == 65536
            self.counter += 1
        return ok


def listener(ready, out, done) -> None:
    """A newcomer: join, subscribe to /ping, report the first message."""
    import agnoshm

    node = agnoshm.Node("newcomer")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/ping", 8)
    ready.set()
    data = take_next(sub, "a ping").data
    out.put(("newcomer got", read_header(data), _valid(data)))
    done.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


def join_with_rlimit(out) -> None:
    """Try to join with RLIMIT_MSGQUEUE at 0, so the announcement queue cannot be created.

    The limit applies to root too (ipc/mqueue.c checks it with no capability
    exemption); ``fs.mqueue.queues_max`` is the one CAP_SYS_RESOURCE bypasses.
    """
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, hard))
    out.put(try_to_join())


def try_to_join() -> dict:
    """``agnoshm.init()``; report the error (type, bases, message) and what was left."""
    import agnoshm
    import campaign_workers

    report: dict = {"pid": os.getpid(), "error": None}
    try:
        agnoshm.init()
    except Exception as err:  # the test checks the type and the message
        report.update(error=type(err).__name__, mro=[c.__name__ for c in type(err).__mro__],
                      message=str(err), errno=getattr(err, "errno", None))
    else:
        agnoshm.shutdown()
    report["left"] = campaign_workers.objects_of([os.getpid()])
    return report


def try_to_join_main() -> None:
    print(json.dumps(try_to_join()))


def fill_dev_shm() -> str:
    """Fill what is left of /dev/shm with one file (as another program, or leftovers, would)."""
    path = "/dev/shm/agnoshm-test-filler"
    st = os.statvfs("/dev/shm")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.posix_fallocate(fd, 0, st.f_bavail * st.f_frsize)
    finally:
        os.close(fd)
    return path


def pool_scenario(case: str, walk_during: bool = False) -> dict:
    """Fill the hoarder's pool (``case`` "pool") or /dev/shm (``case`` "dev_shm").

    "pool": the holder pins the hoarder's messages until its pool is full; space
    returns when the holder lets go.  "dev_shm" (run it over a small tmpfs): a
    file fills /dev/shm, so the hoarder cannot commit pool pages for its first
    message; space returns when the file is removed.  With ``walk_during`` this
    process also walks the whole registry (``check_consistency()``, as
    ``agnoshm doctor`` or a repair after a crash does) while the limit holds.
    """
    import agnoshm
    import campaign_workers
    import workers

    report: dict = {"case": case}
    ctx = workers.context()
    node = agnoshm.Node("bystander")
    registry = agnoshm.context.get_runtime().registry
    stop, go, release, retry, done = (ctx.Event() for _ in range(5))
    acks, out = ctx.Queue(), ctx.Queue()
    readies = [ctx.Event() for _ in range(3)]
    echo_p = ctx.Process(target=echo, args=(readies[0], stop))
    holder_p = ctx.Process(target=holder, args=(readies[1], acks, release, out, done))
    echo_p.start()
    holder_p.start()
    for ready in readies[:2]:
        assert ready.wait(TIMEOUT)
    bystander = Bystander(node)
    report["before"] = bystander.round_trips(5)
    hoarder_p = ctx.Process(target=hoarder, args=(readies[2], go, acks, retry, out, done))
    hoarder_p.start()
    procs = [echo_p, holder_p, hoarder_p]
    if os.environ.get("AGNOSHM_TEST_PIDS_FILE"):  # so that a crash's leftovers can be removed
        with open(os.environ["AGNOSHM_TEST_PIDS_FILE"], "w") as f:
            f.write(" ".join(str(pid) for pid in [os.getpid()] + [p.pid for p in procs]))
    filler = None
    try:
        assert readies[2].wait(TIMEOUT)
        if case == "dev_shm":
            filler = fill_dev_shm()
        go.set()
        _, published, error, mro, message = out.get(timeout=TIMEOUT)
        report.update(published=published, error=error, mro=mro, message=message)
        # the others carry on while the limit holds
        report["during"] = bystander.round_trips(5)
        if walk_during:
            report["problems_during"] = registry.check_consistency()
        # space returns: the stalled subscriber lets go, or the file goes
        if filler is not None:
            os.unlink(filler)
            filler = None
        release.set()
        assert out.get(timeout=TIMEOUT) == ("released",)
        retry.set()
        results = {item[0]: list(item[1:]) for item in (out.get(timeout=TIMEOUT),
                                                        out.get(timeout=TIMEOUT))}
        report["recovered"] = results["recovered"][0]
        report["after_release"] = results["after release"]  # counter, size, untorn
        report["after"] = bystander.round_trips(5)
    finally:
        if filler is not None:
            os.unlink(filler)
        stop.set()
        done.set()
        for p in procs:
            p.join(TIMEOUT)
            if p.exitcode is None:
                p.kill()
                p.join(TIMEOUT)
    report["exitcodes"] = [p.exitcode for p in procs]
    registry.reap_dead()
    report["problems"] = registry.check_consistency()
    report["live_slots"] = len(registry.live_slots())
    node.destroy_node()
    agnoshm.shutdown()
    report["left"] = campaign_workers.objects_of([p.pid for p in procs] + [os.getpid()])
    return report


def main() -> None:
    report = pool_scenario(sys.argv[1], walk_during="walk" in sys.argv[2:])
    print(json.dumps(report))


def crowd(kind: str, out, go_on, done) -> None:
    """Create ``kind`` (topics, publishers, subscriptions) until the registry is full;
    report; on ``go_on`` destroy one and create one again."""
    import agnoshm

    node = agnoshm.Node("crowd")

    def create(i: int):
        if kind == "publishers":
            return node.create_publisher(agnoshm.Bytes, "/crowd", 4)
        topic = "/crowd" if kind == "subscriptions" else f"/crowd/t{i}"
        return node.create_polling_subscription(agnoshm.Bytes, topic, 4)

    made, error = [], None
    while len(made) < 64:
        try:
            made.append(create(len(made)))
        except Exception as err:  # the limit: reported, the test checks type and message
            error = err
            break
    out.put(("full", len(made), error and type(error).__name__,
             error and [c.__name__ for c in type(error).__mro__], error and str(error)))
    go_on.wait(TIMEOUT)
    made.pop(0).destroy()
    try:
        made.append(create(len(made) + 100))
        out.put(("again", None))
    except Exception as err:
        out.put(("again", f"{type(err).__name__}: {err}"))
    done.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()
