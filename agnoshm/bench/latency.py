"""agnoshm's own numbers: latency, throughput and the fan-out cost of ``publish()``.

Latency is measured between two processes, one message in flight at a time:
the publisher loans a message, writes only its first and last byte (filling
16 MiB is the driver's work, not the transport's), publishes it and waits
for the subscriber's one-byte acknowledgement on a socket, then pauses
``interval_s`` before the next message.  So latency never includes queueing,
and both sides are asleep when a message is sent.  The subscriber's callback
reads the stamp the publisher wrote into bytes 8..16 of the payload with
``time.monotonic_ns()`` just before calling ``publish()``, touches
``msg.data[-1]``, then takes ``time.monotonic_ns() - stamp``: the whole of
``publish()``, the wake-up, the executor and the view are inside, as in the
socket baseline, which stamps just before ``send``.

The first byte of every payload says what it is: :data:`WARMUP`,
:data:`MEASURED` or :data:`LAST` (the end of a throughput or fan-out run).
"""

from __future__ import annotations

import os
import socket
import struct
import time

from agnoshm.bench import (STARTUP_TIMEOUT, Settings, Worker, close_all, cpu_seconds, gather,
                           run_throughput, summarize)

WARMUP, MEASURED, LAST = 0, 1, 2
#: The publish time, CLOCK_MONOTONIC ns, at byte 8 of a payload.  A receiver reads it from
#: ``msg.data`` in one call (``STAMP.unpack_from(data, 8)``), as iceoryx2's reads it with
#: one ctypes load: numpy's ``data[8:16].view("<i8")[0]`` costs three array operations.
STAMP = struct.Struct("<q")
LATENCY_TOPIC = "/agnoshm_bench/latency"
THROUGHPUT_TOPIC = "/agnoshm_bench/throughput"
FANOUT_TOPIC = "/agnoshm_bench/fanout"
LATENCY_DEPTH = 10
ACK = b"a"
NATIVE = "agnoshm-native"  # the transport name of agnoshm's rows on its C message path


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.001)


# --- child processes ---------------------------------------------------------------------

class Sender:
    """Child side: the publisher of the latency, throughput and fan-out runs.

    :param namespace: prefix of its topics (two pairs in one domain must not hear each other).
    """

    def __init__(self, ack: socket.socket, namespace: str = ""):
        import agnoshm

        self._agnoshm = agnoshm
        self._ns = namespace
        self._ack = ack
        self._ack.settimeout(STARTUP_TIMEOUT)
        self.node = agnoshm.Node("bench_publisher")
        self._publishers: dict[str, object] = {}

    def ready(self) -> int:
        return os.getpid()

    def _publisher(self, topic: str, depth: int, subscriptions: int):
        topic = self._ns + topic
        pub = self._publishers.get(topic)
        if pub is None:
            pub = self._publishers[topic] = self.node.create_publisher(
                self._agnoshm.Bytes, topic, depth)
        _wait_for(lambda: pub.get_subscription_count() >= subscriptions, STARTUP_TIMEOUT,
                  f"{subscriptions} subscriptions on {topic}")
        return pub

    @staticmethod
    def _loan(pub, size: int, kind: int, counter: int):
        msg = pub.borrow_loaned_message()
        data = msg.alloc("data", size)
        data[0] = kind
        data[-1] = counter & 0xFF
        return msg

    def latency(self, size: int, samples: int, warmup: int, interval_s: float) -> dict:
        """Publish ``warmup + samples`` messages one at a time; return publish() durations."""
        pub = self._publisher(LATENCY_TOPIC, LATENCY_DEPTH, 1)
        durations = []
        for i in range(warmup + samples):
            msg = self._loan(pub, size, WARMUP if i < warmup else MEASURED, i)
            stamp = msg.data[8:16].view("<i8")
            start = time.perf_counter_ns()
            stamp[0] = time.monotonic_ns()
            pub.publish(msg)
            durations.append(time.perf_counter_ns() - start)
            del msg, stamp
            if self._ack.recv(1) != ACK:
                raise RuntimeError("the subscriber closed the acknowledgement socket")
            time.sleep(interval_s)
        return {"publish_ns": durations[warmup:]}

    def throughput(self, size: int, seconds: float, depth: int) -> dict:
        """Publish back to back for ``seconds``, then a :data:`LAST` message."""
        pub = self._publisher(THROUGHPUT_TOPIC, depth, 1)
        count = 0
        start = time.monotonic()
        deadline = start + seconds
        while True:
            for _ in range(100):
                pub.publish(self._loan(pub, size, MEASURED, count))
                count += 1
            if time.monotonic() >= deadline:
                break
        elapsed = time.monotonic() - start
        pub.publish(self._loan(pub, size, LAST, count))
        return {"published": count, "seconds": elapsed}

    def fanout(self, subscriptions: int, size: int, samples: int, warmup: int,
               interval_s: float) -> dict:
        """Publish at a fixed pause to ``subscriptions`` subscriptions; time ``publish()`` alone."""
        pub = self._publisher(FANOUT_TOPIC, LATENCY_DEPTH, subscriptions)
        durations = []
        for i in range(warmup + samples):
            msg = self._loan(pub, size, MEASURED, i)
            start = time.perf_counter_ns()
            pub.publish(msg)
            durations.append(time.perf_counter_ns() - start)
            del msg
            time.sleep(interval_s)
        pub.publish(self._loan(pub, size, LAST, 0))
        return {"publish_ns": durations[warmup:]}

    def close(self) -> None:
        self.node.destroy_node()
        self._agnoshm.shutdown()
        self._ack.close()


class Receiver:
    """Child side: the subscriber of the latency and throughput runs (``namespace``: as the
    :class:`Sender`'s)."""

    def __init__(self, ack: socket.socket, namespace: str = ""):
        import agnoshm

        self._agnoshm = agnoshm
        self._ns = namespace
        self._ack = ack
        self.node = agnoshm.Node("bench_subscriber")
        self.node.create_subscription(agnoshm.Bytes, namespace + LATENCY_TOPIC, self._on_latency,
                                      LATENCY_DEPTH)
        self._throughput_sub = None
        self.executor = agnoshm.SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._latencies: list[int] = []
        self._received = 0
        self._first_ns = self._last_ns = 0
        self._done = False

    def ready(self) -> int:
        return os.getpid()

    def _on_latency(self, msg) -> None:
        data = msg.data
        stamp = STAMP.unpack_from(data, 8)[0]
        kind = data[0]
        data[-1]
        latency = time.monotonic_ns() - stamp
        del data, msg  # release the message before anything else happens
        if kind == MEASURED:
            self._latencies.append(latency)
        self._received += 1
        self._ack.send(ACK)

    def latency(self, total: int, timeout: float) -> dict:
        """Receive ``total`` messages; return the measured latencies and CPU use per second."""
        self._latencies, self._received = [], 0
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        if not self.executor.spin_until(lambda: self._received >= total, timeout):
            raise TimeoutError(f"received {self._received} of {total} messages in {timeout:.0f} s")
        cpu = cpu_seconds() - cpu0
        return {"latency_ns": self._latencies, "cpu_per_s": cpu / (time.monotonic() - wall0),
                "cpu_per_message_us": 1e6 * cpu / max(self._received, 1)}

    def _on_throughput(self, msg) -> None:
        kind = msg.data[0]
        del msg
        now = time.monotonic_ns()
        if kind == LAST:
            self._last_ns, self._done = now, True
            return
        if not self._received:
            self._first_ns = now
        self._received += 1

    def subscribe_throughput(self, depth: int) -> None:
        if self._throughput_sub is None:
            self._throughput_sub = self.node.create_subscription(
                self._agnoshm.Bytes, self._ns + THROUGHPUT_TOPIC, self._on_throughput, depth)

    def throughput(self, timeout: float) -> dict:
        """Count messages until the :data:`LAST` one; return the count and the time it took."""
        self._received, self._done = 0, False
        if not self.executor.spin_until(lambda: self._done, timeout):
            raise TimeoutError(f"no end-of-run message within {timeout:.0f} s")
        return {"received": self._received, "seconds": (self._last_ns - self._first_ns) / 1e9}

    def close(self) -> None:
        self.node.destroy_node()
        self._agnoshm.shutdown()
        self._ack.close()


class FanoutReceiver:
    """Child side: one process holding ``count`` subscriptions of the fan-out run."""

    def __init__(self, count: int):
        import agnoshm

        self._agnoshm = agnoshm
        self.node = agnoshm.Node(f"bench_fanout_{os.getpid()}")
        self._received = [0] * count
        self._done = [False] * count
        for k in range(count):
            self.node.create_subscription(agnoshm.Bytes, FANOUT_TOPIC,
                                          lambda msg, k=k: self._on_message(k, msg), LATENCY_DEPTH)
        self.executor = agnoshm.SingleThreadedExecutor()
        self.executor.add_node(self.node)

    def _on_message(self, k: int, msg) -> None:
        data = msg.data
        kind = data[0]
        data[-1]
        del data, msg
        if kind == LAST:
            self._done[k] = True
        else:
            self._received[k] += 1

    def run(self, timeout: float) -> dict:
        if not self.executor.spin_until(lambda: all(self._done), timeout):
            raise TimeoutError(f"no end-of-run message within {timeout:.0f} s")
        return {"received": sum(self._received)}

    def close(self) -> None:
        self.node.destroy_node()
        self._agnoshm.shutdown()


# --- parent side --------------------------------------------------------------------------

class AgnoshmPair:
    """A publisher process and a subscriber process, kept for several measurements.

    :param receiver_env: extra environment of the subscriber (``AGNOSHM_BUSY_POLL_US``).
    :param native: both processes on the C message path (``AGNOSHM_NATIVE=1``; rows named
        :data:`NATIVE`) instead of the pure-Python reference (``AGNOSHM_NATIVE=0``).
    """

    def __init__(self, settings: Settings, receiver_env: dict[str, str] | None = None,
                 native: bool = False):
        self.settings = settings
        self.transport = NATIVE if native else "agnoshm"
        path = {"AGNOSHM_NATIVE": "1" if native else "0"}
        self.workers: list[Worker] = []
        ours, theirs = socket.socketpair()
        try:
            namespace = "/native" if native else ""
            self.sender = self._start("publisher", Sender, ours, namespace, env=path)
            self.receiver = self._start("subscriber", Receiver, theirs, namespace,
                                        env={**path, **(receiver_env or {})})
            for worker in self.workers:
                worker.started()
        except BaseException:
            self.close()
            raise
        finally:
            ours.close()
            theirs.close()

    def _start(self, name: str, factory, *args, env=None) -> Worker:
        worker = Worker(name, factory, *args, env=env)
        self.workers.append(worker)
        return worker

    def latency(self, size: int, interval_s: float | None = None) -> dict:
        """One latency row for ``size``: percentiles, subscriber CPU, publish() cost.

        :param interval_s: pause between messages (default: the settings').
        """
        s = self.settings
        interval_s = s.interval_s if interval_s is None else interval_s
        timeout = s.command_timeout(size)
        self.receiver.send("latency", s.warmup + s.samples, timeout)
        self.sender.send("latency", size, s.samples, s.warmup, interval_s)
        published, received = gather([self.sender, self.receiver], timeout)
        return {"transport": self.transport, "size": size, "interval_s": interval_s,
                **summarize(received["latency_ns"]),
                "receiver_cpu_per_s": received["cpu_per_s"],
                "receiver_cpu_per_message_us": received["cpu_per_message_us"],
                "publish_p50_us": summarize(published["publish_ns"])["p50_us"]}

    def throughput(self) -> dict:
        """Messages per second received while the publisher publishes back to back."""
        return run_throughput(self.transport, self.settings, self.sender, self.receiver)

    def fanout(self, size: int = 64) -> dict:
        """``publish()`` durations with the fan-out subscriptions spread over processes."""
        s = self.settings
        per_process = _split(s.fanout_subscriptions, s.fanout_processes)
        receivers = [Worker(f"fanout-subscriber-{i}", FanoutReceiver, n)
                     for i, n in enumerate(per_process)]
        try:
            for worker in receivers:
                worker.started()
            timeout = s.command_timeout(size)
            for worker in receivers:
                worker.send("run", timeout)
            self.sender.send("fanout", s.fanout_subscriptions, size, s.samples, s.warmup,
                             s.interval_s)
            published, *counts = gather([self.sender, *receivers], timeout)
            received = sum(c["received"] for c in counts)
        finally:
            close_all(receivers)
        return {"size": size, "subscriptions": s.fanout_subscriptions,
                "processes": len(receivers), "received": received,
                **summarize(published["publish_ns"])}

    def close(self) -> None:
        close_all(self.workers)


def _split(total: int, parts: int) -> list[int]:
    """Spread ``total`` subscriptions as evenly as possible over at most ``parts`` processes."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]

