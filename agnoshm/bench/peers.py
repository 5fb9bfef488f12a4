"""Other middlewares, measured like agnoshm: iceoryx2, eclipse-zenoh, Cyclone DDS and rclpy.

Each peer lives in its own module (``agnoshm.bench.peer_<name>``) that
provides a ``Sender`` and a ``Receiver`` class for :class:`~agnoshm.bench.Worker`
children, with the same commands as the copy baselines:

* ``Sender(ack, run_id, max_size)`` / ``Receiver(ack, run_id, max_size)``
  set up the peer's publisher or subscriber; ``ack`` is one end of a Unix
  ``socketpair`` and ``run_id`` makes the peer's names private to this run;
* ``Sender.connect(timeout)`` waits until the peer reports a matched
  subscriber, so that no message is lost;
* ``Sender.latency(size, samples, warmup, interval_s)`` publishes ``warmup +
  samples`` messages, one in flight: it loans a message where the peer can
  (or fills a reused buffer), writes the first and last byte, writes
  ``time.monotonic_ns()`` into bytes 8..16 just before handing it over,
  waits for the receiver's one-byte acknowledgement, then pauses
  ``interval_s``;
* ``Receiver.latency(total, timeout)`` takes each message, reads the stamp,
  touches the last byte, records ``time.monotonic_ns() - stamp`` and
  acknowledges.  It returns ``{"latency_ns": [...], "cpu_per_s": ...}``.

A peer may also offer the throughput run (``THROUGHPUT = True``:
``Receiver.subscribe_throughput(depth)``, ``Receiver.throughput(timeout)`` and
``Sender.throughput(size, seconds, depth)``, as agnoshm's) and a busy-polling
receiver (``BUSY_POLL = True``: ``Receiver.latency(total, timeout, True)`` polls
instead of waiting, ``Sender.latency(..., False)`` sends no wake-up).

The module also names the import it needs (``MODULE``), the sizes it cannot
carry (``size_limit(size) -> reason | None``) and what it may leave behind
(``leftovers(run_id, pids) -> paths``, asked while its processes run and again
after they exit).  A peer that is not importable is
reported, never raised; a peer that fails while measuring is reported as
skipped with its error, and the rest of the run goes on.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import socket

from agnoshm.bench import (STARTUP_TIMEOUT, BenchError, Settings, Worker, close_all, gather,
                           run_throughput, summarize)

#: transport name -> module with its Sender and Receiver, in the order they run.
PEERS = {
    "iceoryx2": "agnoshm.bench.peer_iceoryx2",
    "zenoh": "agnoshm.bench.peer_zenoh",
    "cyclonedds": "agnoshm.bench.peer_cyclonedds",
    "rclpy": "agnoshm.bench.peer_rclpy",
}
NOT_INSTALLED = "not installed (pip install 'agnoshm[peers]')"


def peer_module(transport: str):
    return importlib.import_module(PEERS[transport])


def availability(transport: str) -> dict | None:
    """None when ``transport`` can be measured here, else its status row for the report."""
    module = peer_module(transport)
    if importlib.util.find_spec(module.MODULE) is not None:
        return None
    if hasattr(module, "NOT_IMPORTABLE"):  # rclpy: comes with ROS 2, not with pip
        return {"transport": transport, "status": "skipped", "reason": module.NOT_IMPORTABLE}
    return {"transport": transport, "status": "not installed", "reason": NOT_INSTALLED}


def status_text(row: dict) -> str:
    """``"not installed (pip install ...)"``, ``"skipped: <reason>"`` or ``"measured"``."""
    if row["status"] == "not installed":
        return row["reason"]
    return f"{row['status']}: {row['reason']}" if row.get("reason") else row["status"]


class PeerPair:
    """A sender and a receiver process of one peer, kept for the whole size sweep.

    :param transport: a key of :data:`PEERS`.
    :param run_id: makes the peer's service, topic or socket names private to this run.
    :param max_size: the largest latency payload (default: the settings' largest size).
    """

    def __init__(self, transport: str, settings: Settings, run_id: str,
                 max_size: int | None = None):
        self.transport = transport
        self.settings = settings
        self.run_id = run_id
        self.module = peer_module(transport)
        self.workers: list[Worker] = []
        self.pids: list[int] = []
        ours, theirs = socket.socketpair()
        try:
            max_size = max_size or max(settings.sizes)
            self.receiver = self._start("receiver", self.module.Receiver, theirs, run_id, max_size)
            self.pids.append(self.receiver.started())
            self.sender = self._start("sender", self.module.Sender, ours, run_id, max_size)
            self.pids.append(self.sender.started())
            self.sender.call("connect", STARTUP_TIMEOUT, timeout=2 * STARTUP_TIMEOUT)
        except BaseException:
            self.close()
            raise
        finally:
            ours.close()
            theirs.close()

    def _start(self, role: str, factory, *args) -> Worker:
        worker = Worker(f"{self.transport}-{role}", factory, *args)
        self.workers.append(worker)
        return worker

    def latency(self, size: int, interval_s: float | None = None, busy_poll: bool = False,
                samples: int | None = None) -> dict:
        """One latency row.

        :param interval_s: pause between messages (default: the settings').
        :param busy_poll: the receiver polls instead of waiting for a wake-up (peers with
            ``BUSY_POLL``; the sender then sends no wake-up).
        :param samples: measured messages (default: the settings' comparison samples).
        """
        s = self.settings
        samples_default, warmup = s.comparison()
        samples = samples or samples_default
        interval_s = s.interval_s if interval_s is None else interval_s
        timeout = s.command_timeout(size)
        self.receiver.send("latency", warmup + samples, timeout, *((True,) if busy_poll else ()))
        self.sender.send("latency", size, samples, warmup, interval_s,
                         *((False,) if busy_poll else ()))
        _, received = gather([self.sender, self.receiver], timeout)
        row = {"transport": self.transport, "size": size, "interval_s": interval_s,
               **summarize(received["latency_ns"]), "receiver_cpu_per_s": received["cpu_per_s"]}
        if "cpu_per_message_us" in received:
            row["receiver_cpu_per_message_us"] = received["cpu_per_message_us"]
        return row

    def throughput(self) -> dict:
        """Messages per second received while the sender sends back to back (peers with
        ``THROUGHPUT``): the same settings and result as
        :meth:`agnoshm.bench.latency.AgnoshmPair.throughput`."""
        return run_throughput(self.transport, self.settings, self.sender, self.receiver)

    def close(self) -> None:
        """Stop both processes, then remove what the peer left behind (named while they ran,
        for peers that find their files through ``/proc/<pid>/maps``, and after)."""
        paths = self.module.leftovers(self.run_id, self.pids)
        close_all(self.workers)
        paths += [p for p in self.module.leftovers(self.run_id, self.pids) if p not in paths]
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                (os.rmdir if os.path.isdir(path) else os.unlink)(path)


def measure_peer(transport: str, settings: Settings, run_id: str, row_done,
                 row_start=None) -> dict:
    """Measure one peer over every size.

    :param row_done: called with each latency row, and with ``(transport, size, reason)``
        for each size the peer skips.
    :param row_start: called with the size before each row is measured.
    :return: the peer's status for the JSON: ``{"transport", "status", "reason"?}`` with
        ``status`` one of ``measured``, ``not installed``, ``skipped`` or ``failed``.
    """
    missing = availability(transport)
    if missing is not None:
        return missing
    module = peer_module(transport)
    sizes = [size for size in settings.sizes if module.size_limit(size) is None]
    for size in settings.sizes:
        if size not in sizes:
            row_done((transport, size, module.size_limit(size)))
    if not sizes:
        return {"transport": transport, "status": "measured", "sizes": []}
    try:
        pair = PeerPair(transport, settings, run_id)
    except BenchError as err:
        return {"transport": transport, "status": "skipped",
                "reason": f"failed: {first_line(err)}"}
    try:
        for size in sizes:
            if row_start is not None:
                row_start(size)
            row_done(pair.latency(size))
    except BenchError as err:
        return {"transport": transport, "status": "failed", "reason": first_line(err)}
    finally:
        pair.close()
    return {"transport": transport, "status": "measured", "sizes": sizes}


def first_line(err: BaseException) -> str:
    """The most telling line of a worker's error (the last line of its traceback)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
