"""SIGINT and SIGTERM stop agnoshm, as rclpy's signal handlers stop rclpy.

``agnoshm.init()`` (also the implicit one of the first ``Node``) installs a
handler for both signals, as ``rclpy.init()`` does for its default context
(``rclpy/signals.py``, ``src/rclpy/signal_handler.cpp``); ``signal_handler_options``
takes rclpy's values (:class:`SignalHandlerOptions`).  A handled signal:

1. stops agnoshm: :func:`agnoshm.ok` turns False and every executor wakes; a
   spin function returns by raising :class:`ExternalShutdownException`
   (rclpy's ``ExternalShutdownException`` from ``spin``/``spin_once``);
2. then calls the handler it replaced (chaining), unless that was ``SIG_DFL``
   or ``SIG_IGN``, as rclpy does.  For SIGINT that is Python's own, so
   ``KeyboardInterrupt`` is raised in the main thread; SIGTERM no longer kills
   the process: the spin raises and the program ends through its own code.

The process leaves the domain (pool, queue, registry record; the registry too
if it was the last) when the program calls ``agnoshm.shutdown()`` or exits.
``shutdown()`` puts the replaced handlers back.  Handlers are installed only
from the main thread, never over a signal the program ignores (``SIG_IGN``:
``nohup``, a background job, a worker whose parent decides; rclpy would), and
never over rclpy's: those are C handlers that Python does not see, and
replacing them would stop rclpy's shutdown on Ctrl-C.

:func:`held` shields starting and tearing down agnoshm: a SIGINT or SIGTERM
arriving then is held and delivered right after, so no ``KeyboardInterrupt``
leaves a pool or a registry record half removed.  A registry update of the main
thread is shielded too: a signal that interrupts it (or the taking or releasing of
a registry mutex) waits until the main thread holds no registry mutex, then takes
effect (:mod:`agnoshm.registry.lock`), so it never leaves a mutex locked (which
would hang the process at its next registry call) nor shared data half written.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import sys
import threading
import warnings
from typing import Iterator

_SIGNALS = ((signal.SIGINT, 1), (signal.SIGTERM, 2))


class SignalHandlerOptions(enum.IntEnum):
    """Which signal handlers ``agnoshm.init()`` installs (rclpy's names and values)."""

    NO = 0
    SIGINT = 1
    SIGTERM = 2
    ALL = 3


class ExternalShutdownException(Exception):
    """Raised by a spin function when a signal stopped agnoshm (as rclpy's is).

    Catch it with ``KeyboardInterrupt`` around the spin, as ROS 2 programs do:
    ``except (KeyboardInterrupt, agnoshm.ExternalShutdownException): pass``.
    """


_replaced: dict[int, object] = {}  # signum -> the handler ours replaced (and chains to)
_held: list[int] | None = None  # signals that arrived inside held(), main thread only
_saved: dict[int, object] = {}  # inside held(): the handlers held() swapped out
_deferred: list[int] = []  # signals that came inside a registry update, main thread only
#: the directory of agnoshm.registry: a frame of its code on the stack means "in an update"
_REGISTRY_DIR = os.path.join(os.path.dirname(__file__), "registry", "")  # as co_filename


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _rclpy_handles_signals() -> bool:
    rclpy_signals = sys.modules.get("rclpy.signals")
    if rclpy_signals is None:
        return False
    try:
        return int(rclpy_signals.get_current_signal_handlers_options()) != 0
    except Exception:  # noqa: BLE001  an rclpy too old to tell: assume it handles them
        return True


def install_signal_handlers(options: SignalHandlerOptions = SignalHandlerOptions.ALL) -> None:
    """Install agnoshm's handlers for the signals ``options`` names (main thread only:
    elsewhere Python cannot set handlers, and a warning says so)."""
    if _rclpy_handles_signals():
        return
    if not _main_thread():
        if any(options & bit and signum not in _replaced for signum, bit in _SIGNALS):
            warnings.warn(
                f"agnoshm started in thread {threading.current_thread().name!r}, not the main "
                "thread: Python sets signal handlers only there, so Ctrl-C and SIGTERM do not "
                "stop agnoshm; call agnoshm.init() in the main thread first, or pass "
                "signal_handler_options=SignalHandlerOptions.NO and handle signals yourself",
                RuntimeWarning, stacklevel=3)
        return
    for signum, bit in _SIGNALS:
        if options & bit and signum not in _replaced:
            holding = _held is not None and signum in _saved
            current = _saved[signum] if holding else signal.getsignal(signum)
            if current is signal.SIG_IGN:  # the program chose to ignore it: leave it so
                continue
            if holding:
                _replaced[signum], _saved[signum] = current, _handle
            else:
                _replaced[signum] = signal.signal(signum, _handle)


def uninstall_signal_handlers() -> None:
    """Put back the handlers agnoshm's replaced, where agnoshm's are still the current ones.

    Not where rclpy took the signals over after agnoshm: rclpy's C handler sits on top and
    chains to ours (Python does not see it), so ``signal.signal`` would remove rclpy's.
    Ours stays in that chain and only passes the signal on (agnoshm is stopped by then).
    """
    if not _main_thread() or _rclpy_handles_signals():
        return
    for signum, previous in list(_replaced.items()):
        del _replaced[signum]
        if previous is None:  # replaced a handler Python did not install: cannot put it back
            previous = signal.SIG_DFL
        if _held is not None and _saved.get(signum) is _handle:
            _saved[signum] = previous
        elif signal.getsignal(signum) is _handle:
            signal.signal(signum, previous)


def get_current_signal_handlers_options() -> SignalHandlerOptions:
    """Which of agnoshm's handlers are installed."""
    return SignalHandlerOptions(sum(bit for signum, bit in _SIGNALS if signum in _replaced))


def _handle(signum: int, frame) -> None:
    if _held is not None:
        _held.append(signum)
        return
    registry_lock = sys.modules.get("agnoshm.registry.lock")
    if registry_lock is not None and registry_lock.main_depth:
        if _in_registry(frame):  # wait for the update to end (agnoshm.registry.lock)
            _deferred.append(signum)
            registry_lock.on_leave = _deliver_deferred
            return
        registry_lock.main_depth = 0  # a count an exception left behind: no update runs
    from agnoshm import context

    context._stop_by_signal(signum)
    previous = _replaced.get(signum)
    if callable(previous):
        previous(signum, frame)


def _in_registry(frame) -> bool:
    """Whether ``frame`` or a caller of it runs agnoshm.registry's code."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(_REGISTRY_DIR):
            return True
        frame = frame.f_back
    return False


def _deliver_deferred() -> None:
    """The main thread left the registry (its last mutex): deliver the signals that came
    meanwhile, as they would have been then."""
    sys.modules["agnoshm.registry.lock"].on_leave = None
    arrived = dict.fromkeys(_deferred)
    _deferred.clear()
    _deliver(arrived)


def _hold(signum: int, frame) -> None:
    if _held is not None:
        _held.append(signum)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block, then deliver them (main thread; no-op elsewhere).

    Not where rclpy handles signals: swapping handlers would remove rclpy's.
    """
    global _held
    if not _main_thread() or _held is not None or _rclpy_handles_signals():
        yield
        return
    _held = []
    try:
        for signum, _bit in _SIGNALS:
            current = signal.getsignal(signum)
            if current is not None and current is not signal.SIG_IGN:
                _saved[signum] = signal.signal(signum, _hold)
        yield
    finally:
        try:  # no signal is delivered while the handlers go back: _hold only notes it
            for signum, handler in _saved.items():
                signal.signal(signum, handler)
        finally:
            _saved.clear()
            arrived, _held = _held, None
        _deliver(dict.fromkeys(arrived))


def _deliver(signums) -> None:
    """Raise each signal in turn; a handler's exception (``KeyboardInterrupt``) is raised
    once every signal has been delivered, so a SIGTERM after a SIGINT is not lost."""
    first: BaseException | None = None
    for signum in signums:
        try:
            signal.raise_signal(signum)
        except BaseException as err:  # noqa: BLE001  re-raised below
            first = first or err
    if first is not None:
        raise first
