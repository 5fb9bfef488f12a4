"""iceoryx2 (``pip install iceoryx2``): zero-copy shared memory, woken by an event service.

The publisher loans an uninitialized ``uint8`` slice of the payload size
(``loan_slice_uninit``), writes its first and last byte and the stamp in
place, then ``assume_init()``, ``send()`` and ``notify()`` on an event
service of the same name, which wakes the subscriber's ``Listener``.  The
subscriber ``receive()``s the sample and reads it in place through
``payload_ptr``.  Nothing is copied.

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
from agnoshm.bench.latency import ACK, MEASURED, WARMUP

MODULE = "iceoryx2"
SERVICE = "agnoshm_bench/latency"


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
    name = iox2.ServiceName.new(SERVICE)
    pubsub = (node.service_builder(name).publish_subscribe(iox2.Slice[ctypes.c_uint8])
              .open_or_create())
    event = node.service_builder(name).event().open_or_create()
    return iox2, node, pubsub, event


class Sender:
    """Child side: loans, stamps, sends and notifies."""

    def __init__(self, ack: socket.socket, run_id: str, max_size: int):
        self._ack = ack
        self._ack.settimeout(STARTUP_TIMEOUT)
        self.iox2, self.node, self.pubsub, self.event = _open(run_id)
        self.publisher = (self.pubsub.publisher_builder().initial_max_slice_len(max_size)
                          .create())
        self.notifier = self.event.notifier_builder().create()

    def ready(self) -> int:
        return os.getpid()

    def connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.pubsub.dynamic_config.number_of_subscribers < 1:
            if time.monotonic() > deadline:
                raise TimeoutError("no iceoryx2 subscriber appeared")
            time.sleep(0.001)

    def latency(self, size: int, samples: int, warmup: int, interval_s: float) -> None:
        for i in range(warmup + samples):
            sample = self.publisher.loan_slice_uninit(size)
            address = sample.payload_ptr
            ctypes.c_uint8.from_address(address).value = WARMUP if i < warmup else MEASURED
            ctypes.c_uint8.from_address(address + size - 1).value = i & 0xFF
            ctypes.c_int64.from_address(address + 8).value = time.monotonic_ns()
            sample.assume_init().send()
            self.notifier.notify()
            del sample
            if self._ack.recv(1) != ACK:
                raise RuntimeError("the subscriber closed the acknowledgement socket")
            time.sleep(interval_s)

    def close(self) -> None:
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

    def ready(self) -> int:
        return os.getpid()

    def latency(self, total: int, timeout: float) -> dict:
        latencies = []
        received = 0
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        deadline = wall0 + timeout
        tick = self.iox2.Duration.from_millis(200)
        while received < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"received {received} of {total} messages in {timeout:.0f} s")
            self.listener.timed_wait(tick)
            while (sample := self.subscriber.receive()) is not None:
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
        return {"latency_ns": latencies,
                "cpu_per_s": (cpu_seconds() - cpu0) / (time.monotonic() - wall0)}

    def close(self) -> None:
        self.listener.delete()
        self.subscriber.delete()
        self._ack.close()
