"""Child-process code for the fault-injection and limit tests (test/registry/).

Like ``workers.py`` (whose helpers this reuses): every worker reports through
a queue or stdout and waits on events, never on sleeps.  A worker that is
going to be killed flushes its queue (``close`` + ``join_thread``) before it
signals, so a SIGKILL can never leave a multiprocessing queue's lock taken.
"""

from __future__ import annotations

import itertools
import mmap
import os
import signal

from workers import TIMEOUT, _valid, fill, read_header, wait_until


def _report_and_pause(out, ready, *record) -> None:
    """Report ``record``, flush it, signal ``ready`` and wait to be killed."""
    out.put(record)
    out.close()
    out.join_thread()
    if ready is not None:
        ready.set()
    while True:
        signal.pause()


# -- kill -9 of a publisher --------------------------------------------------------------


def publish_until_killed(topic: str, publisher_id: int, size: int, depth: int, report_after: int,
                         ready, out) -> None:
    """Publish ``(publisher_id, counter)`` messages without end; report once
    ``report_after`` went out.  Meant to be killed at an arbitrary instruction."""
    import agnoshm

    node = agnoshm.Node(f"doomed{publisher_id}")
    pub = node.create_publisher(agnoshm.Bytes, topic, depth)
    ready.set()
    for i in itertools.count():
        msg = pub.borrow_loaned_message()
        fill(msg.alloc("data", size), publisher_id, i)
        pub.publish(msg)
        if i == report_after:
            out.put(("publishing", os.getpid(), i))
            out.close()
            out.join_thread()  # the queue is never touched again: a kill cannot wedge it


def watch_topic(topic: str, depth: int, final_id: int, final_count: int, ready, out) -> None:
    """Subscribe; report the first message of every publisher id; stop once
    ``final_count`` messages of publisher ``final_id`` arrived; report a summary
    ``{publisher id: (count, strictly increasing, counters)}`` and whether any
    payload was torn."""
    import agnoshm

    node = agnoshm.Node(f"watch{os.getpid()}")
    seen: dict[int, list[int]] = {}
    torn = []

    def callback(msg):
        data = msg.data
        publisher_id, counter = read_header(data)
        if not _valid(data):
            torn.append((publisher_id, counter))
        counters = seen.setdefault(publisher_id, [])
        if not counters:
            out.put(("first", os.getpid(), publisher_id, counter))
        counters.append(counter)

    node.create_subscription(agnoshm.Bytes, topic, callback, depth)
    ready.set()
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    executor.spin_until(lambda: len(seen.get(final_id, ())) >= final_count, timeout_sec=TIMEOUT)
    summary = {pid: (len(c), all(a < b for a, b in zip(c, c[1:])),
                     c if pid == final_id else c[:3])
               for pid, c in seen.items()}
    out.put(("done", os.getpid(), summary, torn))
    node.destroy_node()
    agnoshm.shutdown()


# -- a publisher that waits for a go ----------------------------------------------------


def publish_on_go(topic: str, publisher_id: int, count: int, size: int, depth: int, ready, start,
                  out, finish) -> None:
    """Create a publisher, signal ``ready``; on ``start`` report "publishing", publish
    ``count`` messages, report "published"; leave on ``finish``."""
    import agnoshm

    node = agnoshm.Node(f"pub{publisher_id}")
    pub = node.create_publisher(agnoshm.Bytes, topic, depth)
    ready.set()
    start.wait(TIMEOUT)
    out.put(("publishing", os.getpid()))
    for i in range(count):
        msg = pub.borrow_loaned_message()
        fill(msg.alloc("data", size), publisher_id, i)
        pub.publish(msg)
    out.put(("published", os.getpid(), count))
    finish.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


# -- dying with locks held --------------------------------------------------------------


def hold_topic_lock_then_wait(topic: str, ready, out) -> None:
    """Create a publisher on ``topic``, take the topic's lock, say so, wait to be killed."""
    import agnoshm
    from agnoshm import context

    node = agnoshm.Node("topic_locker")
    pub = node.create_publisher(agnoshm.Bytes, topic, 4)
    topic_index = pub._port.topic_index
    context.get_runtime().registry.topic_lock(topic_index).acquire()
    _report_and_pause(out, ready, "locked", os.getpid(), topic_index)


def die_inside_registry(point: str, topic: str, ready, out) -> None:
    """Stop at a chosen instruction of a registry operation and wait to be killed there.

    ``point``:
      * ``add_publisher`` / ``add_subscription``: after the endpoint's topic position
        was chosen, holding the global *and* the topic lock, the record claimed
        but not written (on a topic this call created);
      * ``mid_leave``: during ``agnoshm.shutdown()``, holding the global lock, after
        the first of the process's endpoints was removed, its record still in use;
      * ``closing_registry``: during ``agnoshm.shutdown()`` of the last process of the
        domain, holding the global lock, the registry marked closed but not yet unlinked;
      * ``after_leave``: during ``agnoshm.shutdown()``, right after the process left
        the registry (no lock held, record free) and before anything else.
    """
    import agnoshm
    from agnoshm.registry.registry import Registry

    def pause_here(*record):
        _report_and_pause(out, ready, "paused", os.getpid(), point, *record)

    if point in ("add_publisher", "add_subscription"):
        original = Registry._claim_topic_position

        def claim(array, kind, topic_name):
            pos = original(array, kind, topic_name)
            pause_here(pos)

        Registry._claim_topic_position = staticmethod(claim)
        node = agnoshm.Node("dying")
        if point == "add_publisher":
            node.create_publisher(agnoshm.Bytes, topic, 4)
        else:
            node.create_polling_subscription(agnoshm.Bytes, topic, 4)
        raise AssertionError("the hook did not fire")

    node = agnoshm.Node("dying")
    node.create_publisher(agnoshm.Bytes, topic, 4)
    node.create_polling_subscription(agnoshm.Bytes, topic, 4)
    node.create_polling_subscription(agnoshm.Bytes, topic + "_other", 4)
    if point == "mid_leave":
        original_remove = Registry._remove_subscription_locked

        def remove(self, index, *, force):
            original_remove(self, index, force=force)
            pause_here(index)

        Registry._remove_subscription_locked = remove
        agnoshm.context.get_runtime().close()  # leave with every endpoint still registered
    elif point == "closing_registry":
        from agnoshm import _libc

        registry_name = agnoshm.context.get_runtime().registry.name.encode()
        original_unlink = _libc.shm_unlink

        def shm_unlink(name):
            if name == registry_name:
                pause_here(name.decode())
            return original_unlink(name)

        _libc.shm_unlink = shm_unlink
        node.destroy_node()
        agnoshm.shutdown()
    elif point == "after_leave":
        original_leave = Registry.leave

        def leave(self, slot):
            last = original_leave(self, slot)
            pause_here(slot, last)

        Registry.leave = leave
        node.destroy_node()
        agnoshm.shutdown()
    raise AssertionError(f"the hook for {point!r} did not fire")


# -- a process that only joins -------------------------------------------------------------


def join_and_wait(ready, out, finish) -> None:
    """Start agnoshm, report ``(pid, slot)``, leave on ``finish``."""
    import agnoshm
    from agnoshm import context

    agnoshm.init()
    runtime = context.get_runtime()
    out.put(("joined", os.getpid(), runtime.slot))
    ready.set()
    finish.wait(TIMEOUT)
    agnoshm.shutdown()


def try_to_join(out) -> None:
    """Try to start agnoshm; report ``("joined", slot)`` or ``("error", type name, message)``."""
    import agnoshm
    from agnoshm import context

    try:
        agnoshm.init()
    except Exception as err:  # the test checks the type and the message
        out.put(("error", type(err).__name__, str(err)))
        return
    out.put(("joined", context.get_runtime().slot))
    agnoshm.shutdown()


# -- invariant 1 from the subscriber's side -------------------------------------------------


def _errno_of(call) -> int:
    """Run ``call``; return 0 if it succeeded, else its errno."""
    try:
        call()
        return 0
    except OSError as err:
        return err.errno


def probe_write_access(topic: str, publisher_pid: int, ready, out, finish) -> None:
    """Receive one message, then try every way to get write access to its pool.

    Reports a dict: ``mprotect`` (errno of making the received page writable),
    and for the memfd backend, for the descriptor handed out over the pool socket
    (``passed_*``) and for ``/proc/<publisher>/fd/<n>`` reopened O_RDWR
    (``reopened_*``): the seals, the errno of ``mmap(PROT_WRITE, MAP_SHARED)``,
    of ``write()``, and of ``mprotect`` on a shared read-only mapping of it.
    """
    import agnoshm
    from agnoshm import _libc, context
    from agnoshm.memory import memfd

    node = agnoshm.Node("prober")
    sub = node.create_polling_subscription(agnoshm.Bytes, topic, 4)
    ready.set()
    msg = None

    def got():
        nonlocal msg
        msg = sub.take()
        return msg is not None

    wait_until(got, what="a message")
    runtime = context.get_runtime()
    page = msg.data.ctypes.data & ~(mmap.PAGESIZE - 1)
    report = {
        "content": bytes(msg.data[:16]),
        "mprotect": _errno_of(lambda: _libc.mprotect(page, mmap.PAGESIZE,
                                                     mmap.PROT_READ | mmap.PROT_WRITE)),
    }
    if runtime.config.backend == "memfd":
        def probe(prefix: str, fd: int) -> None:
            import fcntl

            report[prefix + "seals"] = fcntl.fcntl(fd, _libc.F_GET_SEALS)
            report[prefix + "mmap_write"] = _errno_of(
                lambda: mmap.mmap(fd, mmap.PAGESIZE, flags=mmap.MAP_SHARED,
                                  prot=mmap.PROT_READ | mmap.PROT_WRITE).close())
            report[prefix + "write"] = _errno_of(lambda: os.pwrite(fd, b"x", 0))

            def mprotect_shared_readonly():
                address = _libc.mmap(None, mmap.PAGESIZE, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
                try:
                    _libc.mprotect(address, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_WRITE)
                finally:
                    _libc.munmap(address, mmap.PAGESIZE)

            report[prefix + "mprotect"] = _errno_of(mprotect_shared_readonly)

        passed = memfd.receive_pool_fd(publisher_pid, runtime.config.domain_id)
        try:
            report["passed_link"] = os.readlink(f"/proc/self/fd/{passed}")
            probe("passed_", passed)
        finally:
            os.close(passed)
        target = f"/memfd:agnocast@{publisher_pid}"
        numbers = [n for n in os.listdir(f"/proc/{publisher_pid}/fd")
                   if _readlink(f"/proc/{publisher_pid}/fd/{n}").startswith(target)]
        report["proc_fds"] = numbers
        if numbers:
            try:
                reopened = os.open(f"/proc/{publisher_pid}/fd/{numbers[0]}", os.O_RDWR)
            except OSError as err:
                report["reopen"] = err.errno
            else:
                report["reopen"] = 0
                try:
                    probe("reopened_", reopened)
                finally:
                    os.close(reopened)
    del msg
    out.put(("probed", os.getpid(), report))
    finish.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


# -- light subscriber for the 100-process test (run with subprocess) -------------------------


def light_subscriber_main() -> None:
    """``python -c 'import fault_workers; fault_workers.light_subscriber_main()' TOPIC``

    Prints ``ready <pid>`` once subscribed, then ``got <pid> <payload hex>`` after the
    first message, and exits (agnoshm shuts down at exit).  Imports agnoshm only.
    """
    import sys

    import agnoshm

    topic = sys.argv[1]
    node = agnoshm.Node("light")
    got = []
    node.create_subscription(agnoshm.Bytes, topic, lambda msg: got.append(bytes(msg.data)), 1)
    print("ready", os.getpid(), flush=True)
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    executor.spin_until(lambda: got, timeout_sec=TIMEOUT)
    print("got", os.getpid(), got[0].hex() if got else "-", flush=True)

