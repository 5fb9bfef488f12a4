"""Copy-based baselines, measured in the same run and paced like agnoshm's latency test.

``socket``
    An ``AF_UNIX`` stream ``socketpair``: the sender writes a 24-byte header
    (send time, size, kind) and the payload with one ``sendmsg``; the
    receiver ``recv_into``s the whole payload into a preallocated
    ``bytearray`` (two copies through the kernel).
``shm-copy``
    A memfd mapped in both processes (``multiprocessing.shared_memory``
    without its name in ``/dev/shm``): the sender copies the payload in and
    sends the header over the socket; the receiver copies it out into its
    ``bytearray`` (two copies in user space).

Latency runs from just before the sender's first copy to the receiver
holding the full payload and touching its first and last byte.  One message
is in flight at a time: the receiver acknowledges each with one byte.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
import time

from agnoshm.bench import (STARTUP_TIMEOUT, Settings, Worker, close_all, cpu_seconds, gather,
                           summarize)
from agnoshm.bench.latency import ACK, MEASURED, WARMUP

TRANSPORTS = ("socket", "shm-copy")
_HEADER = struct.Struct("<qqq")  # send time (CLOCK_MONOTONIC ns), payload size, kind


class CopySender:
    """Child side: sends payloads over the socket or through the shared copy buffer."""

    def __init__(self, sock: socket.socket, capacity: int):
        self.sock = sock
        self.sock.settimeout(STARTUP_TIMEOUT)
        self.fd = os.memfd_create("agnoshm-bench-copy", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, capacity)
        self.map = mmap.mmap(self.fd, capacity)
        self.view = memoryview(self.map)
        socket.send_fds(sock, [b"f"], [self.fd])

    def ready(self) -> int:
        return os.getpid()

    def latency(self, transport: str, size: int, samples: int, warmup: int,
                interval_s: float) -> None:
        sock, view = self.sock, self.view
        payload = bytearray(size)
        for i in range(warmup + samples):
            kind = WARMUP if i < warmup else MEASURED
            payload[0], payload[-1] = kind, i & 0xFF
            start = time.monotonic_ns()
            header = _HEADER.pack(start, size, kind)
            if transport == "socket":
                _send_all(sock, header, payload)
            else:
                view[:size] = payload
                sock.sendall(header)
            if sock.recv(1) != ACK:
                raise RuntimeError("the receiver closed the socket")
            time.sleep(interval_s)

    def close(self) -> None:
        self.view.release()
        self.map.close()
        os.close(self.fd)
        self.sock.close()


class CopyReceiver:
    """Child side: receives into a preallocated ``bytearray`` and acknowledges."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sock.settimeout(STARTUP_TIMEOUT)
        _msg, fds, _flags, _addr = socket.recv_fds(sock, 1, 1)
        self.fd = fds[0]
        self.map = mmap.mmap(self.fd, os.fstat(self.fd).st_size, prot=mmap.PROT_READ)
        self.view = memoryview(self.map)
        self.header = bytearray(_HEADER.size)

    def ready(self) -> int:
        return os.getpid()

    def latency(self, transport: str, size: int, total: int) -> dict:
        sock, shared = self.sock, self.view
        buffer = bytearray(size)
        view = memoryview(buffer)
        latencies = []
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        for _ in range(total):
            _recv_exactly(sock, memoryview(self.header))
            start, n, kind = _HEADER.unpack(self.header)
            if transport == "socket":
                _recv_exactly(sock, view[:n])
            else:
                view[:n] = shared[:n]
            buffer[0], buffer[-1]
            latency = time.monotonic_ns() - start
            if kind == MEASURED:
                latencies.append(latency)
            sock.sendall(ACK)
        view.release()
        return {"latency_ns": latencies,
                "cpu_per_s": (cpu_seconds() - cpu0) / (time.monotonic() - wall0)}

    def close(self) -> None:
        self.view.release()
        self.map.close()
        os.close(self.fd)
        self.sock.close()


def _send_all(sock: socket.socket, header: bytes, payload: bytearray) -> None:
    """Send header and payload with one ``sendmsg`` (no joining copy), finishing if short."""
    sent = sock.sendmsg([header, payload])
    total = len(header) + len(payload)
    if sent < total:
        rest = memoryview(payload)[max(0, sent - len(header)):]
        if sent < len(header):
            sock.sendall(header[sent:])
        sock.sendall(rest)


def _recv_exactly(sock: socket.socket, view: memoryview) -> None:
    while view:
        n = sock.recv_into(view)
        if not n:
            raise EOFError("the sender closed the socket")
        view = view[n:]


class CopyPair:
    """A sender and a receiver process for the copy baselines."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.workers: list[Worker] = []
        ours, theirs = socket.socketpair()
        try:
            self.sender = Worker("copy-sender", CopySender, ours, max(settings.sizes))
            self.workers.append(self.sender)
            self.receiver = Worker("copy-receiver", CopyReceiver, theirs)
            self.workers.append(self.receiver)
            for worker in self.workers:
                worker.started()
        except BaseException:
            self.close()
            raise
        finally:
            ours.close()
            theirs.close()

    def latency(self, transport: str, size: int) -> dict:
        s = self.settings
        timeout = s.command_timeout(size)
        self.receiver.send("latency", transport, size, s.warmup + s.samples)
        self.sender.send("latency", transport, size, s.samples, s.warmup, s.interval_s)
        _, received = gather([self.sender, self.receiver], timeout)
        return {"transport": transport, "size": size, "interval_s": s.interval_s,
                **summarize(received["latency_ns"]),
                "receiver_cpu_per_s": received["cpu_per_s"]}

    def close(self) -> None:
        close_all(self.workers)
