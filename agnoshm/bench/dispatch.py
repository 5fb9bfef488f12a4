"""What an executor adds to the runtime's raw receive path, for 64 B messages.

* **Callbacks per second**, in one process: a publisher publishes a batch of
  :data:`BATCH` messages, then a :class:`~agnoshm.SingleThreadedExecutor`
  delivers them to one subscription's callback, which reads ``msg.data[0]``;
  only the delivery is timed.  The raw path is timed the same way: ``take()``
  on a polling subscription (of its own topic) until it returns None, reading
  ``msg.data[0]`` of each.  Both take, build the view, read and release.
* **Latency through spin() against the raw path**, across processes: the
  latency publisher of :mod:`~agnoshm.bench.latency`, once with its usual
  subscriber (a callback spun by the executor) and once with :class:`RawReceiver`,
  which calls ``take()`` in the wake-up loop
  (:func:`~agnoshm.transport.waiting.wait_for_work`), sleeping on the doorbell
  when there is nothing: the runtime without the executor.
"""

from __future__ import annotations

import os
import socket
import time

from agnoshm.bench import STARTUP_TIMEOUT, Settings, Worker, close_all, gather, summarize
from agnoshm.bench.latency import (ACK, LATENCY_DEPTH, LATENCY_TOPIC, MEASURED, STAMP, Receiver,
                                   Sender)
from agnoshm.transport.waiting import wait_for_work

BATCH = 200  # messages per timed round: within the default 256 live entries of a publisher
SIZE = 64
EXECUTOR_TOPIC = "/agnoshm_bench/dispatch/executor"
RAW_TOPIC = "/agnoshm_bench/dispatch/raw"


class CallbackRate:
    """Child side: one process, one publisher and subscription per path."""

    def __init__(self):
        import agnoshm

        self._agnoshm = agnoshm
        self.node = agnoshm.Node("bench_dispatch")
        self._executor_pub = self.node.create_publisher(agnoshm.Bytes, EXECUTOR_TOPIC, BATCH)
        self.node.create_subscription(agnoshm.Bytes, EXECUTOR_TOPIC, self._on_message, BATCH)
        self._raw_pub = self.node.create_publisher(agnoshm.Bytes, RAW_TOPIC, BATCH)
        self._raw_sub = self.node.create_polling_subscription(agnoshm.Bytes, RAW_TOPIC, BATCH)
        self.executor = agnoshm.SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._delivered = 0

    def ready(self) -> int:
        return os.getpid()

    def _on_message(self, msg) -> None:
        msg.data[0]
        self._delivered += 1

    def _publish_batch(self, pub) -> None:
        payload = bytes(SIZE)
        for _ in range(BATCH):
            pub.publish(payload)

    def measure(self, rounds: int, timeout: float) -> dict:
        """``rounds`` batches through each path; return the delivery times per round."""
        executor_ns, raw_ns = [], []
        clock = time.perf_counter_ns
        for _ in range(rounds):
            self._publish_batch(self._executor_pub)
            target = self._delivered + BATCH
            start = clock()
            if not self.executor.spin_until(lambda: self._delivered >= target, timeout):
                raise TimeoutError(f"the executor delivered {self._delivered - target + BATCH} "
                                   f"of {BATCH} messages in {timeout:.0f} s")
            executor_ns.append(clock() - start)
            self._publish_batch(self._raw_pub)
            taken = 0
            start = clock()
            while (msg := self._raw_sub.take()) is not None:
                msg.data[0]
                del msg
                taken += 1
            raw_ns.append(clock() - start)
            if taken != BATCH:
                raise RuntimeError(f"the raw path took {taken} of {BATCH} messages")
        return {"executor_ns": executor_ns, "raw_ns": raw_ns}

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self._agnoshm.shutdown()


class RawReceiver:
    """Child side: the latency subscriber without an executor (the wake-up loop, ``take()``)."""

    def __init__(self, ack: socket.socket):
        import agnoshm
        from agnoshm.context import get_runtime

        self._agnoshm = agnoshm
        self._ack = ack
        self.node = agnoshm.Node("bench_raw_subscriber")
        self._sub = self.node.create_polling_subscription(agnoshm.Bytes, LATENCY_TOPIC,
                                                          LATENCY_DEPTH)
        self._doorbell = get_runtime().doorbell

    def ready(self) -> int:
        return os.getpid()

    def latency(self, total: int, timeout: float) -> dict:
        """Receive ``total`` messages; return the measured latencies (as :class:`Receiver`)."""
        latencies, received = [], 0
        doorbell, sub = self._doorbell, self._sub
        deadline = time.monotonic() + timeout

        def look():
            return sub.take(), None

        while received < total:
            msg = wait_for_work(doorbell, look, deadline=deadline)
            if msg is None:
                raise TimeoutError(f"received {received} of {total} messages in "
                                   f"{timeout:.0f} s")
            data = msg.data
            stamp = STAMP.unpack_from(data, 8)[0]
            kind = data[0]
            data[-1]
            latency = time.monotonic_ns() - stamp
            del data, msg
            if kind == MEASURED:
                latencies.append(latency)
            received += 1
            self._ack.send(ACK)
        return {"latency_ns": latencies}

    def close(self) -> None:
        self.node.destroy_node()
        self._agnoshm.shutdown()
        self._ack.close()


def _latency_row(settings: Settings, receiver_factory) -> dict:
    """p50/p99 of ``SIZE``-byte messages from the latency publisher to ``receiver_factory``."""
    ours, theirs = socket.socketpair()
    workers = []
    try:
        workers.append(Worker("dispatch-publisher", Sender, ours))
        workers.append(Worker("dispatch-subscriber", receiver_factory, theirs))
        for worker in workers:
            worker.started()
        sender, receiver = workers
        timeout = settings.command_timeout(SIZE)
        receiver.send("latency", settings.warmup + settings.samples, timeout)
        sender.send("latency", SIZE, settings.samples, settings.warmup, settings.interval_s)
        _, received = gather(workers, timeout)
        return summarize(received["latency_ns"])
    finally:
        ours.close()
        theirs.close()
        close_all(workers)


def measure_dispatch(settings: Settings, rounds: int) -> dict:
    """Callbacks per second and latency through spin(), each against the raw path."""
    worker = Worker("dispatch", CallbackRate)
    try:
        worker.started()
        timeout = 120.0 + rounds
        times = worker.call("measure", rounds, timeout, timeout=timeout + STARTUP_TIMEOUT)
    finally:
        close_all([worker])
    executor_s, raw_s = sum(times["executor_ns"]) / 1e9, sum(times["raw_ns"]) / 1e9
    messages = rounds * BATCH
    spin = _latency_row(settings, Receiver)
    raw = _latency_row(settings, RawReceiver)
    return {"size": SIZE, "batch": BATCH, "rounds": rounds,
            "callbacks_per_s": messages / executor_s, "raw_takes_per_s": messages / raw_s,
            "latency_spin": spin, "latency_raw": raw,
            "latency_ratio_p50": spin["p50_us"] / raw["p50_us"]}
