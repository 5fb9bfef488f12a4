"""The wake-up mode comparison: agnoshm's default futex sleep, its opt-in busy-poll on
both message paths, and each peer's busy-polling subscriber, with the subscriber's
CPU cost.

agnoshm runs the latency test (:mod:`~agnoshm.bench.latency`) at each of
``busy_poll_sizes``, with the usual pause between messages and with none
(ping-pong: the next message comes while the subscriber may still spin),
first with ``AGNOSHM_BUSY_POLL_US=0`` and then with ``busy_poll_us``: the
wake-up loop spins that long looking for work before it sleeps.  Each busy-poll
row of the pure-Python path (``AGNOSHM_NATIVE=0``, the reference) is followed
by the same row on the native path (``AGNOSHM_NATIVE=1``, :data:`NATIVE`;
skipped with the reason when ``agnoshm._native`` is not built), then by the
same row of every installed peer that offers a busy-polling receiver
(``BUSY_POLL``: iceoryx2's subscriber calls ``receive()`` in a loop and never
waits on its listener, and its publisher sends no ``notify()``), so they are
alternated row by row.

A peer's busy poll never sleeps, whatever the pause; agnoshm's spins
``busy_poll_us`` and then sleeps.  Every row has the subscriber process's CPU
time per wall second and per message (``getrusage``, all its threads).
"""

from __future__ import annotations

from typing import Callable

from agnoshm.bench import BenchError, Settings, peers
from agnoshm.bench.latency import NATIVE, AgnoshmPair
from agnoshm.bench.sweep import native_missing

PEER_MODE = "busy-poll, receive() in a loop"


def busy_poll_peers() -> list[str]:
    """Installed peers that offer a busy-polling receiver, in :data:`~agnoshm.bench.peers.PEERS`
    order."""
    return [t for t in peers.PEERS if peers.availability(t) is None
            and getattr(peers.peer_module(t), "BUSY_POLL", False)]


def mode(busy_poll_us: int) -> str:
    """How a row's agnoshm subscriber waits: ``default`` or ``busy-poll 100 us``."""
    return f"busy-poll {busy_poll_us} us" if busy_poll_us else "default"


def steps(settings: Settings) -> int:
    """Rows :func:`measure_busy_poll` makes (for the progress bar)."""
    per_mode = 2 * len(settings.busy_poll_sizes)  # with and without the pause
    native = native_missing() is None
    return per_mode * (2 + native + len(busy_poll_peers()))


def measure_busy_poll(settings: Settings, run_id: str, progress=None,
                      skipped: list | None = None) -> list[dict]:
    """Every row of the comparison (see the module doc); ``progress(row)`` after each.

    :param skipped: gets ``{"transport", "size", "reason"}`` for each size of the native path
        or of a peer that was not measured: the transport named ``"<name> busy-poll"``, the
        reason the extension's absence or ``failed: <first line of the error>``.
    """
    rows = []

    def done(row: dict) -> None:
        rows.append(row)
        if progress is not None:
            progress(row)

    def left_out(transport: str, sizes, reason: str) -> None:
        if skipped is not None:
            skipped.extend({"transport": f"{transport} busy-poll", "size": size,
                            "reason": reason} for size in sizes)

    cases = [(interval_s, size) for interval_s in (settings.interval_s, 0.0)
             for size in settings.busy_poll_sizes]
    pair = AgnoshmPair(settings, {"AGNOSHM_BUSY_POLL_US": "0"})
    try:
        for interval_s, size in cases:
            done({"busy_poll_us": 0, "mode": mode(0), **pair.latency(size, interval_s)})
    finally:
        pair.close()
    spin = {"AGNOSHM_BUSY_POLL_US": str(settings.busy_poll_us)}
    pair = AgnoshmPair(settings, spin)
    optional: dict[str, AgnoshmPair | peers.PeerPair] = {}  # transport -> pair, in row order
    lanes: dict[str, Callable[[int, float], dict]] = {}
    try:
        missing = native_missing()
        if missing is not None:
            left_out(NATIVE, settings.busy_poll_sizes, missing)
        else:
            try:
                optional[NATIVE] = AgnoshmPair(settings, spin, native=True)
            except BenchError as err:
                left_out(NATIVE, settings.busy_poll_sizes, f"failed: {peers.first_line(err)}")
        for transport in busy_poll_peers():
            try:
                optional[transport] = peers.PeerPair(transport, settings, f"{run_id}b",
                                                     max_size=max(settings.busy_poll_sizes))
            except BenchError as err:
                left_out(transport, settings.busy_poll_sizes, f"failed: {peers.first_line(err)}")
        for transport, other in optional.items():
            lanes[transport] = (_spinning(other, settings.busy_poll_us) if transport == NATIVE
                                else _polling(other, settings.samples))
        pure = _spinning(pair, settings.busy_poll_us)
        for interval_s, size in cases:
            done(pure(size, interval_s))
            for transport, latency in list(lanes.items()):
                try:
                    row = latency(size, interval_s)
                except BenchError as err:
                    del lanes[transport]
                    optional.pop(transport).close()
                    left_out(transport, [size], f"failed: {peers.first_line(err)}")
                    continue
                done(row)
    finally:
        pair.close()
        for other in optional.values():
            other.close()
    return rows


def _spinning(pair: AgnoshmPair, busy_poll_us: int) -> Callable[[int, float], dict]:
    """One busy-poll row of an agnoshm path (the pair's transport names it) whose subscriber
    runs with ``AGNOSHM_BUSY_POLL_US=busy_poll_us``."""
    return lambda size, interval_s: {"busy_poll_us": busy_poll_us, "mode": mode(busy_poll_us),
                                     **pair.latency(size, interval_s)}


def _polling(pair, samples: int) -> Callable[[int, float], dict]:
    """One row of a peer's busy-polling receiver."""
    return lambda size, interval_s: {"busy_poll_us": None, "mode": PEER_MODE,
                                     **pair.latency(size, interval_s, busy_poll=True,
                                                    samples=samples)}
