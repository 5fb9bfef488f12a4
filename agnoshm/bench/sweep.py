"""The latency sweep: agnoshm's two paths, iceoryx2, the floors and the copy baselines,
measured size by size, so that each size's rows meet the same drift of a busy machine.

At each size, in this order (a *lane* each):

* ``agnoshm``: the pure-Python path (``AGNOSHM_NATIVE=0``), the reference;
* ``agnoshm-native``: the C message path (``AGNOSHM_NATIVE=1``), skipped with the
  reason when ``agnoshm._native`` is not built;
* ``iceoryx2`` (:data:`ALTERNATED`), the peer both paths are judged against, where
  installed;
* the floors: ``ring-floor`` (:mod:`~agnoshm.bench.floor`, agnoshm's ring in pure Python)
  and ``c-floor`` (:mod:`~agnoshm.bench.c_floor`, a futex ping-pong between two C
  processes, skipped when no C compiler is found);
* the copy baselines (:mod:`~agnoshm.bench.baselines`).

An optional lane (the native path, iceoryx2, the C floor) that cannot start, or fails at
one size, is reported and left out from then on; the run goes on.  The other peers
follow the sweep, each over every size (:func:`agnoshm.bench.peers.measure_peer`).
"""

from __future__ import annotations

from typing import Callable

from agnoshm.bench import BenchError, Settings, c_floor, floor, peers
from agnoshm.bench.baselines import TRANSPORTS, CopyPair
from agnoshm.bench.latency import NATIVE, AgnoshmPair

ALTERNATED = "iceoryx2"


def native_missing() -> str | None:
    """Why agnoshm's native rows cannot be measured here (None: they can)."""
    from agnoshm import _native

    if _native.MISSING is None:
        return None
    return (f"agnoshm's native extension agnoshm._native._ring is not built ({_native.MISSING}); "
            "install a C compiler and the Python headers and reinstall agnoshm")


def lanes_per_size() -> int:
    """Lanes a size may have (for the progress bar; a lane that is skipped is counted off)."""
    return 4 + len(TRANSPORTS) + (peers.availability(ALTERNATED) is None)


class Sweep:
    """Every lane's processes, started at once and kept for the whole sweep.

    :attr:`agnoshm` and :attr:`native` (None when skipped) stay open after :meth:`close_lanes`
    for the throughput and fan-out runs; :meth:`close` ends everything.
    """

    def __init__(self, settings: Settings, run_id: str):
        self.settings = settings
        self.statuses: dict[str, dict] = {}  # transport -> its status row for the JSON
        self.skipped: list[dict] = []  # {"transport", "size", "reason"} per size left out
        self.native: AgnoshmPair | None = None
        self._closing: list = []
        self._lanes: dict[str, Callable[[int], dict]] = {}
        try:
            self._start(settings, run_id)
        except BaseException:
            self.close()
            raise

    def _start(self, settings: Settings, run_id: str) -> None:
        self.agnoshm = self._keep(AgnoshmPair(settings))
        self._lanes["agnoshm"] = self.agnoshm.latency
        missing = native_missing()
        if missing is None:
            self.native = self._optional(NATIVE, lambda: AgnoshmPair(settings, native=True))
        else:
            self.statuses[NATIVE] = {"transport": NATIVE, "status": "skipped", "reason": missing}
        if self.native is not None:
            self._lanes[NATIVE] = self.native.latency
        self._start_alternated(settings, run_id)
        ring = self._keep(floor.FloorPair(settings))
        self._lanes[floor.TRANSPORT] = ring.latency
        program = self._keep(c_floor.CFloor(settings))
        if program.missing is None:
            self._lanes[c_floor.TRANSPORT] = program.latency
        else:
            self.statuses[c_floor.TRANSPORT] = {"transport": c_floor.TRANSPORT,
                                                "status": "skipped", "reason": program.missing}
        copies = self._keep(CopyPair(settings))
        for transport in TRANSPORTS:
            self._lanes[transport] = lambda size, t=transport: copies.latency(t, size)

    def _start_alternated(self, settings: Settings, run_id: str) -> None:
        missing = peers.availability(ALTERNATED)
        if missing is not None:
            self.statuses[ALTERNATED] = missing
            return
        limit = peers.peer_module(ALTERNATED).size_limit
        self.skipped += [{"transport": ALTERNATED, "size": size, "reason": limit(size)}
                         for size in settings.sizes if limit(size) is not None]
        pair = self._optional(ALTERNATED, lambda: peers.PeerPair(ALTERNATED, settings, run_id))
        if pair is not None:
            self._lanes[ALTERNATED] = lambda size: (pair.latency(size) if limit(size) is None
                                                    else None)

    def _keep(self, pair):
        self._closing.append(pair)
        return pair

    def _optional(self, transport: str, start: Callable):
        """``start()``'s pair, or None with the transport's status saying why it failed."""
        try:
            return self._keep(start())
        except BenchError as err:
            self.statuses[transport] = {"transport": transport, "status": "skipped",
                                        "reason": f"failed: {peers.first_line(err)}"}
            return None

    def lanes(self) -> list[str]:
        """The transports still measured, in their order at each size."""
        return list(self._lanes)

    def measure(self, size: int, start: Callable[[str], None],
                done: Callable[[dict], None]) -> int:
        """Measure every lane at ``size``: ``start(transport)`` ahead of each, ``done(row)``
        after each.  A failing optional lane is dropped with its status; agnoshm's pure path
        and the pure-Python baselines raise :class:`BenchError`.

        :return: how many rows were measured.
        """
        count = 0
        for transport, latency in list(self._lanes.items()):
            start(transport)
            try:
                row = latency(size)
            except BenchError as err:
                if transport not in (NATIVE, ALTERNATED, c_floor.TRANSPORT):
                    raise
                del self._lanes[transport]
                self.statuses[transport] = {"transport": transport, "status": "failed",
                                            "reason": peers.first_line(err)}
                continue
            if row is not None:
                done(row)
                count += 1
        return count

    def status_rows(self) -> list[dict]:
        """Each lane's status for the JSON's ``transports``, in lane order."""
        rows = []
        for transport in ("agnoshm", NATIVE, ALTERNATED, floor.TRANSPORT, c_floor.TRANSPORT,
                          *TRANSPORTS):
            if transport in self.statuses:
                rows.append(self.statuses[transport])
            elif transport in self._lanes:
                row = {"transport": transport, "status": "measured"}
                if transport == ALTERNATED:
                    row["sizes"] = [size for size in self.settings.sizes
                                    if all(s["size"] != size for s in self.skipped)]
                label = {floor.TRANSPORT: floor.LABEL, c_floor.TRANSPORT: c_floor.LABEL}
                if transport in label:
                    row["label"] = label[transport]
                rows.append(row)
        return rows

    def close_lanes(self) -> None:
        """End every lane's processes but agnoshm's two paths."""
        for pair in list(self._closing):
            if pair is not self.agnoshm and pair is not self.native:
                self._closing.remove(pair)
                pair.close()

    def close(self) -> None:
        while self._closing:
            self._closing.pop().close()
