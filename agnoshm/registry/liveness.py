"""Is a registered process alive?  Daemonless and SIGKILL-proof.

Each live process holds an open-file-description (OFD) write lock on one byte
of the registry object (``LIVENESS_LOCK_BASE + slot``) for its whole life.
The kernel drops the lock when the last descriptor of that file description
closes, which death by any signal does.  The lock alone is not enough (a
``fork()`` child shares the description), so a process is alive only if its
lock is held *and* ``/proc/<pid>/stat`` shows the start time recorded at join,
which also rules out a reused pid.
"""

from __future__ import annotations

import fcntl
import os
import struct

from agnoshm.registry.layout import LIVENESS_LOCK_BASE

_FLOCK = "hhqqi4x"  # struct flock { short l_type, l_whence; off_t l_start, l_len; pid_t l_pid; }


def _flock(lock_type: int, offset: int) -> bytes:
    return struct.pack(_FLOCK, lock_type, os.SEEK_SET, offset, 1, 0)


def try_lock_byte(fd: int, offset: int) -> bool:
    """Take an OFD write lock on one byte; return False if another description holds it."""
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock(fcntl.F_WRLCK, offset))
        return True
    except (BlockingIOError, PermissionError):
        return False


def lock_byte_blocking(fd: int, offset: int, lock_type: int = fcntl.F_WRLCK) -> None:
    """Take an OFD lock on one byte, waiting for it."""
    while True:
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, _flock(lock_type, offset))
            return
        except InterruptedError:
            continue


def unlock_byte(fd: int, offset: int) -> None:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock(fcntl.F_UNLCK, offset))


def byte_is_locked(fd: int, offset: int) -> bool:
    """Return True if some other open file description holds a lock on the byte."""
    result = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock(fcntl.F_WRLCK, offset))
    return struct.unpack(_FLOCK, result)[0] != fcntl.F_UNLCK


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[19])  # field 22 overall


def pid_matches(pid: int, start_time: int) -> bool:
    """Return True if ``pid`` runs and is the process that started at ``start_time``."""
    return process_start_time(pid) == start_time


def is_alive(fd: int, slot: int, pid: int, start_time: int) -> bool:
    """The liveness rule: the process registered in ``slot`` of the registry open at ``fd``
    (as ``pid``, started at ``start_time``) runs.

    Its liveness byte is locked by another open file description, and ``pid`` is
    still the process that started then (a ``fork()`` child shares the lock; a
    reused pid has another start time).
    """
    return byte_is_locked(fd, LIVENESS_LOCK_BASE + slot) and pid_matches(pid, start_time)


def open_by(pid: int) -> set[str] | None:
    """What the running process ``pid`` has open (``/proc/<pid>/fd`` link targets).

    An empty set if no process has that pid; None if it runs but its descriptors
    cannot be read (another user's process, seen without privileges).
    """
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return set()
    except PermissionError:
        return None
    targets = set()
    for fd in fds:
        try:
            targets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile
            pass
    return targets
