"""The ``ring-floor`` row: a bare ring between two processes, the floor of agnoshm's design.

The message path of :mod:`agnoshm.transport.ring` with nothing of agnoshm
around it (no Node, view, executor, registry or numpy): a memfd mapped by a
sender and a receiver process holds

* ``head``, the last sequence number published (the sender writes it);
* ``sleeping``, the receiver's "I may sleep" flag (only the receiver writes it);
* ``doorbell``, the futex word (the kernel adds to it in ``FUTEX_WAKE_OP``);
* a log of :data:`SLOTS` descriptors (``seq``, ``size``), slot ``s % SLOTS``;
* one payload region sized for the largest size of the run: with one message
  in flight, as in every latency row, the payload is written in place there.

**Send**: write the first and last byte, then ``time.monotonic_ns()`` into
bytes 8..16 (the stamp point of every row), the descriptor (``size``, then
``seq``), store fence, ``head`` (one aligned 8-byte store), full fence, then
ring the futex only if ``sleeping`` is set.  **Receive**: read ``head``; with
nothing new, set ``sleeping``, full fence, read the doorbell word, read
``head`` once more and ``FUTEX_WAIT`` only while the word is unchanged, then
clear ``sleeping``.  Why no wake-up is lost: :mod:`agnoshm.transport.ring`.
Pacing, acknowledgement and statistics are those of the other latency rows
(:mod:`~agnoshm.bench.latency`).  The memfd has no name: nothing is left in
``/dev/shm``.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import socket
import time

from agnoshm import _libc
from agnoshm.bench import STARTUP_TIMEOUT, Settings, SocketPair, cpu_seconds, summarize
from agnoshm.bench.latency import ACK, MEASURED, WARMUP
from agnoshm.transport.ring import full_fence, load_fence, store_fence

TRANSPORT = "ring-floor"
LABEL = "bare ring: agnoshm's floor"
SLOTS = 8
# Each shared word on its own cache line: the sender's, the receiver's and the kernel's.
HEAD, SLEEPING, DOORBELL, LOG = 0, 64, 128, 192
PAYLOAD = 4096
WAIT_S = 0.2  # a sleeping receiver looks at its deadline this often


class _Descriptor(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint64), ("size", ctypes.c_uint64)]


class _Ring:
    """The shared mapping of ``fd`` and typed views of its words (no buffer exports but one
    memoryview, so that :meth:`close` can unmap)."""

    def __init__(self, fd: int):
        self.map = mmap.mmap(fd, os.fstat(fd).st_size)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.map))  # the export ends here
        self.head = ctypes.c_uint64.from_address(base + HEAD)
        self.sleeping = ctypes.c_uint32.from_address(base + SLEEPING)
        self.doorbell = ctypes.c_uint32.from_address(base + DOORBELL)
        self.log = (_Descriptor * SLOTS).from_address(base + LOG)
        self.stamp = ctypes.c_int64.from_address(base + PAYLOAD + 8)
        self.payload = memoryview(self.map)[PAYLOAD:]
        self.doorbell_address = base + DOORBELL

    def close(self) -> None:
        self.payload.release()
        self.map.close()


class FloorSender:
    """Child side: stamps, writes the descriptor, publishes ``head``, rings a sleeping receiver."""

    def __init__(self, sock: socket.socket, max_size: int):
        self.sock = sock
        self.sock.settimeout(STARTUP_TIMEOUT)
        self.fd = os.memfd_create("agnoshm-bench-ring-floor", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, PAYLOAD + max_size)
        self.ring = _Ring(self.fd)
        self.ring_doorbell = _libc.futex_ringer(self.ring.doorbell_address)
        self.seq = 0
        socket.send_fds(sock, [b"f"], [self.fd])

    def ready(self) -> int:
        return os.getpid()

    def latency(self, size: int, samples: int, warmup: int, interval_s: float) -> None:
        ring, sock, ring_doorbell = self.ring, self.sock, self.ring_doorbell
        payload, stamp, log, head, sleeping = (ring.payload, ring.stamp, ring.log, ring.head,
                                               ring.sleeping)
        seq = self.seq
        for i in range(warmup + samples):
            payload[0] = WARMUP if i < warmup else MEASURED
            payload[size - 1] = i & 0xFF
            stamp.value = time.monotonic_ns()
            seq += 1
            self.seq = seq
            slot = log[seq % SLOTS]
            slot.size = size
            slot.seq = seq
            store_fence()  # the descriptor before head
            head.value = seq
            full_fence()  # head before the load of the receiver's flag
            if sleeping.value:
                ring_doorbell()
            if sock.recv(1) != ACK:
                raise RuntimeError("the receiver closed the acknowledgement socket")
            time.sleep(interval_s)

    def close(self) -> None:
        self.ring.close()
        os.close(self.fd)
        self.sock.close()


class FloorReceiver:
    """Child side: takes each new ``seq`` from the log, sleeping on the futex when there is none."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sock.settimeout(STARTUP_TIMEOUT)
        _msg, fds, _flags, _addr = socket.recv_fds(sock, 1, 1)
        self.fd = fds[0]
        self.ring = _Ring(self.fd)
        self.futex_wait = _libc.futex_waiter(self.ring.doorbell_address)
        self.seen = self.ring.head.value

    def ready(self) -> int:
        return os.getpid()

    def latency(self, total: int, timeout: float) -> dict:
        ring, sock, futex_wait = self.ring, self.sock, self.futex_wait
        payload, stamp, log, head, sleeping, doorbell = (ring.payload, ring.stamp, ring.log,
                                                         ring.head, ring.sleeping, ring.doorbell)
        latencies = []
        received = 0
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        deadline = wall0 + timeout
        while received < total:
            newest = head.value
            if newest == self.seen:
                sleeping.value = 1
                full_fence()  # the flag before the next look at head
                word = doorbell.value
                if head.value == self.seen:
                    futex_wait(word, WAIT_S)
                sleeping.value = 0
                if time.monotonic() > deadline:
                    raise TimeoutError(f"received {received} of {total} messages in "
                                       f"{timeout:.0f} s")
                continue
            load_fence()  # head before the descriptors and the payload
            for seq in range(self.seen + 1, newest + 1):
                slot = log[seq % SLOTS]
                size = slot.size
                if slot.seq != seq:
                    raise RuntimeError(f"descriptor {seq} was overwritten: more than one "
                                       "message was in flight")
                sent = stamp.value
                kind = payload[0]
                payload[size - 1]
                latency = time.monotonic_ns() - sent
                if kind == MEASURED:
                    latencies.append(latency)
                received += 1
                sock.send(ACK)
            self.seen = newest
        return {"latency_ns": latencies,
                "cpu_per_s": (cpu_seconds() - cpu0) / (time.monotonic() - wall0)}

    def close(self) -> None:
        self.ring.close()
        os.close(self.fd)
        self.sock.close()


class FloorPair(SocketPair):
    """A sender and a receiver process of the bare ring, kept for the whole size sweep."""

    def __init__(self, settings: Settings):
        super().__init__(TRANSPORT, settings, FloorSender, (max(settings.sizes),), FloorReceiver)

    def latency(self, size: int) -> dict:
        s = self.settings
        received = self.latency_ns((s.warmup + s.samples, s.command_timeout(size)),
                                   (size, s.samples, s.warmup, s.interval_s), size)
        return {"transport": TRANSPORT, "label": LABEL, "size": size, "interval_s": s.interval_s,
                **summarize(received["latency_ns"]),
                "receiver_cpu_per_s": received["cpu_per_s"]}
