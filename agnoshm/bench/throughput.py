"""Throughput of agnoshm against other middlewares, alternated round by round.

Each round runs agnoshm's throughput test (:meth:`~agnoshm.bench.latency.AgnoshmPair.throughput`:
``throughput_size`` messages published back to back for ``throughput_s`` with
depth ``throughput_depth``; the subscriber counts from its first message to the
end-of-run one) on its pure-Python path, then on its native path (where the
extension is built), then the same test on each installed peer that offers it
(``THROUGHPUT`` in its module: iceoryx2, loaned samples, an event
``notify()`` per message).  A busy, shared machine drifts from one quarter of
an hour to the next; alternating puts every transport under the same drift, and
the ratio is taken within each round.

The result (``results["throughput"]`` of the JSON) is agnoshm's median round on
the pure-Python path, plus ``rounds``, every run (``runs``: transport, round,
counts, rates), per peer its median rate and agnoshm's per-round ratios
(``versus``), and the same for the native path under ``native``.
"""

from __future__ import annotations

import statistics

from agnoshm.bench import BenchError, Settings, peers
from agnoshm.bench.latency import NATIVE

PATHS = ("agnoshm", NATIVE)  # agnoshm's own runs: compared with the peers, not with each other


def throughput_peers() -> list[str]:
    """Installed peers that offer the throughput run, in :data:`~agnoshm.bench.peers.PEERS` order."""
    return [t for t in peers.PEERS if peers.availability(t) is None
            and getattr(peers.peer_module(t), "THROUGHPUT", False)]


def measure_throughput(settings: Settings, agnoshm_pairs: list, run_id: str,
                       progress=None) -> dict:
    """``throughput_rounds`` rounds of agnoshm's paths then each peer; see the module doc.

    :param agnoshm_pairs: :class:`~agnoshm.bench.latency.AgnoshmPair` s, the pure-Python path
        first (kept by the caller).
    :param progress: called with each run's row and its round (1-based).
    """
    pairs, failed = {pair.transport: pair for pair in agnoshm_pairs}, {}
    for transport in throughput_peers():
        try:
            pairs[transport] = peers.PeerPair(transport, settings, f"{run_id}t",
                                              max_size=settings.throughput_size)
        except BenchError as err:
            failed[transport] = f"failed: {peers.first_line(err)}"
    runs = []
    try:
        for number in range(1, settings.throughput_rounds + 1):
            for transport, pair in pairs.items():
                if transport in failed:
                    continue
                try:
                    row = {**pair.throughput(), "round": number}
                except BenchError as err:
                    if transport == "agnoshm":
                        raise
                    failed[transport] = f"failed: {peers.first_line(err)}"
                    continue
                runs.append(row)
                if progress is not None:
                    progress(row)
    finally:
        for pair in pairs.values():
            if pair not in agnoshm_pairs:
                pair.close()
    return summarize_runs(runs, failed)


def summarize_runs(runs: list[dict], failed: dict[str, str] | None = None) -> dict:
    """agnoshm's pure path (:func:`path_summary`) with every run and, where it ran, its native
    path under ``"native"``; a transport that failed is named in ``versus`` (or ``native``)
    with its reason."""
    failed = failed or {}
    ours = [r for r in runs if r["transport"] == "agnoshm"]
    result = {**path_summary(runs, "agnoshm"), "rounds": len(ours), "runs": runs}
    if any(r["transport"] == NATIVE for r in runs):
        result["native"] = path_summary(runs, NATIVE)
    elif NATIVE in failed:
        result["native"] = {"status": failed[NATIVE]}
    for transport, reason in failed.items():
        if transport != NATIVE:
            result["versus"].setdefault(transport, {})["status"] = reason
    return result


def path_summary(runs: list[dict], path: str) -> dict:
    """The median run of agnoshm's ``path`` and, per peer, its median rate and the path's ratio
    (the path's rate / the peer's) in each round where both ran, and their median."""
    ours = sorted((r for r in runs if r["transport"] == path), key=lambda r: r["received_per_s"])
    result = {**ours[(len(ours) - 1) // 2], "versus": {}}
    result.pop("round")
    by_round = {r["round"]: r["received_per_s"] for r in ours}
    for transport in dict.fromkeys(r["transport"] for r in runs if r["transport"] not in PATHS):
        theirs = [r for r in runs if r["transport"] == transport]
        ratios = [by_round[r["round"]] / r["received_per_s"] for r in theirs
                  if r["round"] in by_round and r["received_per_s"] > 0]
        result["versus"][transport] = {
            "received_per_s": statistics.median(r["received_per_s"] for r in theirs),
            "ratios": ratios, "ratio": statistics.median(ratios) if ratios else None}
    return result


def median_rate(t: dict, transport: str) -> float | None:
    """The median msgs/s of ``transport`` in a :func:`summarize_runs` result."""
    if transport == "agnoshm":
        return t["received_per_s"]
    if transport == NATIVE:
        return t.get("native", {}).get("received_per_s")
    return t["versus"].get(transport, {}).get("received_per_s")
