"""eclipse-zenoh (``pip install eclipse-zenoh``): two peers on a Unix socket, payloads in shm.

The two sessions connect directly over a ``unixsock-stream`` endpoint in a
private folder (no scouting, no router).  The publisher allocates each
payload from a :class:`zenoh.shm.ShmProvider` (zenoh's zero-copy loan),
writes its first and last byte and the stamp in place and ``put()``s it, so
only a reference crosses the socket.  The subscriber's callback, on a zenoh
thread, reads the payload with ``ZBytes.to_bytes()``: zenoh-python gives a
received shared-memory buffer no buffer protocol, so this is the one copy
its API leaves (the stamp could be read no other way).

zenoh leaves some of its ``/dev/shm/<number>.zenoh`` segments behind when a
process exits; :func:`leftovers` finds the run's own in ``/proc/<pid>/maps``
while its processes still run, so that nothing else is touched.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time

from agnoshm.bench import STARTUP_TIMEOUT, cpu_seconds
from agnoshm.bench.latency import ACK, MEASURED, WARMUP

MODULE = "zenoh"
KEY = "agnoshm_bench/latency"
_POOL_SLACK = 1 << 20


def size_limit(size: int) -> str | None:
    return None


def leftovers(run_id: str, pids: list[int]) -> list[str]:
    """The ``*.zenoh`` segments the run's processes map, then the socket and its folder."""
    segments = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as maps:
                segments.update(line.split()[-1] for line in maps
                                if line.rstrip().endswith(".zenoh") and " /dev/shm/" in line)
        except OSError:  # the process has exited
            continue
    folder = _folder(run_id)
    return sorted(segments) + [os.path.join(folder, "link.sock"), folder]


def _folder(run_id: str) -> str:
    return os.path.join(tempfile.gettempdir(), f"agnoshm-bench-zenoh-{run_id}")


def _session(run_id: str, listen: bool):
    import zenoh

    folder = _folder(run_id)
    os.makedirs(folder, exist_ok=True)
    endpoint = json.dumps([f"unixsock-stream/{os.path.join(folder, 'link.sock')}"])
    config = zenoh.Config()
    config.insert_json5("mode", '"peer"')
    config.insert_json5("scouting/multicast/enabled", "false")
    config.insert_json5("scouting/gossip/enabled", "false")
    config.insert_json5("transport/shared_memory/enabled", "true")
    config.insert_json5("listen/endpoints" if listen else "connect/endpoints", endpoint)
    return zenoh, zenoh.open(config)


class Sender:
    """Child side: allocates from the shared-memory provider, stamps and puts."""

    def __init__(self, ack: socket.socket, run_id: str, max_size: int):
        import zenoh.shm

        self._ack = ack
        self._ack.settimeout(STARTUP_TIMEOUT)
        self.zenoh, self.session = _session(run_id, listen=False)
        self.publisher = self.session.declare_publisher(KEY)
        self.shm = zenoh.shm
        self.provider = zenoh.shm.ShmProvider.default_backend(2 * max_size + _POOL_SLACK)

    def ready(self) -> int:
        return os.getpid()

    def connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.publisher.matching_status.matching:
            if time.monotonic() > deadline:
                raise TimeoutError("no zenoh subscriber matched")
            time.sleep(0.001)

    def latency(self, size: int, samples: int, warmup: int, interval_s: float) -> None:
        policy = self.shm.BlockOn(self.shm.GarbageCollect())
        for i in range(warmup + samples):
            buffer = self.provider.alloc(size, policy)
            buffer[0] = WARMUP if i < warmup else MEASURED
            buffer[size - 1] = i & 0xFF
            buffer[8:16] = time.monotonic_ns().to_bytes(8, "little")
            self.publisher.put(self.zenoh.ZBytes(buffer))
            del buffer
            if self._ack.recv(1) != ACK:
                raise RuntimeError("the subscriber closed the acknowledgement socket")
            time.sleep(interval_s)

    def close(self) -> None:
        self.publisher.undeclare()
        self.session.close()
        del self.provider  # unlinks its shared-memory segment
        self._ack.close()


class Receiver:
    """Child side: listens on the socket; a callback reads each sample and acknowledges."""

    def __init__(self, ack: socket.socket, run_id: str, max_size: int):
        self._ack = ack
        self.zenoh, self.session = _session(run_id, listen=True)
        self._arrived = threading.Condition()
        self._samples: list[tuple[int, int]] = []  # (kind, latency): kept until latency() asks
        self.subscriber = self.session.declare_subscriber(KEY, self._on_sample)

    def ready(self) -> int:
        return os.getpid()

    def _on_sample(self, sample) -> None:
        data = sample.payload.to_bytes()
        stamp = int.from_bytes(data[8:16], "little")
        data[-1]
        latency = time.monotonic_ns() - stamp
        with self._arrived:
            self._samples.append((data[0], latency))
            self._arrived.notify()
        self._ack.send(ACK)

    def latency(self, total: int, timeout: float) -> dict:
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._samples) >= total, timeout):
                raise TimeoutError(f"received {len(self._samples)} of {total} messages in "
                                   f"{timeout:.0f} s")
            samples, self._samples = self._samples[:total], self._samples[total:]
        return {"latency_ns": [latency for kind, latency in samples if kind == MEASURED],
                "cpu_per_s": (cpu_seconds() - cpu0) / (time.monotonic() - wall0)}

    def close(self) -> None:
        self.subscriber.undeclare()
        self.session.close()
        self._ack.close()
