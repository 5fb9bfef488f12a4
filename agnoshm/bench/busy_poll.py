"""The wake-up mode comparison: agnoshm's default futex sleep, its opt-in busy-poll, and
each peer's busy-polling subscriber, with the subscriber's CPU cost.

agnoshm runs the latency test (:mod:`~agnoshm.bench.latency`) at each of
``busy_poll_sizes``, with the usual pause between messages and with none
(ping-pong: the next message comes while the subscriber may still spin),
first with ``AGNOSHM_BUSY_POLL_US=0`` and then with ``busy_poll_us``: the
wake-up loop spins that long looking for work before it sleeps.  Each busy-poll
row is followed by the same row of every installed peer that offers a
busy-polling receiver (``BUSY_POLL``: iceoryx2's subscriber calls
``receive()`` in a loop and never waits on its listener, and its publisher
sends no ``notify()``), so the two are alternated row by row.

A peer's busy poll never sleeps, whatever the pause; agnoshm's spins
``busy_poll_us`` and then sleeps.  Every row has the subscriber process's CPU
time per wall second and per message (``getrusage``, all its threads).
"""

from __future__ import annotations

from agnoshm.bench import BenchError, Settings, peers
from agnoshm.bench.latency import AgnoshmPair

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
    return per_mode * (2 + len(busy_poll_peers()))


def measure_busy_poll(settings: Settings, run_id: str, progress=None,
                      skipped: list | None = None) -> list[dict]:
    """Every row of the comparison (see the module doc); ``progress(row)`` after each.

    :param skipped: gets ``{"transport", "size", "reason"}`` for each peer row that failed
        (the transport named ``"<peer> busy-poll"``).
    """
    rows = []

    def done(row: dict) -> None:
        rows.append(row)
        if progress is not None:
            progress(row)

    def failed(transport: str, sizes, err: BenchError) -> None:
        if skipped is not None:
            skipped.extend({"transport": f"{transport} busy-poll", "size": size,
                            "reason": f"failed: {peers.first_line(err)}"} for size in sizes)

    cases = [(interval_s, size) for interval_s in (settings.interval_s, 0.0)
             for size in settings.busy_poll_sizes]
    pair = AgnoshmPair(settings, {"AGNOSHM_BUSY_POLL_US": "0"})
    try:
        for interval_s, size in cases:
            done({"busy_poll_us": 0, "mode": mode(0), **pair.latency(size, interval_s)})
    finally:
        pair.close()
    pair = AgnoshmPair(settings, {"AGNOSHM_BUSY_POLL_US": str(settings.busy_poll_us)})
    others = {}
    try:
        for transport in busy_poll_peers():
            try:
                others[transport] = peers.PeerPair(transport, settings, f"{run_id}b",
                                                   max_size=max(settings.busy_poll_sizes))
            except BenchError as err:
                failed(transport, settings.busy_poll_sizes, err)
        for interval_s, size in cases:
            done({"busy_poll_us": settings.busy_poll_us, "mode": mode(settings.busy_poll_us),
                  **pair.latency(size, interval_s)})
            for transport, other in list(others.items()):
                try:
                    row = other.latency(size, interval_s, busy_poll=True,
                                        samples=settings.samples)
                except BenchError as err:
                    others.pop(transport).close()
                    failed(transport, [size], err)
                    continue
                done({"busy_poll_us": None, "mode": PEER_MODE, **row})
    finally:
        pair.close()
        for other in others.values():
            other.close()
    return rows
