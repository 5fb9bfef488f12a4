"""``agnoshm bench``: zero-copy latency, throughput and fan-out, against copy baselines.

This module holds what every measurement shares: the run :class:`Settings`,
:func:`summarize` (percentiles of a sample list) and :class:`Worker`, a
child process started with the *spawn* method that answers commands over a
pipe.  :mod:`~agnoshm.bench.latency` measures agnoshm,
:mod:`~agnoshm.bench.baselines` the copy-based transports,
:mod:`~agnoshm.bench.peers` other middlewares (one ``peer_<name>`` module
each) and :mod:`~agnoshm.bench.report` prints and saves the results; the ``agnoshm
bench`` command (:mod:`agnoshm.cli.bench`) runs them in order.

Workers never share the parent's agnoshm runtime: the parent stays out of
the domain, every child joins a private ``ROS_DOMAIN_ID`` and leaves it on
exit, so nothing is left in ``/dev/shm``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import socket
import sys
import time
import traceback
from typing import Any, Callable, Iterator, Mapping

import numpy as np

KIB, MIB = 1 << 10, 1 << 20
DEFAULT_SIZES = (64, 4 * KIB, 64 * KIB, MIB, 4 * MIB, 16 * MIB)
STARTUP_TIMEOUT = 60.0  # seconds a worker may take to import and join the domain


class BenchError(RuntimeError):
    """A measurement could not be made (a worker failed, hung or exited)."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one ``agnoshm bench`` run measures and how hard.

    :param sizes: payload sizes in bytes (each at least 16: bytes 8..16 carry the latency stamp).
    :param samples: measured messages per size and transport.
    :param warmup: messages sent and discarded before the measured ones.
    :param interval_s: pause between one message's delivery and the next send.
    :param backend: agnoshm pool backend, ``shm`` or ``memfd``.
    :param throughput_size: payload of the throughput test.
    :param throughput_s: how long the throughput publisher publishes.
    :param throughput_depth: QoS depth of the throughput publisher and subscription.
    :param throughput_rounds: throughput runs per transport, alternated round by round.
    :param fanout_processes: subscribing processes of the fan-out test.
    :param fanout_subscriptions: subscriptions of the fan-out test, over all processes.
    :param busy_poll_us: ``AGNOSHM_BUSY_POLL_US`` of the busy-poll test.
    :param busy_poll_sizes: payload sizes of the busy-poll test.
    :param comparison_samples: measured messages per size for the slower comparisons, the
        ``cdr-socket`` baseline and the other middlewares (:mod:`~agnoshm.bench.peers`);
        0 means ``samples``.
    :param comparison_warmup: their warm-up messages; 0 means ``warmup``.
    """

    sizes: tuple[int, ...] = DEFAULT_SIZES
    samples: int = 2000
    warmup: int = 50
    interval_s: float = 0.002
    backend: str = "shm"
    throughput_size: int = 4 * KIB
    throughput_s: float = 2.0
    throughput_depth: int = 100
    throughput_rounds: int = 3
    fanout_processes: int = 8
    fanout_subscriptions: int = 64
    busy_poll_us: int = 100
    busy_poll_sizes: tuple[int, ...] = (64, MIB)
    comparison_samples: int = 0
    comparison_warmup: int = 0

    def comparison(self) -> tuple[int, int]:
        """``(samples, warmup)`` of the ``cdr-socket`` baseline and the other middlewares."""
        return self.comparison_samples or self.samples, self.comparison_warmup or self.warmup

    def command_timeout(self, size: int = 0) -> float:
        """A generous watchdog for one command of ``samples`` messages (never a speed limit)."""
        per_message = self.interval_s + 0.05 + size / 50e6
        return 120.0 + (self.samples + self.warmup) * per_message


def summarize(samples_ns: list[int] | np.ndarray) -> dict[str, float]:
    """Return count, p50, p90, p99, mean, min and max of nanosecond samples, in microseconds."""
    values = np.asarray(samples_ns, dtype=np.float64) / 1e3
    if values.size == 0:
        raise BenchError("no samples were collected")
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"count": int(values.size), "p50_us": float(p50), "p90_us": float(p90),
            "p99_us": float(p99), "mean_us": float(values.mean()),
            "min_us": float(values.min()), "max_us": float(values.max())}


def run_throughput(transport: str, settings: Settings, sender: Worker,
                   receiver: Worker) -> dict:
    """One throughput run of a pair of workers whose receiver offers ``subscribe_throughput(depth)``
    and ``throughput(timeout) -> {received, seconds}`` (first to last message received) and
    whose sender offers ``throughput(size, seconds, depth) -> {published, seconds}``."""
    s = settings
    timeout = 120.0 + 10 * s.throughput_s
    receiver.call("subscribe_throughput", s.throughput_depth, timeout=STARTUP_TIMEOUT)
    receiver.send("throughput", timeout)
    sender.send("throughput", s.throughput_size, s.throughput_s, s.throughput_depth)
    published, received = gather([sender, receiver], timeout)
    seconds = max(received["seconds"], 1e-9)
    return {"transport": transport, "size": s.throughput_size, "depth": s.throughput_depth,
            "published": published["published"],
            "published_per_s": published["published"] / published["seconds"],
            "received": received["received"], "received_per_s": received["received"] / seconds,
            "dropped": published["published"] - received["received"]}


def cpu_seconds() -> float:
    """User plus system CPU seconds this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def private_domain_id() -> int:
    """A ``ROS_DOMAIN_ID`` for this run that never collides with tests or other runs."""
    return 200 + os.getpid() % 30000


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block (children started in it inherit them)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class Worker:
    """A spawned child process that builds ``factory(*args)`` and serves its commands.

    A command is a tuple ``(method, *args)``; the child calls that method of
    the object the factory built and sends back its result.  A failure in the
    child comes back as :class:`BenchError` carrying the child's traceback.

    :param name: shown in error messages.
    :param env: environment variables set for this child only.
    """

    def __init__(self, name: str, factory: Callable, *args: Any,
                 env: Mapping[str, str] | None = None):
        self.name = name
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child_conn, factory, args),
                                   name=f"agnoshm-bench-{name}")
        with environment(env or {}):
            self.process.start()
        child_conn.close()
        self._pending = False
        self._quitting = False
        self.info = None

    def started(self, timeout: float = STARTUP_TIMEOUT) -> Any:
        """Wait until the child is set up; return what its object reported (``ready()``)."""
        self._pending = True
        self.info = self.result(timeout)
        return self.info

    def send(self, method: str, *args: Any) -> None:
        """Start a command without waiting for its result."""
        self._conn.send((method, *args))
        self._pending = True

    def result(self, timeout: float) -> Any:
        """Wait for the result of the command sent last."""
        deadline = time.monotonic() + timeout
        while not self._conn.poll(0.2):
            if not self.process.is_alive() and not self._conn.poll(0):
                raise BenchError(f"worker {self.name} exited with code {self.process.exitcode} "
                                 "before answering")
            if time.monotonic() > deadline:
                raise BenchError(f"worker {self.name} did not answer within {timeout:.0f} s")
        try:
            status, value = self._conn.recv()
        except EOFError:
            raise BenchError(f"worker {self.name} closed its pipe before answering") from None
        self._pending = False
        if status != "ok":
            raise BenchError(f"worker {self.name} failed:\n{value}")
        return value

    def call(self, method: str, *args: Any, timeout: float) -> Any:
        self.send(method, *args)
        return self.result(timeout)

    def _ask_to_quit(self) -> bool:
        """Send ``quit`` unless the child is busy or gone; True if it was asked."""
        if self._quitting or self._pending or not self.process.is_alive():
            return self._quitting
        try:
            self._conn.send(("quit",))
            self._quitting = True
        except OSError:
            pass
        return self._quitting

    def close(self, timeout: float = 30.0) -> None:
        """Ask the child to finish (it leaves the domain), then make sure it is gone.

        A child still busy with a command (after an error or Ctrl-C) gets
        SIGTERM at once; it too exits through its cleanup (see ``_serve``).
        """
        process = self.process
        if self._ask_to_quit():
            process.join(timeout)
        if process.is_alive():
            process.terminate()
            process.join(10.0)
        if process.is_alive():
            process.kill()
            process.join()
        self._conn.close()


def gather(workers: list[Worker], timeout: float) -> list[Any]:
    """Wait for the pending result of every worker, in order; the first failure raises at once
    (so a failed subscriber is reported, not the publisher that then waits for it)."""
    deadline = time.monotonic() + timeout
    results: list[Any] = [None] * len(workers)
    waiting = set(range(len(workers)))
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            names = ", ".join(workers[i].name for i in sorted(waiting))
            raise BenchError(f"worker(s) {names} did not answer within {timeout:.0f} s")
        handles = {}
        for i in waiting:
            handles[workers[i]._conn] = handles[workers[i].process.sentinel] = i
        for handle in multiprocessing.connection.wait(list(handles), min(left, 1.0)):
            i = handles[handle]
            if i in waiting:
                results[i] = workers[i].result(STARTUP_TIMEOUT)
                waiting.discard(i)
    return results


def close_all(workers: list[Worker]) -> None:
    """Close ``workers``; idle ones are asked first so that they quit in parallel."""
    for worker in workers:
        worker._ask_to_quit()
    for worker in reversed(workers):
        worker.close()


class SocketPair:
    """A sender and a receiver child joined by a Unix ``socketpair`` (their acknowledgement
    channel), kept for a whole size sweep: the copy baselines and the bare ring.

    ``sender(sock, *sender_args)`` and ``receiver(sock, *receiver_args)`` are built in the
    children; each must have a ``latency`` command (see :meth:`latency_ns`).
    """

    def __init__(self, name: str, settings: Settings, sender: Callable, sender_args: tuple,
                 receiver: Callable, receiver_args: tuple = ()):
        self.settings = settings
        self.workers: list[Worker] = []
        ours, theirs = socket.socketpair()
        try:
            self.sender = Worker(f"{name}-sender", sender, ours, *sender_args)
            self.workers.append(self.sender)
            self.receiver = Worker(f"{name}-receiver", receiver, theirs, *receiver_args)
            self.workers.append(self.receiver)
            for worker in self.workers:
                worker.started()
        except BaseException:
            self.close()
            raise
        finally:
            ours.close()
            theirs.close()

    def latency_ns(self, receiver_args: tuple, sender_args: tuple, size: int) -> dict:
        """Start the receiver's ``latency``, then the sender's; return what the receiver
        measured (``latency_ns``, ``cpu_per_s``)."""
        timeout = self.settings.command_timeout(size)
        self.receiver.send("latency", *receiver_args)
        self.sender.send("latency", *sender_args)
        return gather([self.sender, self.receiver], timeout)[1]

    def close(self) -> None:
        close_all(self.workers)


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _describe(error: BaseException) -> str:
    """An agnoshm error names its cause and fix: its message is enough; anything else is a bug
    whose traceback is needed."""
    from agnoshm.errors import AgnoshmError

    if isinstance(error, AgnoshmError):
        return f"{type(error).__name__}: {error}"
    return traceback.format_exc()


def _leave_domain() -> None:
    """Shut agnoshm down in this worker, if the factory started it (peers' workers do not)."""
    context = sys.modules.get("agnoshm.context")
    if context is not None:
        context.shutdown()


def _serve(conn, factory: Callable, args: tuple) -> None:
    """Child main loop: build the object, answer commands until ``quit`` or a closed pipe."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    obj = None
    try:
        try:
            obj = factory(*args)
            conn.send(("ok", obj.ready() if hasattr(obj, "ready") else None))
        except Exception as error:
            # Leave the domain before answering: the parent stops us (SIGTERM) once it
            # knows, and what the factory made (node, pool, queue) has no close() to run.
            _leave_domain()
            conn.send(("error", _describe(error)))
            return
        while True:
            try:
                command = conn.recv()
            except EOFError:
                return
            if command[0] == "quit":
                return
            try:
                value = getattr(obj, command[0])(*command[1:])
            except Exception as error:
                conn.send(("error", _describe(error)))
            else:
                conn.send(("ok", value))
    finally:
        if obj is not None and hasattr(obj, "close"):
            obj.close()
        conn.close()
        sys.stdout.flush()
