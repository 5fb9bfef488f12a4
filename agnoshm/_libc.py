"""ctypes bindings of the libc calls agnoshm needs: a signature table and one loader.

Nothing else in agnoshm loads a library. Every binding has an explicit
``restype`` and an ``errcheck`` named after its C error convention, which turns
``errno`` into ``OSError(errno, strerror, <object name>)`` so callers receive
the right built-in subclass (``FileExistsError``, ``PermissionError``...) with
the object named.  ``EINTR`` from a futex or queue wait counts as a spurious wake-up (callers
loop on their condition); ``os`` calls retry it themselves (PEP 475).

Calls that can block (``pthread_mutex_lock``, ``futex`` waits,
``mq_timedreceive``) go through ctypes' foreign-call path, which releases the
GIL, so other Python threads keep running while one waits.

Linux x86_64 and aarch64 with glibc >= 2.34 (mq_* and pthread_* live in libc).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
from ctypes import (
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_long,
    c_size_t,
    c_ssize_t,
    c_uint,
    c_uint32,
    c_void_p,
)

# <sys/mman.h>
PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_NORESERVE = 0x4000
MAP_FIXED_NOREPLACE = 0x100000
MAP_FAILED = ctypes.c_void_p(-1).value
MADV_DONTNEED = 4

# <fcntl.h>, <linux/memfd.h>
MFD_CLOEXEC = 0x0001
MFD_ALLOW_SEALING = 0x0002
F_ADD_SEALS = 1033
F_GET_SEALS = 1034
F_SEAL_SEAL = 0x0001
F_SEAL_SHRINK = 0x0002
F_SEAL_GROW = 0x0004
F_SEAL_WRITE = 0x0008
F_SEAL_FUTURE_WRITE = 0x0010

# <pthread.h>
PTHREAD_PROCESS_SHARED = 1
PTHREAD_MUTEX_ROBUST = 1
PTHREAD_MUTEX_ERRORCHECK = 2
# glibc's sizes differ per architecture (bits/pthreadtypes-arch.h): 40 and 4 on x86-64,
# 48 and 8 on aarch64, where pthread_mutex_init clears all 48 bytes
SIZEOF_PTHREAD_MUTEX_T = {"aarch64": 48}.get(platform.machine(), 40)
SIZEOF_PTHREAD_MUTEXATTR_T = {"aarch64": 8}.get(platform.machine(), 4)

# <linux/futex.h>
FUTEX_WAIT = 0
FUTEX_WAKE = 1
FUTEX_WAKE_OP = 5
FUTEX_OP_SET = 0
FUTEX_OP_ADD = 1
FUTEX_OP_CMP_EQ = 0
SYS_futex = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
INT_MAX = 0x7FFFFFFF


class timespec(Structure):
    """``struct timespec { time_t tv_sec; long tv_nsec; };``"""

    _fields_ = [("tv_sec", c_long), ("tv_nsec", c_long)]


class mq_attr(Structure):
    """``struct mq_attr { long mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs; long __pad[4]; };``"""

    _fields_ = [
        ("mq_flags", c_long),
        ("mq_maxmsg", c_long),
        ("mq_msgsize", c_long),
        ("mq_curmsgs", c_long),
        ("_pad", c_long * 4),
    ]


def _check_minus_one(result, func, args):
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), _object_name(func, args))
    return result


def _check_map_failed(result, func, args):
    if result is None or result == MAP_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), _object_name(func, args))
    return result


def _check_errno_return(result, func, args):
    """pthread functions return the error number instead of setting errno."""
    if result != 0 and result != errno.EOWNERDEAD:
        raise OSError(result, os.strerror(result), func.__name__)
    return result


def _object_name(func, args) -> str:
    if args and isinstance(args[0], bytes):
        return f"{func.__name__}({args[0].decode(errors='replace')})"
    if args and isinstance(args[0], int) and func.__name__ in ("mmap", "munmap", "mprotect"):
        return f"{func.__name__}(0x{args[0]:x})"
    return func.__name__


_SIGNATURES = {
    # name: (argtypes, restype, errcheck)
    "shm_open": ([c_char_p, c_int, c_uint], c_int, _check_minus_one),
    "shm_unlink": ([c_char_p], c_int, _check_minus_one),
    "mmap": ([c_void_p, c_size_t, c_int, c_int, c_int, ctypes.c_int64], c_void_p, _check_map_failed),
    "munmap": ([c_void_p, c_size_t], c_int, _check_minus_one),
    "mprotect": ([c_void_p, c_size_t, c_int], c_int, _check_minus_one),
    "madvise": ([c_void_p, c_size_t, c_int], c_int, _check_minus_one),
    "memfd_create": ([c_char_p, c_uint], c_int, _check_minus_one),
    "mq_open": ([c_char_p, c_int, c_uint, POINTER(mq_attr)], c_int, _check_minus_one),
    "mq_close": ([c_int], c_int, _check_minus_one),
    "mq_unlink": ([c_char_p], c_int, _check_minus_one),
    "mq_send": ([c_int, c_char_p, c_size_t, c_uint], c_int, _check_minus_one),
    "mq_timedreceive": (
        [c_int, c_char_p, c_size_t, POINTER(c_uint), POINTER(timespec)],
        c_ssize_t,
        _check_minus_one,
    ),
    "mq_getattr": ([c_int, POINTER(mq_attr)], c_int, _check_minus_one),
    "pthread_mutexattr_init": ([c_void_p], c_int, _check_errno_return),
    "pthread_mutexattr_setpshared": ([c_void_p, c_int], c_int, _check_errno_return),
    "pthread_mutexattr_setrobust": ([c_void_p, c_int], c_int, _check_errno_return),
    "pthread_mutexattr_settype": ([c_void_p, c_int], c_int, _check_errno_return),
    "pthread_mutexattr_destroy": ([c_void_p], c_int, _check_errno_return),
    "pthread_mutex_init": ([c_void_p, c_void_p], c_int, _check_errno_return),
    "pthread_mutex_lock": ([c_void_p], c_int, _check_errno_return),
    "pthread_mutex_trylock": ([c_void_p], c_int, None),
    "pthread_mutex_unlock": ([c_void_p], c_int, _check_errno_return),
    "pthread_mutex_consistent": ([c_void_p], c_int, _check_errno_return),
}


def _load(signatures: dict):
    try:
        lib = ctypes.CDLL(None, use_errno=True)
        for name, (argtypes, restype, errcheck) in signatures.items():
            func = getattr(lib, name)
            if argtypes is not None:
                func.argtypes = argtypes
            func.restype = restype
            if errcheck is not None:
                func.errcheck = errcheck
    except (OSError, AttributeError) as err:
        raise ImportError(
            f"agnoshm needs Linux with glibc >= 2.34 (shm_open, mq_*, robust pthread mutexes in libc): {err}"
        ) from err
    return lib


libc = _load(_SIGNATURES)

shm_open = libc.shm_open
shm_unlink = libc.shm_unlink
mmap = libc.mmap
munmap = libc.munmap
mprotect = libc.mprotect
madvise = libc.madvise
memfd_create = libc.memfd_create
mq_open = libc.mq_open
mq_close = libc.mq_close
mq_unlink = libc.mq_unlink
mq_send = libc.mq_send
mq_getattr = libc.mq_getattr
pthread_mutexattr_init = libc.pthread_mutexattr_init
pthread_mutexattr_setpshared = libc.pthread_mutexattr_setpshared
pthread_mutexattr_setrobust = libc.pthread_mutexattr_setrobust
pthread_mutexattr_settype = libc.pthread_mutexattr_settype
pthread_mutexattr_destroy = libc.pthread_mutexattr_destroy
pthread_mutex_init = libc.pthread_mutex_init
pthread_mutex_lock = libc.pthread_mutex_lock
pthread_mutex_trylock = libc.pthread_mutex_trylock
pthread_mutex_unlock = libc.pthread_mutex_unlock
pthread_mutex_consistent = libc.pthread_mutex_consistent


def mq_timedreceive(mqd: int, buf, size: int, timeout_sec: float) -> int:
    """Receive one message, waiting at most ``timeout_sec``; return its length or -1 on timeout."""
    deadline = _realtime_deadline(timeout_sec)
    try:
        return libc.mq_timedreceive(mqd, buf, size, None, ctypes.byref(deadline))
    except OSError as err:
        if err.errno in (errno.ETIMEDOUT, errno.EINTR, errno.EAGAIN):
            return -1
        raise


def _realtime_deadline(timeout_sec: float) -> timespec:
    import time

    t = time.clock_gettime_ns(time.CLOCK_REALTIME) + int(timeout_sec * 1e9)
    return timespec(t // 1_000_000_000, t % 1_000_000_000)


_WAKE_OP_ADD_ONE = (FUTEX_OP_ADD << 28) | (FUTEX_OP_CMP_EQ << 24) | (1 << 12) | 0


# Prototyped entry points of syscall(2) for the futex calls: ctypes converts plain
# ints in C, where a variadic call would need a ctypes object per argument.
# syscall() is an assembly stub that reads its arguments from the integer
# registers, so a fixed prototype calls it exactly as the variadic one does.
_futex_wait_call = ctypes.CFUNCTYPE(c_long, c_long, c_void_p, c_int, c_uint32, POINTER(timespec),
                                    c_void_p, c_int, use_errno=True)(("syscall", libc))
_futex_wake_op_call = ctypes.CFUNCTYPE(c_long, c_long, c_void_p, c_int, c_int, c_void_p, c_void_p,
                                       c_int, use_errno=True)(("syscall", libc))


def futex_ringer(address: int):
    """Return a no-argument callable that atomically adds one to the shared 32-bit word at
    ``address`` and wakes all its waiters.

    One ``FUTEX_WAKE_OP`` call: the kernel does the atomic add, so publishers in
    different processes never lose an increment, and waiters comparing the word
    before sleeping can never miss a ring.
    """
    return functools.partial(_futex_wake_op_call, SYS_futex, address, FUTEX_WAKE_OP, INT_MAX,
                             None, address, _WAKE_OP_ADD_ONE)


def futex_setter(address: int, value: int):
    """Return a no-argument callable that atomically stores ``value`` (< 4096) at ``address``.

    A ``FUTEX_WAKE_OP`` that wakes nobody: the kernel's atomic operation is a full
    memory barrier, which plain ctypes stores are not (a later load may pass them).
    """
    op = (FUTEX_OP_SET << 28) | (FUTEX_OP_CMP_EQ << 24) | (value << 12)
    return functools.partial(_futex_wake_op_call, SYS_futex, address, FUTEX_WAKE_OP, 0,
                             None, address, op)


def futex_waiter(address: int):
    """Return ``wait(expected, timeout_sec)``: sleep while the shared 32-bit word at
    ``address`` equals ``expected``, until ``timeout_sec`` (None: no limit), or spuriously."""
    call = functools.partial(_futex_wait_call, SYS_futex, address, FUTEX_WAIT)
    get_errno = ctypes.get_errno

    def wait(expected: int, timeout_sec: float | None) -> None:
        if timeout_sec is None:
            r = call(expected, None, None, 0)
        else:
            ns = max(0, int(timeout_sec * 1e9))
            r = call(expected, timespec(ns // 1_000_000_000, ns % 1_000_000_000), None, 0)
        if r == -1:
            err = get_errno()
            if err not in (errno.EAGAIN, errno.ETIMEDOUT, errno.EINTR):
                raise OSError(err, os.strerror(err), "futex(FUTEX_WAIT)")
    return wait


# Non-blocking pthread calls made *without* releasing the GIL (``ctypes.PyDLL``):
# dropping and retaking the GIL costs more than the call itself and invites a
# thread switch in the middle of a registry update.  Blocking waits stay on ``libc``.
_gil_holding = ctypes.PyDLL(None)
_trylock_at = _gil_holding.pthread_mutex_trylock  # no argtypes: called with a c_void_p
_trylock_at.restype = c_int
_unlock_at = _gil_holding.pthread_mutex_unlock
_unlock_at.restype = c_int


def mutex_trylocker(address: int):
    """A no-argument ``pthread_mutex_trylock`` of ``address``: 0, ``EBUSY`` or ``EOWNERDEAD``
    (the GIL stays held; bound once, for a lock taken very often)."""
    return functools.partial(_trylock_at, c_void_p(address))


def mutex_unlocker(address: int):
    """A no-argument ``pthread_mutex_unlock`` of ``address`` returning its result (0: done)."""
    return functools.partial(_unlock_at, c_void_p(address))


def fallocate(fd: int, offset: int, length: int) -> bool:
    """Back ``[offset, offset + length)`` of ``fd`` with pages now (``posix_fallocate``).

    Return False when the filesystem (for /dev/shm and memfd: RAM) has no room;
    any other error raises.  A page of a sparse shm object first touched with no
    room left is a SIGBUS, so memory that will be touched is committed this way.
    """
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.ENOMEM):
            return False
        raise
    return True

