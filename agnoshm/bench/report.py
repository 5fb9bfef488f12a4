"""Print, save and plot the results of ``agnoshm bench``.

The results are one JSON-ready ``dict`` (see :func:`new_results`); this
module adds the machine description and the target check, renders the text
tables and the verdict, and writes the JSON file and, when matplotlib is
importable, a PNG.  The targets are the project's own goals: they go into the
JSON and docs/benchmarks.md, not into the user's terminal.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

from agnoshm.bench.c_floor import TRANSPORT as C_FLOOR
from agnoshm.bench.floor import LABEL as FLOOR_LABEL
from agnoshm.bench.floor import TRANSPORT as FLOOR
from agnoshm.bench.latency import NATIVE
from agnoshm.bench.throughput import median_rate

SCHEMA = "agnoshm-bench/1"
FLOORS = (FLOOR, C_FLOOR)  # baselines, never rivals in the verdict
NOTES = {
    NATIVE: f"{NATIVE} = agnoshm on its C message path (AGNOSHM_NATIVE=1); agnoshm = its "
            "pure-Python path (AGNOSHM_NATIVE=0), the reference",
    FLOOR: f"{FLOOR} = {FLOOR_LABEL} (agnoshm's lock-free ring protocol in pure Python, "
           "payload in place; no Node, view or executor)",
    C_FLOOR: f"{C_FLOOR} = a futex ping-pong between two C processes, compiled here: the "
             "physical limit of a wake-up across processes",
}
PEER = "iceoryx2"  # the peer of issue 16's and 19's ratio targets

#: The issue's targets; reported against, never asserted.
TARGETS = {
    "size_independence": 1.5,  # p50 at the largest size / p50 at the smallest
    "p50_us": 50.0,
    "p99_us": 200.0,
    "throughput_per_s": 50_000.0,
    "fanout_publish_p50_us": 150.0,
    "callbacks_per_s": 50_000.0,  # 64 B, one subscription, standalone executor
    "spin_over_raw_p50": 1.3,  # latency through spin() / the runtime's raw receive path
    "throughput_over_iceoryx2": 1.0,  # issue 16: agnoshm's msgs/s / iceoryx2's, same rounds
    "busy_poll_over_iceoryx2_p50": 1.2,  # issue 16: busy-poll p50 / iceoryx2's busy-poll p50
    "native_busy_poll_over_iceoryx2_p50": 1.0,  # issue 19: the same on the native path
    "pure_over_iceoryx2": 1.0,  # issue 16: p50 and p99 / iceoryx2's at every size
    "native_over_iceoryx2": 0.8,  # issue 19: the same on the native path
    "native_throughput_over_iceoryx2": 1.5,  # issue 19
}


def machine() -> dict:
    """nproc, CPU model, kernel, Python and library versions, load average of this machine."""
    import numpy

    import agnoshm

    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "cpu_model": model, "kernel": f"{platform.system()} {platform.release()}",
            "machine": platform.machine(), "python": platform.python_version(),
            "numpy": numpy.__version__, "agnoshm": agnoshm.__version__,
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


def new_results(settings, command: str, **extra_settings) -> dict:
    """The skeleton of one run's results: when, how it was invoked, where, with what settings."""
    import dataclasses

    return {
        "schema": SCHEMA,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine(),
        "settings": {**dataclasses.asdict(settings), **extra_settings},
        "latency": [], "transports": [], "skipped": [], "throughput": None, "fanout": None, "busy_poll": [], "messages": None,
        "dispatch": None,
        "targets": [],
    }


def check_targets(results: dict) -> list[dict]:
    """Compare the agnoshm numbers with :data:`TARGETS`; one row per target that was measured."""
    rows = []
    agnoshm = sorted((r for r in results["latency"] if r["transport"] == "agnoshm"),
                     key=lambda r: r["size"])

    def add(name: str, value: float, target: float, at_most: bool = True) -> None:
        met = value <= target if at_most else value >= target
        rows.append({"name": name, "value": value, "target": target,
                     "at_most": at_most, "met": bool(met)})

    if len(agnoshm) >= 2:
        small, large = agnoshm[0], agnoshm[-1]
        add(f"p50 at {size_label(large['size'])} / p50 at {size_label(small['size'])}",
            large["p50_us"] / small["p50_us"], TARGETS["size_independence"])
    if agnoshm:
        add("worst p50 over sizes (us)", max(r["p50_us"] for r in agnoshm), TARGETS["p50_us"])
        add("worst p99 over sizes (us)", max(r["p99_us"] for r in agnoshm), TARGETS["p99_us"])
    if results.get("throughput"):
        t = results["throughput"]
        add(f"throughput at {size_label(t['size'])} (msgs/s)", t["received_per_s"],
            TARGETS["throughput_per_s"], at_most=False)
        ratio = t.get("versus", {}).get("iceoryx2", {}).get("ratio")
        if ratio is not None:
            add(f"throughput at {size_label(t['size'])} / iceoryx2's (median of rounds)", ratio,
                TARGETS["throughput_over_iceoryx2"], at_most=False)
        ratio = t.get("native", {}).get("versus", {}).get("iceoryx2", {}).get("ratio")
        if ratio is not None:
            add(f"{NATIVE} throughput at {size_label(t['size'])} / iceoryx2's (median of rounds)",
                ratio, TARGETS["native_throughput_over_iceoryx2"], at_most=False)
    for transport, target in (("agnoshm", "pure_over_iceoryx2"),
                              (NATIVE, "native_over_iceoryx2")):
        for ours, theirs in latency_pairs(results["latency"], transport, PEER):
            for p in ("p50", "p99"):
                add(f"{transport} {p} / iceoryx2's {p}, {size_label(ours['size'])}",
                    ours[f"{p}_us"] / theirs[f"{p}_us"], TARGETS[target])
    for path, name, target in (("agnoshm", "", "busy_poll_over_iceoryx2_p50"),
                               (NATIVE, f"{NATIVE} ", "native_busy_poll_over_iceoryx2_p50")):
        for ours, theirs in busy_poll_pairs(results.get("busy_poll") or [], PEER, path):
            add(f"{name}busy-poll p50 / iceoryx2's busy-poll p50, {size_label(ours['size'])}, "
                f"pause {1e3 * ours['interval_s']:g} ms", ours["p50_us"] / theirs["p50_us"],
                TARGETS[target])
    if results.get("fanout"):
        f = results["fanout"]
        add(f"fan-out publish() p50, {f['subscriptions']} subs / {f['processes']} procs (us)",
            f["p50_us"], TARGETS["fanout_publish_p50_us"])
    d = results.get("dispatch")
    if d:
        add(f"executor callbacks/s, {size_label(d['size'])}, one subscription", d["callbacks_per_s"],
            TARGETS["callbacks_per_s"], at_most=False)
        add("latency p50 through spin() / raw receive path", d["latency_ratio_p50"],
            TARGETS["spin_over_raw_p50"])
    m = results.get("messages")
    if m:
        side = m["publish_side"]
        add("Image 1920x1080 borrow+header+alloc+publish / same for Bytes (p50)",
            side["image"]["p50_us"] / side["bytes"]["p50_us"], 2.0)
        access = m["receive_side"]
        add("received msg.data on a 16 MiB / 1 KiB image (p50)",
            access["16MiB"]["p50_us"] / access["1KiB"]["p50_us"], 1.5)
        latency = m["latency"]
        for case in ("pointcloud2_1M", "marker_points_100k"):
            add(f"{case} end-to-end p50 / 64 B Bytes p50",
                latency[case]["p50_us"] / latency["bytes_64B"]["p50_us"], 1.5)
        add("rosbags CDR serialize+deserialize / agnoshm, 1920x1080 image (p50)",
            m["cdr"]["ratio_p50"], 100.0, at_most=False)
    return rows


# --- text ---------------------------------------------------------------------------------

def size_label(size: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = [" | ".join(h.rjust(w) for h, w in zip(header, widths)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def _us(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


#: How the verdict names each transport.
SPOKEN = {"socket": "a socket copy", "shm-copy": "a shared-memory copy",
          "cdr-socket": "CDR + socket copy", "cyclonedds": "Cyclone DDS",
          FLOOR: "its floor (a bare ring)", C_FLOOR: "the C floor (a futex ping-pong)"}
TIMES = "\u00d7"  # the multiplication sign of "52× faster"


def times(factor: float) -> str:
    """``52.4`` -> ``52×``, ``2.44`` -> ``2.4×``."""
    return f"{factor:.0f}{TIMES}" if factor >= 10 else f"{factor:.1f}{TIMES}"


def compared(ours_us: float, theirs_us: float, name: str = "") -> str:
    """How agnoshm's p50 compares with another's: ``43× faster [than name]``, ``3.6× slower``
    or ``about as fast`` (within 10 %), never a factor below 1."""
    return compared_speed(theirs_us / ours_us, name)


def compared_speed(ratio: float, name: str = "") -> str:
    """``compared`` for a speed ratio (agnoshm's rate / another's, or its time / agnoshm's)."""
    if _close(ratio, 1.0):
        return "about as fast" + (f" as {name}" if name else "")
    words = f"{times(ratio)} faster" if ratio > 1 else f"{times(1 / ratio)} slower"
    return words + (f" than {name}" if name else "")


def _close(a: float, b: float) -> bool:
    return max(a, b) < 1.1 * min(a, b)


def spoken(transport: str) -> str:
    return SPOKEN.get(transport, transport)


def latency_table(results: dict, baseline: str = "socket") -> str:
    """size | agnoshm p50 | p99 | <baseline> p50 | p99 | agnoshm is (N× faster/slower)."""
    by_key = {(r["transport"], r["size"]): r for r in results["latency"]}
    rows = []
    for size in results["settings"]["sizes"]:
        a, b = by_key.get(("agnoshm", size)), by_key.get((baseline, size))
        if a is None or b is None:
            continue
        rows.append([size_label(size), _us(a["p50_us"]), _us(a["p99_us"]), _us(b["p50_us"]),
                     _us(b["p99_us"]), compared(a["p50_us"], b["p50_us"])])
    name = f"{baseline}-copy" if baseline == "socket" else baseline
    return _table(["size", "agnoshm p50 us", "p99 us", f"{name} p50 us", "p99 us",
                   "agnoshm is"], rows)


def transports_table(results: dict) -> str:
    """size | transport | p50 | p90 | p99 | max | agnoshm is (N× faster/slower than it)."""
    by_key = {(r["transport"], r["size"]): r for r in results["latency"]}
    order = list(dict.fromkeys(r["transport"] for r in results["latency"]))
    rows = []
    for size in results["settings"]["sizes"]:
        ours = by_key.get(("agnoshm", size))
        for transport in order:
            r = by_key.get((transport, size))
            if r is None:
                continue
            versus = (compared(ours["p50_us"], r["p50_us"])
                      if ours is not None and transport != "agnoshm" else "")
            rows.append([size_label(size), transport, _us(r["p50_us"]), _us(r["p90_us"]),
                         _us(r["p99_us"]), _us(r["max_us"]), versus])
    table = _table(["size", "transport", "p50 us", "p90 us", "p99 us", "max us", "agnoshm is"],
                   rows)
    return "\n".join([table, *(note for t, note in NOTES.items() if t in order)])


def latency_pairs(rows: list[dict], ours: str, theirs: str) -> list[tuple[dict, dict]]:
    """(``ours``'s row, ``theirs``'s row) at each size both have, by size."""
    mine = {r["size"]: r for r in rows if r["transport"] == ours}
    return sorted(((mine[r["size"]], r) for r in rows
                   if r["transport"] == theirs and r["size"] in mine), key=lambda p: p[0]["size"])


def paths_table(results: dict) -> str:
    """size | p50 / p99 of agnoshm's two paths, iceoryx2 and the floors | each path's p50
    against iceoryx2's; "-" where a row was not measured."""
    by_key = {(r["transport"], r["size"]): r for r in results["latency"]}
    columns = ("agnoshm", NATIVE, PEER, *FLOORS)
    rows = []
    for size in results["settings"]["sizes"]:
        row = [size_label(size)]
        for transport in columns:
            r = by_key.get((transport, size))
            row.append(f"{_us(r['p50_us'])} / {_us(r['p99_us'])}" if r else "-")
        theirs = by_key.get((PEER, size))
        for path in ("agnoshm", NATIVE):
            ours = by_key.get((path, size))
            row.append(compared(ours["p50_us"], theirs["p50_us"]) if ours and theirs else "-")
        rows.append(row)
    return _table(["size", *columns, "agnoshm is", f"{NATIVE} is"], rows)


def paths_verdict(results: dict) -> list[str]:
    """The native path against iceoryx2 at each size, and each path's distance to the C floor."""
    rows = results["latency"]
    lines = []
    pairs = latency_pairs(rows, NATIVE, PEER)
    if pairs:
        lines.append(f"  {NATIVE} against {PEER}, p50: " + ", ".join(
            f"{compared(ours['p50_us'], theirs['p50_us'])} at {size_label(ours['size'])}"
            for ours, theirs in pairs))
    floors = [r["p50_us"] for r in rows if r["transport"] == C_FLOOR]
    above = []
    for path in ("agnoshm", NATIVE):
        factors = [ours["p50_us"] / floor["p50_us"]
                   for ours, floor in latency_pairs(rows, path, C_FLOOR)]
        if factors:
            above.append(f"{path}'s is {_span(factors, times)} it")
    if floors and above:
        lines.append(f"  the C floor (a futex ping-pong between two C processes), p50 "
                     f"{_span(floors, _us)} us: " + ", ".join(above))
    return lines


def _span(values: list[float], fmt) -> str:
    """``fmt(min)``, or ``fmt(min)-fmt(max)`` when they differ."""
    low, high = fmt(min(values)), fmt(max(values))
    return low if low == high else f"{low}-{high}"


def spin_versus_raw(dispatch_row: dict) -> str:
    """``1.4× slower than the raw path``: latency through spin() against doorbell + take()."""
    return compared(dispatch_row["latency_spin"]["p50_us"], dispatch_row["latency_raw"]["p50_us"],
                    "the raw path")


def verdict(results: dict) -> list[str]:
    """One sentence per size, from the p50 latencies: the fastest transport and by how much,
    then agnoshm against a socket copy and against rclpy (or, where rclpy was not measured,
    CDR + socket copy: what rclpy's serialization costs at least), and against its floor (a
    bare ring, which is no transport a user can pick, so never "the fastest")."""
    by_size: dict[int, dict[str, float]] = {}
    for r in results["latency"]:
        by_size.setdefault(r["size"], {})[r["transport"]] = r["p50_us"]
    lines = []
    for size in results["settings"]["sizes"]:
        p50 = by_size.get(size, {})
        ours = p50.get("agnoshm")
        rivals = sorted((t for t in p50 if t not in ("agnoshm", NATIVE, *FLOORS)), key=p50.get)
        if ours is None or not rivals:
            continue
        best = rivals[0]
        if _close(ours, p50[best]):
            lead = f"agnoshm and {spoken(best)} are fastest, within 10 % of each other"
        elif ours < p50[best]:
            lead = f"agnoshm is fastest, {compared(ours, p50[best], spoken(best))}"
        else:
            lead = f"{spoken(best)} is fastest, {times(ours / p50[best])} faster than agnoshm"
        serializing = "rclpy" if "rclpy" in p50 else "cdr-socket"
        named = [t for t in ("socket", serializing) if t in p50 and t != best]
        sentence = lead + ("; agnoshm is " + " and ".join(
            compared(ours, p50[t], spoken(t)) for t in named) if named else "")
        if FLOOR in p50:
            floor = compared(ours, p50[FLOOR], spoken(FLOOR))
            sentence += f", and {floor}" if named else f"; agnoshm is {floor}"
        lines.append((size_label(size), sentence))
    width = max((len(label) for label, _ in lines), default=0)
    return [f"  at {(label + ':').ljust(width + 1)} {sentence}" for label, sentence in lines]


def not_measured(results: dict) -> list[str]:
    """One line per transport that was not measured, or not at every size, and why."""
    from agnoshm.bench.peers import status_text

    lines = [f"  {t['transport']}: {status_text(t)}" for t in results.get("transports", [])
             if t["status"] != "measured"]
    by_reason: dict[tuple[str, str], list[int]] = {}
    for skip in results.get("skipped", []):
        by_reason.setdefault((skip["transport"], skip["reason"]), []).append(skip["size"])
    lines += [f"  {transport} at {', '.join(map(size_label, sizes))}: skipped: {reason}"
              for (transport, reason), sizes in by_reason.items()]
    return lines


def progress_line(row: dict) -> str:
    """One line for a finished latency row (stderr progress)."""
    mode = ""
    if "mode" in row:
        mode = "" if row["mode"] == "default" else f" {row['mode']}"
        mode += f", pause {1e3 * row['interval_s']:g} ms"
    return (f"{row['transport']}{mode} {size_label(row['size'])}: p50 {_us(row['p50_us'])} us, "
            f"p99 {_us(row['p99_us'])} us ({row['count']} samples)")


def throughput_line(row: dict) -> str:
    """One line for a finished throughput run (stderr progress)."""
    return (f"throughput round {row['round']}, {row['transport']}: {row['received_per_s']:,.0f} "
            "msgs/s received")


def busy_poll_pairs(rows: list[dict], peer: str,
                    path: str = "agnoshm") -> list[tuple[dict, dict]]:
    """(the busy-poll row of agnoshm's ``path``, ``peer``'s busy-poll row) at each size and
    pause both have."""
    ours = {(r["size"], r["interval_s"]): r for r in rows
            if r["transport"] == path and r.get("busy_poll_us")}
    return [(ours[r["size"], r["interval_s"]], r) for r in rows
            if r["transport"] == peer and (r["size"], r["interval_s"]) in ours]


def throughput_table(t: dict) -> str:
    """transport | msgs/s received in each round | median | agnoshm is."""
    rounds = t.get("rounds", 1)
    runs = t.get("runs") or [{**t, "round": 1}]
    paths = [(t, "agnoshm is")]
    if "received_per_s" in t.get("native", {}):
        paths.append((t["native"], f"{NATIVE} is"))
    rows = []
    for transport in dict.fromkeys(r["transport"] for r in runs):
        rates = {r["round"]: r["received_per_s"] for r in runs if r["transport"] == transport}
        ratios = [path.get("versus", {}).get(transport, {}).get("ratio") for path, _ in paths]
        rows.append([transport, *(f"{rates[n]:,.0f}" if n in rates else "-"
                                  for n in range(1, rounds + 1)),
                     f"{median_rate(t, transport):,.0f}",
                     *(compared_speed(ratio) if ratio else "" for ratio in ratios)])
    return _table(["transport", *(f"round {n}" for n in range(1, rounds + 1)), "median",
                   *(title for _, title in paths)], rows)


def _mode(row: dict) -> str:
    if "mode" in row:
        return row["mode"]
    return f"busy-poll {row['busy_poll_us']} us" if row["busy_poll_us"] else "default"


def text(results: dict) -> str:
    """The whole human-readable report."""
    out = ["agnoshm latency, publish() to the subscriber's first access (microseconds):",
           latency_table(results),
           "", "every transport, same pacing (agnoshm is: agnoshm's p50 against the row's):",
           transports_table(results)]
    if any(r["transport"] in (NATIVE, PEER, *FLOORS) for r in results["latency"]):
        out += ["", f"agnoshm's two paths beside {PEER} and the floors, measured size by size "
                f"(p50 / p99 us; agnoshm is, {NATIVE} is: its p50 against {PEER}'s):",
                paths_table(results)]
    missing = not_measured(results)
    if missing:
        out += ["", "not measured:", *missing]
    t = results.get("throughput")
    if t:
        out += ["", f"throughput, {size_label(t['size'])} back to back (depth {t['depth']}), msgs/s "
                f"received, transports alternated round by round (agnoshm is: the median of its "
                f"per-round ratios):", throughput_table(t),
                f"  agnoshm's median round: {t['published_per_s']:,.0f} msgs/s published, "
                f"{t['dropped']:,} of {t['published']:,} overwritten unread"]
    f = results.get("fanout")
    if f:
        out += ["", f"fan-out, publish() alone to {f['subscriptions']} subscriptions in "
                f"{f['processes']} processes: p50 {_us(f['p50_us'])} us, p99 {_us(f['p99_us'])} us"]
    d = results.get("dispatch")
    if d:
        spin, raw = d["latency_spin"], d["latency_raw"]
        out += ["", f"executor dispatch, {size_label(d['size'])} messages, one subscription: "
                f"{d['callbacks_per_s']:,.0f} callbacks/s through a SingleThreadedExecutor, "
                f"{d['raw_takes_per_s']:,.0f} msgs/s by take() alone",
                f"  latency across processes: through spin() p50 {_us(spin['p50_us'])} us, p99 "
                f"{_us(spin['p99_us'])} us; raw wake-up loop + take() p50 {_us(raw['p50_us'])} us, "
                f"p99 {_us(raw['p99_us'])} us (spin() {spin_versus_raw(d)})"]
    if results.get("busy_poll"):
        rows = [[r["transport"], _mode(r), f"{1e3 * r['interval_s']:g} ms", size_label(r["size"]),
                 _us(r["p50_us"]), _us(r["p99_us"]), f"{100 * r['receiver_cpu_per_s']:.1f} %",
                 _us(r["receiver_cpu_per_message_us"])
                 if "receiver_cpu_per_message_us" in r else "-"]
                for r in results["busy_poll"]]
        out += ["", "wake-up mode (pause = between one message's receipt and the next send; "
                "subscriber CPU = CPU seconds per wall second, % of one core, and CPU us per "
                "message; busy-poll rows alternated row by row):",
                _table(["transport", "mode", "pause", "size", "p50 us", "p99 us",
                        "subscriber CPU", "CPU us/msg"], rows)]
        if any(r["transport"] == NATIVE for r in results["busy_poll"]):
            out.append(NOTES[NATIVE])
    m = results.get("messages")
    if m:
        side, access, latency, cdr = m["publish_side"], m["receive_side"], m["latency"], m["cdr"]
        rows = [["Image 1920x1080 rgb8: borrow+header+alloc+publish", _us(side["image"]["p50_us"]),
                 _us(side["image"]["p99_us"])],
                ["Bytes 6 MB: borrow+alloc+publish", _us(side["bytes"]["p50_us"]),
                 _us(side["bytes"]["p99_us"])],
                ["received Image, msg.data, 1 KiB", _us(access["1KiB"]["p50_us"]),
                 _us(access["1KiB"]["p99_us"])],
                ["received Image, msg.data, 16 MiB", _us(access["16MiB"]["p50_us"]),
                 _us(access["16MiB"]["p99_us"])]]
        rows += [[f"end to end, {case}", _us(v["p50_us"]), _us(v["p99_us"])]
                 for case, v in latency.items()]
        rows += [["rosbags CDR serialize+deserialize, Image", _us(cdr["cdr"]["p50_us"]),
                  _us(cdr["cdr"]["p99_us"])],
                 ["agnoshm borrow..publish..take..data, Image", _us(cdr["agnoshm"]["p50_us"]),
                  _us(cdr["agnoshm"]["p99_us"])]]
        versus = compared(cdr["agnoshm"]["p50_us"], cdr["cdr"]["p50_us"],
                          "rosbags CDR serialize+deserialize")
        out += ["", f"typed messages (agnoshm's whole path for the Image is {versus}):",
                _table(["measurement", "p50 us", "p99 us"], rows)]
    return "\n".join(out)


def verdict_more(results: dict) -> list[str]:
    """The verdict's lines after the sizes: throughput against each peer measured in the same
    rounds, and the busy-poll of each agnoshm path (pure, then native) against each peer's
    busy-polling subscriber in ping-pong (no pause: agnoshm spins only ``busy_poll_us`` before
    it sleeps, a peer's poll never sleeps)."""
    lines = []
    t = results.get("throughput") or {}
    for name, path in (("agnoshm", t), (NATIVE, t.get("native") or {})):
        for transport, versus in path.get("versus", {}).items():
            if versus.get("ratio") is None:
                continue
            lines.append(f"  throughput at {size_label(t['size'])}: {name} is "
                         f"{compared_speed(versus['ratio'], spoken(transport))} "
                         f"({path['received_per_s']:,.0f} against "
                         f"{versus['received_per_s']:,.0f} msgs/s, median of {t['rounds']} "
                         "alternated rounds)")
    rows = results.get("busy_poll") or []
    paths = ("agnoshm", NATIVE)
    for peer in dict.fromkeys(r["transport"] for r in rows if r["transport"] not in paths):
        pairs = [(ours["size"], index, path, ours, theirs)
                 for index, path in enumerate(paths)
                 for ours, theirs in busy_poll_pairs(rows, peer, path) if not ours["interval_s"]]
        lines += [_busy_poll_line(path, ours, theirs, peer)
                  for *_, path, ours, theirs in sorted(pairs, key=lambda p: p[:2])]
    return lines


def _busy_poll_line(path: str, ours: dict, theirs: dict, peer: str) -> str:
    """``  busy-poll at 64 B, no pause: <path> (busy-poll 100 us) is 3.0× slower than
    iceoryx2's receive() loop (p50 ..; subscriber CPU ..)``."""
    cpu = ""
    if "receiver_cpu_per_message_us" in ours and "receiver_cpu_per_message_us" in theirs:
        cpu = (f"; subscriber CPU {_us(ours['receiver_cpu_per_message_us'])} against "
               f"{_us(theirs['receiver_cpu_per_message_us'])} us per message")
    return (f"  busy-poll at {size_label(ours['size'])}, no pause: {path} ({ours['mode']}) is "
            f"{compared(ours['p50_us'], theirs['p50_us'], spoken(peer))}'s receive() loop "
            f"(p50 {_us(ours['p50_us'])} against {_us(theirs['p50_us'])} us{cpu})")


def verdict_text(results: dict) -> str:
    """The verdict with its heading (empty when no size has agnoshm and another transport)."""
    lines = verdict(results)
    if not lines:
        return ""
    lines += paths_verdict(results) + verdict_more(results)
    notes = []
    if any("CDR + socket copy" in line for line in lines):
        notes.append("  (CDR + socket copy: a sensor_msgs/Image serialized with rosbags and sent "
                     "through a Unix socket, the least a serializing middleware such as rclpy "
                     "pays per hop)")
    return "\n".join(["verdict, median (p50) latency from publish() to the subscriber's "
                      "first access:", *lines, *notes])


def header(results: dict) -> str:
    """The line printed before measuring: the machine and its load average."""
    m = results["machine"]
    load = m["loadavg_at_start"]
    line = (f"agnoshm bench on {m['usable_cpus']} CPUs ({m['cpu_model']}), {m['kernel']}, "
            f"Python {m['python']}: load average {', '.join(f'{x:.2f}' for x in load)} "
            "(1, 5, 15 min)")
    if load[0] >= m["usable_cpus"] / 2:
        line += ("\nthe machine is busy: every transport measures slower and less evenly "
                 "than on an idle one")
    return line


def _throughput_bars(ax, t: dict) -> None:
    """One horizontal bar per transport (its median msgs/s) with a dot per round."""
    transports = list(dict.fromkeys(r["transport"] for r in t["runs"]))
    medians = [median_rate(t, name) for name in transports]
    ax.barh(range(len(transports)), medians, color="0.8")
    for i, name in enumerate(transports):
        rates = [r["received_per_s"] for r in t["runs"] if r["transport"] == name]
        ax.plot(rates, [i] * len(rates), "o", color="black", markersize=3)
    ax.set_yticks(range(len(transports)), transports)
    ax.invert_yaxis()
    ax.set_xlabel(f"throughput, {size_label(t['size'])} messages received per second "
                  f"(bar: median; dots: {t['rounds']} alternated rounds)")
    ax.grid(True, axis="x", alpha=0.3)


# --- files --------------------------------------------------------------------------------

def write_json(results: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def write_plot(results: dict, path: str | os.PathLike) -> Path | None:
    """Latency p50 (solid) and p99 (dashed) against size, log-log, one colour per transport;
    the legend sits right of the axes, so it never covers a line.

    :return: the PNG's path, or None when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return None
    runs = (results.get("throughput") or {}).get("runs") or []
    if runs:
        fig, (ax, bars) = plt.subplots(2, 1, figsize=(8, 6.5),
                                       gridspec_kw={"height_ratios": [3, 1.2]})
        _throughput_bars(bars, results["throughput"])
    else:
        fig, ax = plt.subplots(figsize=(8, 4.5))
    handles = []
    for transport in dict.fromkeys(r["transport"] for r in results["latency"]):
        rows = sorted((r for r in results["latency"] if r["transport"] == transport),
                      key=lambda r: r["size"])
        sizes = [r["size"] for r in rows]
        width = 2.5 if transport in ("agnoshm", NATIVE) else 1.5
        name = {FLOOR: f"{FLOOR} (agnoshm's floor)",
                C_FLOOR: f"{C_FLOOR} (physical limit)"}.get(transport, transport)
        line, = ax.plot(sizes, [r["p50_us"] for r in rows], marker="o", linewidth=width,
                        label=f"{name} p50")
        ax.plot(sizes, [r["p99_us"] for r in rows], linestyle="--", color=line.get_color(),
                linewidth=width * 0.7, label=f"{name} p99")
        handles.append(line)
    sizes = sorted({r["size"] for r in results["latency"]})
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes, [size_label(size) for size in sizes])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("payload size")
    ax.set_ylabel("latency (µs): p50 solid, p99 dashed")
    m = results["machine"]
    ax.set_title(f"agnoshm bench, {m['cpu_model']}" + (f", {m['usable_cpus']} CPUs"
                                                       if "usable_cpus" in m else ""))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(handles, [h.get_label().removesuffix(" p50") for h in handles], fontsize="small",
              loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
