"""Cyclone DDS (``pip install cyclonedds``; the wheel bundles the C library): DDS over loopback.

Writer and reader use RELIABLE, KEEP_LAST 1 on a topic private to the run,
in a domain whose discovery is unicast to ``127.0.0.1`` on the loopback
interface only (``CYCLONEDDS_URI``).  The message is an IDL struct holding a
``sequence<uint8>``, the shape of ``std_msgs/msg/UInt8MultiArray``'s data:
the writer fills a reused buffer, stamps it and ``write()``s (serialize and
UDP through the kernel); the reader wakes on a ``WaitSet`` and ``take()``s.
The Python binding has no loan (Cyclone's zero-copy path needs iceoryx and
the C API).

cyclonedds-python converts a ``sequence<uint8>`` to and from a Python list
of ints element by element, so its cost grows steeply with the size: sizes
above :data:`MAX_SIZE` are skipped rather than take minutes.
"""

# No "from __future__ import annotations": cyclonedds reads the IDL field types eagerly.
import os
import socket
import time

from agnoshm.bench import STARTUP_TIMEOUT, cpu_seconds
from agnoshm.bench.latency import ACK, MEASURED, WARMUP

MODULE = "cyclonedds"
MAX_SIZE = 64 << 10
_URI = ("<CycloneDDS><Domain id=\"any\"><General><Interfaces>"
        "<NetworkInterface name=\"lo\"/></Interfaces><AllowMulticast>false</AllowMulticast>"
        "</General><Discovery><ParticipantIndex>auto</ParticipantIndex><Peers>"
        "<Peer address=\"127.0.0.1\"/></Peers></Discovery></Domain></CycloneDDS>")


def size_limit(size: int) -> str | None:
    if size <= MAX_SIZE:
        return None
    return ("cyclonedds-python converts sequence<uint8> to and from a Python list element by "
            "element (about 0.1 s per message at 1 MiB); skipped above 64 KiB")


def leftovers(run_id: str, pids: list[int]) -> list[str]:
    return []


def _domain_id(run_id: str) -> int:
    """A DDS domain id (0..232) for the run; the topic name keeps runs apart anyway."""
    return 1 + int(run_id) % 200


def _endpoint(run_id: str):
    """The participant, topic, QoS and message class of this run."""
    from dataclasses import dataclass

    os.environ["CYCLONEDDS_URI"] = _URI
    from cyclonedds.core import Policy, Qos
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.idl import IdlStruct
    from cyclonedds.idl.types import sequence, uint8
    from cyclonedds.topic import Topic

    @dataclass
    class Payload(IdlStruct, typename="agnoshm_bench::Payload"):
        data: sequence[uint8]

    participant = DomainParticipant(_domain_id(run_id))
    topic = Topic(participant, f"agnoshm_bench_latency_{run_id}", Payload)
    qos = Qos(Policy.Reliability.Reliable(max_blocking_time=int(STARTUP_TIMEOUT * 1e9)),
              Policy.History.KeepLast(1))
    return participant, topic, qos, Payload


class Sender:
    """Child side: stamps a reused buffer and writes it."""

    def __init__(self, ack: socket.socket, run_id: str, max_size: int):
        from cyclonedds.pub import DataWriter

        self._ack = ack
        self._ack.settimeout(STARTUP_TIMEOUT)
        self.participant, topic, qos, self.Payload = _endpoint(run_id)
        self.writer = DataWriter(self.participant, topic, qos=qos)

    def ready(self) -> int:
        return os.getpid()

    def connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.writer.get_publication_matched_status().current_count < 1:
            if time.monotonic() > deadline:
                raise TimeoutError("no Cyclone DDS reader matched")
            time.sleep(0.001)

    def latency(self, size: int, samples: int, warmup: int, interval_s: float) -> None:
        payload = bytearray(size)
        for i in range(warmup + samples):
            payload[0], payload[-1] = WARMUP if i < warmup else MEASURED, i & 0xFF
            payload[8:16] = time.monotonic_ns().to_bytes(8, "little")
            self.writer.write(self.Payload(data=payload))
            if self._ack.recv(1) != ACK:
                raise RuntimeError("the reader closed the acknowledgement socket")
            time.sleep(interval_s)

    def close(self) -> None:
        self._ack.close()


class Receiver:
    """Child side: waits on a read condition, takes each sample, acknowledges."""

    def __init__(self, ack: socket.socket, run_id: str, max_size: int):
        from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
        from cyclonedds.sub import DataReader

        self._ack = ack
        self.participant, topic, qos, _ = _endpoint(run_id)
        self.reader = DataReader(self.participant, topic, qos=qos)
        self.waitset = WaitSet(self.participant)
        self.waitset.attach(ReadCondition(
            self.reader, SampleState.Any | ViewState.Any | InstanceState.Any))

    def ready(self) -> int:
        return os.getpid()

    def latency(self, total: int, timeout: float) -> dict:
        from cyclonedds.util import duration

        latencies = []
        received = 0
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        deadline = wall0 + timeout
        while received < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"received {received} of {total} messages in {timeout:.0f} s")
            self.waitset.wait(duration(milliseconds=200))
            for sample in self.reader.take(N=16):
                data = sample.data
                stamp = int.from_bytes(bytes(data[8:16]), "little")
                data[-1]
                latency = time.monotonic_ns() - stamp
                if data[0] == MEASURED:
                    latencies.append(latency)
                del data, sample
                received += 1
                self._ack.send(ACK)
        return {"latency_ns": latencies,
                "cpu_per_s": (cpu_seconds() - cpu0) / (time.monotonic() - wall0)}

    def close(self) -> None:
        self._ack.close()
