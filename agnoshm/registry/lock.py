"""Robust, process-shared mutexes living inside the registry.

A process that dies holding one (SIGKILL at any instruction) does not wedge
the others: the next locker gets ``EOWNERDEAD``, runs the repair it was given,
marks the mutex consistent and carries on.

A signal in the main thread must not wedge its own process either.  Python runs a
signal handler between two bytecodes of the main thread, and one that raises
(``KeyboardInterrupt``) inside a registry update leaves the data half written, or
the mutex locked for good when it lands between the lock call and the ``with``
taking over (``__enter__`` had not returned: no ``__exit__``); the process's next
registry call then fails with ``EDEADLK`` and its other threads block forever.  So
the main thread counts the registry mutexes it holds, takes or releases in
:data:`main_depth`, from before the lock call to after the unlock, and agnoshm's
handler (:mod:`agnoshm.signals`), finding it non-zero, only notes the signal and
sets :data:`on_leave`: the release that brings the count back to zero calls it,
and the signal takes effect there, outside the update.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from typing import Callable

from agnoshm import _libc


def initialize_mutex(address: int) -> None:
    """Initialize the ``pthread_mutex_t`` at ``address`` as robust, process-shared, error-checking.

    **Safety:** ``address`` must point at 40 writable bytes of shared memory
    that no process uses as a mutex yet.
    """
    attr = ctypes.create_string_buffer(_libc.SIZEOF_PTHREAD_MUTEXATTR_T)
    _libc.pthread_mutexattr_init(attr)
    try:
        _libc.pthread_mutexattr_setpshared(attr, _libc.PTHREAD_PROCESS_SHARED)
        _libc.pthread_mutexattr_setrobust(attr, _libc.PTHREAD_MUTEX_ROBUST)
        _libc.pthread_mutexattr_settype(attr, _libc.PTHREAD_MUTEX_ERRORCHECK)
        _libc.pthread_mutex_init(address, attr)
    finally:
        _libc.pthread_mutexattr_destroy(attr)


#: Busy tries before a contended ``acquire`` sleeps in the kernel.  Critical sections
#: are a few to a few tens of microseconds, and a sleep plus wake-up costs more than
#: that on a VM; about 150 us of spinning doubled cross-process throughput here.
SPIN_TRIES = 1000

#: registry mutexes the main thread holds, or is taking or releasing (see the module doc)
main_depth = 0
#: set by :mod:`agnoshm.signals` while a signal waits for :data:`main_depth` to reach zero;
#: the release that gets it there calls it (and raises what the signal's handler raises)
on_leave: Callable[[], None] | None = None
_main_ident = threading.main_thread().ident
_get_ident = threading.get_ident


def _after_fork_in_child() -> None:
    global main_depth, on_leave, _main_ident
    main_depth, on_leave, _main_ident = 0, None, threading.get_ident()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _main_left() -> None:
    """The main thread left a mutex it took (or failed to take): deliver waiting signals
    once it holds none."""
    global main_depth
    main_depth -= 1
    if not main_depth and on_leave is not None:
        on_leave()


class RobustLock:
    """A context manager over one robust mutex in shared memory.

    :param address: address of the ``pthread_mutex_t``.
    :param repair: called with the lock held when the previous owner died
        holding it; it must leave the protected data consistent.
    """

    __slots__ = ("address", "_repair", "_trylock", "_unlock", "owner")

    def __init__(self, address: int, repair: Callable[[], None]):
        self.address = address
        self._repair = repair
        self._trylock = _libc.mutex_trylocker(address)  # keeps the GIL: no round trip
        self._unlock = _libc.mutex_unlocker(address)
        self.owner = 0  # ident of the thread of this process holding it, 0: none

    def acquire(self) -> None:
        self.__enter__()

    def _acquire_contended(self, result: int) -> None:
        if result == errno.EBUSY:
            trylock = self._trylock
            for _ in range(SPIN_TRIES):
                result = trylock()
                if result != errno.EBUSY:
                    break
        if result != 0 and result != errno.EOWNERDEAD:
            # busy: wait with the GIL released (and raise what a broken mutex reports)
            result = _libc.pthread_mutex_lock(self.address)
        if result == errno.EOWNERDEAD:
            try:
                self._repair()
            except BaseException:
                # A repair that fails (a corrupted registry) must not leave the lock
                # taken by a live process: everyone else would wait forever.
                _libc.pthread_mutex_consistent(self.address)
                _libc.pthread_mutex_unlock(self.address)
                raise
            _libc.pthread_mutex_consistent(self.address)

    def held_here(self) -> bool:
        """Whether the calling thread holds it (a release run by the garbage collector
        inside a registry update must not lock again)."""
        return self.owner == threading.get_ident()

    def release(self, *_exc) -> None:
        global main_depth
        owner, self.owner = self.owner, 0
        result = self._unlock()
        if owner == _main_ident:  # _main_left(), inlined: no call between unlock and count
            main_depth -= 1
            if not main_depth and on_leave is not None:
                on_leave()  # a signal came during the update: it takes effect now (may raise)
        if result:
            raise OSError(result, os.strerror(result), "pthread_mutex_unlock")

    def __enter__(self) -> "RobustLock":
        global main_depth
        ident = _get_ident()
        if ident == _main_ident:
            main_depth += 1  # before the lock call: a signal from here on waits for release()
        result = self._trylock()  # every registry operation passes here
        if result:
            try:
                self._acquire_contended(result)
            except BaseException:  # not taken (a broken mutex, a failed repair)
                if ident == _main_ident:
                    _main_left()
                raise
        self.owner = ident
        return self

    __exit__ = release
