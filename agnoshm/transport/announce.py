"""``/new_publisher@<pid>``: the POSIX message queue that tells a process to map a new pool.

Each process owns one queue (read side).  A new publisher sends one short
record ``(pid, slot, incarnation)`` to every process subscribed to its topic;
that process's listener maps the pool read-only.  Sends never block: with
Linux's default ``msg_max = 10`` a full queue simply drops the record, which
loses nothing because the registry stays the source of truth and a receive
maps any pool it finds unmapped (checked against the slot's incarnation).
Queues are small (``MAX_MESSAGES`` x ``MESSAGE_SIZE``), so hundreds of
processes fit in the default ``RLIMIT_MSGQUEUE`` of 800 KiB.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from agnoshm import _libc
from agnoshm.errors import LimitReachedError
from agnoshm.names import queue_name

MAX_MESSAGES = 8
MESSAGE_SIZE = 64
_RECORD = struct.Struct("<iiQ")  # pid, slot, incarnation


class AnnouncementQueue:
    """The read side of this process's queue."""

    _mqd = -1

    def __init__(self, pid: int, mode: int = 0o600):
        self.name = queue_name(pid)
        attr = _libc.mq_attr(mq_flags=0, mq_maxmsg=MAX_MESSAGES, mq_msgsize=MESSAGE_SIZE)
        flags = os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            self._mqd = _libc.mq_open(self.name.encode(), flags, mode, ctypes.byref(attr))
        except FileExistsError:
            # a dead process with our pid left it; it is ours now
            _libc.mq_unlink(self.name.encode())
            self._mqd = _libc.mq_open(self.name.encode(), flags, mode, ctypes.byref(attr))
        except OSError as err:
            if err.errno in (errno.EMFILE, errno.ENOSPC, errno.ENOMEM):
                raise LimitReachedError(
                    f"cannot create message queue {self.name} ({os.strerror(err.errno)}): the "
                    "per-user queue memory limit RLIMIT_MSGQUEUE or the system-wide "
                    "fs.mqueue.queues_max is used up; raise the first with `ulimit -q` "
                    "(LimitMSGQUEUE= in a systemd unit) or the second with "
                    "`sysctl fs.mqueue.queues_max=<n>`, and run `agnoshm clean` to remove "
                    "queues that dead processes left") from err
            raise
        self._buffer = ctypes.create_string_buffer(MESSAGE_SIZE)

    def fileno(self) -> int:
        return self._mqd

    def receive_all(self) -> list[tuple[int, int, int]]:
        """Drain the queue; return the ``(pid, slot, incarnation)`` records, ignoring garbage."""
        records = []
        while True:
            n = _libc.mq_timedreceive(self._mqd, self._buffer, MESSAGE_SIZE, 0.0)
            if n < 0:
                return records
            if n == _RECORD.size:
                records.append(_RECORD.unpack(self._buffer.raw[:n]))

    def close(self, unlink: bool = True) -> None:
        if self._mqd >= 0:
            _libc.mq_close(self._mqd)
            self._mqd = -1
            if unlink:
                try:
                    _libc.mq_unlink(self.name.encode())
                except FileNotFoundError:
                    pass


def announce(to_pid: int, pid: int, slot: int, incarnation: int) -> bool:
    """Tell ``to_pid`` that the pool in ``slot`` carries a new publisher; False if not delivered."""
    try:
        mqd = _libc.mq_open(queue_name(to_pid).encode(), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC,
                            0, None)
    except OSError:
        return False  # gone or not ours to write: the registry still tells it
    try:
        _libc.mq_send(mqd, _RECORD.pack(pid, slot, incarnation), _RECORD.size, 0)
        return True
    except OSError:
        return False  # full: the receiver maps the pool when it first receives from it
    finally:
        _libc.mq_close(mqd)
