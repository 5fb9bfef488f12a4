"""iceoryx2 (``pip install iceoryx2``): zero-copy shared memory, woken by an event service.

The publisher loans an uninitialized ``uint8`` slice of the payload size
(``loan_slice_uninit``), writes its first and last byte and the stamp in
place, then ``assume_init()``, ``send()`` and ``notify()`` on an event
service of the same name, which wakes the subscriber's ``Listener``.  The
subscriber ``receive()``s the sample and reads it in place through
``payload_ptr``.  Nothing is copied.

**Throughput** (:meth:`Sender.throughput`, alternated with agnoshm's by the
bench): the same loan, write, ``send()`` and ``notify()`` per message, back to
back, on a service of its own whose subscriber buffer holds ``depth`` samples
(``enable_safe_overflow``, iceoryx2's default, overwrites the oldest: KEEP_LAST
``depth``, as agnoshm's run); the subscriber wakes on its listener and drains
``receive()``, reading the first byte of each sample.

**Busy-poll** (``Receiver.latency(..., busy_poll=True)``): the subscriber
polls ``receive()`` in a loop and never waits on the listener; the publisher
then does not ``notify()``.

The publisher's data segment is sized for the largest payload of the run
(``initial_max_slice_len``).  Every iceoryx2 object of the run has the
prefix ``agnoshm_bench_<run>_``; :func:`leftovers` names those iceoryx2
keeps in ``/dev/shm`` after its nodes are gone.
"""

from __future__ import annotations

import ctypes
import glob
import os
import socket
import time

from agnoshm.bench import STARTUP_TIMEOUT, cpu_seconds
from agnoshm.bench.latency import ACK, LAST, MEASURED, WARMUP

MODULE = "iceoryx2"
THROUGHPUT = BUSY_POLL = True  # offers both (see agnoshm.bench.peers)
SERVICE = "agnoshm_bench/latency"
THROUGHPUT_SERVICE = "agnoshm_bench/throughput"
POLLS_PER_CLOCK = 1000  # a busy-polling subscriber looks at its deadline this often


def _prefix(run_id: str) -> str:
    return f"agnoshm_bench_{run_id}_"


def size_limit(size: int) -> str | None:
    return None


def leftovers(run_id: str, pids: list[int]) -> list[str]:
    return glob.glob(f"/dev/shm/{_prefix(run_id)}*")


def _open(run_id: str):
    """A node in this run's private iceoryx2 namespace, with the pub/sub and event services."""
    import iceoryx2 as iox2

    config = iox2.config.default()
    config.global_cfg.prefix = iox2.FileName.new(_prefix(run_id))
    node = (iox2.NodeBuilder.new().config(config)
            .signal_handling_mode(iox2.SignalHandlingMode.Disabled)  # the worker handles SIGTERM
            .create(iox2.ServiceType.Ipc))
    pubsub, event = _services(iox2, node, SERVICE)
    return iox2, node, pubsub, event


def _services(iox2, node, service: str, depth: int | None = None):
    """The pub/sub service ``service`` (a subscriber buffer of ``depth`` samples, where given)
    and the event service of the same name."""
    name = iox2.ServiceName.new(service)
    builder = node.service_builder(name).publish_subscribe(iox2.Slice[ctypes.c_uint8])
    if depth is not None:
        builder = builder.subscriber_max_buffer_size(depth)
    return builder.open_or_create(), node.service_builder(name).event().open_or_create()


class Sender:
    """Child side: loans, stamps, sends and notifies."""

    def __init__(self, ack: socket.socket, run_id: str, max_size: int):
        self._ack = ack
        self._ack.settimeout(STARTUP_TIMEOUT)
        self.iox2, self.node, self.pubsub, self.event = _open(run_id)
        self.publisher = (self.pubsub.publisher_builder().initial_max_slice_len(max_size)
                          .create())
        self.notifier = self.event.notifier_builder().create()
        self._throughput = None  # (service, publisher, notifier), made by the first run

    def ready(self) -> int:
        return os.getpid()

    def connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.pubsub.dynamic_config.number_of_subscribers < 1:
            if time.monotonic() > deadline:
                raise TimeoutError("no iceoryx2 subscriber appeared")
            time.sleep(0.001)

    def latency(self, size: int, samples: int, warmup: int, interval_s: float,
                notify: bool = True) -> None:
        """:param notify: False for a busy-polling subscriber (it never waits on the listener)."""
        for i in range(warmup + samples):
            sample = self.publisher.loan_slice_uninit(size)
            address = sample.payload_ptr
            ctypes.c_uint8.from_address(address).value = WARMUP if i < warmup else MEASURED
            ctypes.c_uint8.from_address(address + size - 1).value = i & 0xFF
            ctypes.c_int64.from_address(address + 8).value = time.monotonic_ns()
            sample.assume_init().send()
            if notify:
                self.notifier.notify()
            del sample
            if self._ack.recv(1) != ACK:
                raise RuntimeError("the subscriber closed the acknowledgement socket")
            time.sleep(interval_s)

    def throughput(self, size: int, seconds: float, depth: int) -> dict:
        """Loan, send and notify back to back for ``seconds``, then a :data:`LAST` sample
        (as :meth:`agnoshm.bench.latency.Sender.throughput`)."""
        if self._throughput is None:
            pubsub, event = _services(self.iox2, self.node, THROUGHPUT_SERVICE, depth)
            self._throughput = (pubsub, pubsub.publisher_builder().initial_max_slice_len(size)
                                .create(), event.notifier_builder().create())
        pubsub, publisher, notifier = self._throughput
        deadline = time.monotonic() + 60.0
        while pubsub.dynamic_config.number_of_subscribers < 1:
            if time.monotonic() > deadline:
                raise TimeoutError("no iceoryx2 throughput subscriber appeared")
            time.sleep(0.001)

        def send(kind: int, counter: int) -> None:
            sample = publisher.loan_slice_uninit(size)
            address = sample.payload_ptr
            ctypes.c_uint8.from_address(address).value = kind
            ctypes.c_uint8.from_address(address + size - 1).value = counter & 0xFF
            sample.assume_init().send()
            notifier.notify()

        count = 0
        start = time.monotonic()
        deadline = start + seconds
        while True:
            for _ in range(100):
                send(MEASURED, count)
                count += 1
            if time.monotonic() >= deadline:
                break
        elapsed = time.monotonic() - start
        send(LAST, count)
        return {"published": count, "seconds": elapsed}

    def close(self) -> None:
        if self._throughput is not None:
            self._throughput[2].delete()
            self._throughput[1].delete()
        self.notifier.delete()
        self.publisher.delete()
        self._ack.close()


class Receiver:
    """Child side: waits on the listener, receives and reads the sample in place."""

    def __init__(self, ack: socket.socket, run_id: str, max_size: int):
        self._ack = ack
        self.iox2, self.node, self.pubsub, self.event = _open(run_id)
        self.subscriber = self.pubsub.subscriber_builder().create()
        self.listener = self.event.listener_builder().create()
        self._throughput = None  # (subscriber, listener), made by subscribe_throughput

    def ready(self) -> int:
        return os.getpid()

    def latency(self, total: int, timeout: float, busy_poll: bool = False) -> dict:
        """:param busy_poll: poll ``receive()`` in a loop instead of waiting on the listener."""
        latencies = []
        received = 0
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        deadline = wall0 + timeout
        tick = self.iox2.Duration.from_millis(200)
        receive, wait = self.subscriber.receive, self.listener.timed_wait
        polls = 0
        while received < total:
            sample = receive()
            if sample is None:
                polls += 1
                if (not busy_poll or polls % POLLS_PER_CLOCK == 0) and time.monotonic() > deadline:
                    raise TimeoutError(f"received {received} of {total} messages in "
                                       f"{timeout:.0f} s")
                if not busy_poll:
                    wait(tick)
                continue
            address = sample.payload_ptr
            stamp = ctypes.c_int64.from_address(address + 8).value
            kind = ctypes.c_uint8.from_address(address).value
            last = sample.header.number_of_elements - 1
            ctypes.c_uint8.from_address(address + last).value
            latency = time.monotonic_ns() - stamp
            del sample
            if kind == MEASURED:
                latencies.append(latency)
            received += 1
            self._ack.send(ACK)
        cpu = cpu_seconds() - cpu0
        return {"latency_ns": latencies, "cpu_per_s": cpu / (time.monotonic() - wall0),
                "cpu_per_message_us": 1e6 * cpu / max(received, 1)}

    def subscribe_throughput(self, depth: int) -> None:
        if self._throughput is None:
            pubsub, event = _services(self.iox2, self.node, THROUGHPUT_SERVICE, depth)
            self._throughput = (pubsub.subscriber_builder().buffer_size(depth).create(),
                                event.listener_builder().create())

    def throughput(self, timeout: float) -> dict:
        """Count samples until the :data:`LAST` one (as agnoshm's receiver)."""
        subscriber, listener = self._throughput
        received, first_ns = 0, 0
        deadline = time.monotonic() + timeout
        tick = self.iox2.Duration.from_millis(200)
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no end-of-run sample within {timeout:.0f} s")
            listener.timed_wait(tick)
            while (sample := subscriber.receive()) is not None:
                kind = ctypes.c_uint8.from_address(sample.payload_ptr).value
                del sample
                now = time.monotonic_ns()
                if kind == LAST:
                    return {"received": received, "seconds": (now - first_ns) / 1e9}
                if not received:
                    first_ns = now
                received += 1

    def close(self) -> None:
        if self._throughput is not None:
            self._throughput[1].delete()
            self._throughput[0].delete()
        self.listener.delete()
        self.subscriber.delete()
        self._ack.close()
