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
``cdr-socket``
    What a serializing middleware pays: the sender stamps the
    ``header.stamp`` of a rosbags ``sensor_msgs/msg/Image`` whose ``data``
    (``uint8[]``, ``mono8``, one row) holds the payload, serializes it with
    ``serialize_cdr`` and sends header and CDR bytes like ``socket``; the
    receiver ``recv_into``s them and ``deserialize_cdr``s the message, then
    reads its stamp and the first and last byte of ``data``.

Latency runs from just before the sender's first copy (for ``cdr-socket``:
just before ``serialize_cdr``) to the receiver holding the full payload and
touching its first and last byte.  One message is in flight at a time: the
receiver acknowledges each with one byte.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
import time

from agnoshm.bench import STARTUP_TIMEOUT, Settings, SocketPair, cpu_seconds, summarize
from agnoshm.bench.latency import ACK, MEASURED, WARMUP

TRANSPORTS = ("socket", "shm-copy", "cdr-socket")
_HEADER = struct.Struct("<qqq")  # send time (CLOCK_MONOTONIC ns), payload size, kind
CDR_TYPE = "sensor_msgs/msg/Image"
_CDR_SLACK = 4096  # room for the Image's header fields around its data


def _typestore():
    """The rosbags type store agnoshm uses (the ``ROS_DISTRO`` or newest definitions)."""
    from agnoshm.msg.types import default_registry

    return default_registry().rosbags.typestore


class _CdrImage:
    """Sender side of ``cdr-socket``: one rosbags Image over a reused payload array."""

    def __init__(self, size: int):
        import numpy as np

        self.typestore = _typestore()
        types = self.typestore.types
        self.time = types["builtin_interfaces/msg/Time"]
        self.data = np.zeros(size, dtype=np.uint8)
        self.image = types[CDR_TYPE](
            header=types["std_msgs/msg/Header"](stamp=self.time(sec=0, nanosec=0),
                                                frame_id="bench"),
            height=1, width=size, encoding="mono8", is_bigendian=0, step=size, data=self.data)

    def serialize(self, now_ns: int) -> memoryview:
        """Stamp the header with ``now_ns`` and serialize (the first copy of the payload)."""
        sec, nanosec = divmod(now_ns, 1_000_000_000)
        self.image.header.stamp = self.time(sec=sec, nanosec=nanosec)
        return self.typestore.serialize_cdr(self.image, CDR_TYPE)


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
        cdr = _CdrImage(size) if transport == "cdr-socket" else None
        payload = cdr.data if cdr is not None else bytearray(size)
        for i in range(warmup + samples):
            kind = WARMUP if i < warmup else MEASURED
            payload[0], payload[-1] = kind, i & 0xFF
            start = time.monotonic_ns()
            if cdr is not None:
                raw = cdr.serialize(start)
                _send_all(sock, _HEADER.pack(start, len(raw), kind), raw)
                del raw
            elif transport == "socket":
                _send_all(sock, _HEADER.pack(start, size, kind), payload)
            else:
                view[:size] = payload
                sock.sendall(_HEADER.pack(start, size, kind))
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
        typestore = _typestore() if transport == "cdr-socket" else None
        buffer = bytearray(size + (_CDR_SLACK if typestore is not None else 0))
        view = memoryview(buffer)
        latencies = []
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        for _ in range(total):
            _recv_exactly(sock, memoryview(self.header))
            start, n, kind = _HEADER.unpack(self.header)
            if typestore is not None:
                _recv_exactly(sock, view[:n])
                image = typestore.deserialize_cdr(view[:n], CDR_TYPE)
                data = image.data
                data[0], data[-1]
                stamp = image.header.stamp
                start = stamp.sec * 1_000_000_000 + stamp.nanosec
                del image, data
            elif transport == "socket":
                _recv_exactly(sock, view[:n])
                buffer[0], buffer[-1]
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


class CopyPair(SocketPair):
    """A sender and a receiver process for the copy baselines."""

    def __init__(self, settings: Settings):
        super().__init__("copy", settings, CopySender, (max(settings.sizes),), CopyReceiver)

    def latency(self, transport: str, size: int) -> dict:
        s = self.settings
        samples, warmup = s.comparison() if transport == "cdr-socket" else (s.samples, s.warmup)
        received = self.latency_ns((transport, size, warmup + samples),
                                   (transport, size, samples, warmup, s.interval_s), size)
        return {"transport": transport, "size": size, "interval_s": s.interval_s,
                **summarize(received["latency_ns"]),
                "receiver_cpu_per_s": received["cpu_per_s"]}
