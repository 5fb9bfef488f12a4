"""``agnoshm bench``: measure agnoshm against copy baselines and other middlewares on this machine.

Runs, in a private ``ROS_DOMAIN_ID``: latency per size (agnoshm's pure-Python
path, its native path where built, iceoryx2 where installed, the floors, a
bare ring and a futex ping-pong between two C processes where a C compiler is
found, and the socket, shm-copy and cdr-socket baselines, size by size; then
zenoh, Cyclone DDS and rclpy where installed), throughput, fan-out cost of
``publish()``, the busy-poll comparison (both of agnoshm's paths beside
iceoryx2's polling receiver) and typed messages; prints the tables and a verdict per size (which transport is
fastest, by how much, and agnoshm against its floor), writes the JSON and,
next to it, a PNG plot of latency against size (the plot needs matplotlib:
pip install 'agnoshm[plot]').  A slow machine never fails the command; only a
real error does (exit status 1).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from agnoshm.bench import DEFAULT_SIZES, BenchError, Settings, environment, private_domain_id
from agnoshm.bench import busy_poll, dispatch, messages, peers, report, sweep, throughput
from agnoshm.bench.peers import PEERS
from agnoshm.bench.progress import Progress
from agnoshm.cli import CommandError, positive_int
from agnoshm.memory import BACKENDS

DEFAULT_JSON = "bench-results/agnoshm-bench.json"
MIN_SIZE = 16
MAX_SIZE = 1 << 30
QUICK = {"samples": 200, "warmup": 20, "comparison_samples": 50, "comparison_warmup": 10,
         "throughput_s": 1.0}
FULL = {"samples": 2000, "warmup": 100, "comparison_samples": 500, "comparison_warmup": 50,
        "throughput_s": 2.0}


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"64,4K,1M"`` -> ``(64, 4096, 1048576)``; each size 1 B .. 1 GiB."""
    from agnoshm.config import ConfigError, parse_size

    sizes = []
    for token in filter(None, (t.strip() for t in text.split(","))):
        try:
            size = parse_size(token)
        except ConfigError:
            raise argparse.ArgumentTypeError(
                f"{token!r} is not a size (use bytes or a K/M/G suffix, e.g. 64,4K,1M)") from None
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise argparse.ArgumentTypeError(
                f"{token!r}: sizes must be between {MIN_SIZE} B (the latency stamp) and 1 GiB")
        sizes.append(size)
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one size, e.g. --sizes 64,4K,1M")
    return tuple(sorted(set(sizes)))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="measure latency, throughput and fan-out against copy baselines",
        description=__doc__.split("\n\n")[1].replace("\n", " ").replace("``", ""))
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK['samples']} samples per size, {QUICK['comparison_samples']} for "
                        f"cdr-socket and other middlewares (about a minute on an idle 2-core "
                        f"machine) instead of {FULL['samples']} and {FULL['comparison_samples']}")
    p.add_argument("--sizes", type=parse_sizes, metavar="LIST",
                   help="comma-separated payload sizes in bytes, K or M, e.g. 64,4K,1M "
                        "(default: 64,4K,64K,1M,4M,16M)")
    p.add_argument("--samples", type=positive_int, metavar="N",
                   help="measured messages per size and transport (all of them, "
                        "cdr-socket and other middlewares included)")
    p.add_argument("--json", default=DEFAULT_JSON, metavar="PATH",
                   help=f"where to write all results (default: {DEFAULT_JSON})")
    plot = p.add_mutually_exclusive_group()
    plot.add_argument("--plot", metavar="PATH",
                      help="where to draw latency against size as a PNG (default: the --json "
                           "path with .png; needs matplotlib: pip install 'agnoshm[plot]')")
    plot.add_argument("--no-plot", action="store_true", help="do not draw the PNG")
    p.add_argument("--latency-only", action="store_true",
                   help="measure only latency against size (agnoshm, baselines, peers); skip "
                        "throughput, fan-out, busy-poll and typed messages")
    p.add_argument("--backend", choices=tuple(BACKENDS),
                   help="agnoshm pool backend (default: AGNOSHM_BACKEND or shm)")
    p.set_defaults(run=run)


def settings_from(args: argparse.Namespace) -> Settings:
    preset = QUICK if args.quick else FULL
    return Settings(sizes=args.sizes or DEFAULT_SIZES,
                    samples=args.samples or preset["samples"],
                    warmup=preset["warmup"],
                    comparison_samples=args.samples or preset["comparison_samples"],
                    comparison_warmup=preset["comparison_warmup"],
                    throughput_s=preset["throughput_s"],
                    backend=args.backend or os.environ.get("AGNOSHM_BACKEND") or "shm")


def total_steps(settings: Settings, latency_only: bool = False) -> int:
    """Steps of the progress bar: latency rows, throughput, fan-out, dispatch, busy-poll, typed."""
    rows = len(settings.sizes) * sweep.lanes_per_size()
    for transport in PEERS:
        if transport != sweep.ALTERNATED and peers.availability(transport) is None:
            limit = peers.peer_module(transport).size_limit
            rows += sum(1 for size in settings.sizes if limit(size) is None)
    if latency_only:
        return rows
    paths = 1 + (sweep.native_missing() is None)
    rounds = settings.throughput_rounds * (paths + len(throughput.throughput_peers()))
    return rows + rounds + 1 + 1 + busy_poll.steps(settings) + 1 + len(messages.CASES)


def dispatch_rounds(settings: Settings) -> int:
    """Rounds of :data:`~agnoshm.bench.dispatch.BATCH` callbacks: 5 quick, 50 full."""
    return max(5, settings.samples // 40)


def _row_line(row: dict) -> str:
    return (f"{row['transport']} {report.size_label(row['size'])}: p50 {row['p50_us']:,.1f} "
            f"p99 {row['p99_us']:,.1f} us")


def measure_peers(settings: Settings, results: dict, progress: Progress,
                  exclude: tuple[str, ...] = ()) -> None:
    """Each other middleware in turn (but those in ``exclude``), over every size it can carry."""
    run_id = str(os.getpid())

    def row_done(row) -> None:
        if isinstance(row, tuple):
            transport, size, reason = row
            results["skipped"].append({"transport": transport, "size": size, "reason": reason})
            return
        results["latency"].append(row)
        progress.step(_row_line(row))

    for transport in PEERS:
        if transport in exclude:
            continue
        if peers.availability(transport) is not None:
            status = peers.availability(transport)
        else:
            progress.start(f"{transport}: starting")
            limit = peers.peer_module(transport).size_limit
            planned = sum(1 for size in settings.sizes if limit(size) is None)
            done = len(results["latency"])
            status = peers.measure_peer(transport, settings, run_id, row_done,
                                        lambda size, t=transport: progress.start(
                                            f"{t} {report.size_label(size)}"))
            progress.skip(planned - (len(results["latency"]) - done))
        results["transports"].append(status)
        if status["status"] != "measured":
            progress.line(f"{transport}: {peers.status_text(status)}")


def measure_sweep(lanes: sweep.Sweep, settings: Settings, results: dict,
                  progress: Progress) -> None:
    """The latency rows of :mod:`~agnoshm.bench.sweep`, size by size, then its lanes' statuses;
    ends every lane's processes but agnoshm's."""
    for i, size in enumerate(settings.sizes, 1):
        parts = []

        def done(row: dict) -> None:
            results["latency"].append(row)
            parts.append(f"{row['transport']} p50 {row['p50_us']:,.1f} p99 {row['p99_us']:,.1f}")
            progress.step()

        label = report.size_label(size)
        measured = lanes.measure(size, lambda t: progress.start(f"{t} {label}"), done)
        progress.skip(sweep.lanes_per_size() - measured)
        progress.line(f"[{i}/{len(settings.sizes)}] {label}: " + " | ".join(parts) + " us")
    results["transports"] += lanes.status_rows()
    results["skipped"] += lanes.skipped
    for status in lanes.status_rows():
        if status["status"] != "measured":
            progress.line(f"{status['transport']}: {peers.status_text(status)}")
    lanes.close_lanes()


def measure(settings: Settings, results: dict, progress: Progress,
            latency_only: bool = False) -> None:
    """Fill ``results`` with every measurement (or only the latency sweep); workers are gone
    when this returns."""
    progress.start("starting worker processes")
    lanes = sweep.Sweep(settings, str(os.getpid()))
    try:
        measure_sweep(lanes, settings, results, progress)
        measure_peers(settings, results, progress, exclude=(sweep.ALTERNATED,))
        if latency_only:
            progress.finish()
            return
        progress.start("throughput")
        results["throughput"] = throughput.measure_throughput(
            settings, [p for p in (lanes.agnoshm, lanes.native) if p], str(os.getpid()),
            lambda row: progress.step(report.throughput_line(row)))
        progress.start(f"fan-out to {settings.fanout_subscriptions} subscriptions")
        f = results["fanout"] = lanes.agnoshm.fanout()
        progress.step(f"fan-out: publish() p50 {f['p50_us']:,.1f} us, p99 {f['p99_us']:,.1f} us")
    finally:
        lanes.close()
    progress.start("executor dispatch")
    d = results["dispatch"] = dispatch.measure_dispatch(settings, dispatch_rounds(settings))
    progress.step(f"executor: {d['callbacks_per_s']:,.0f} callbacks/s; latency through spin() "
                  f"{report.spin_versus_raw(d)}")
    progress.start("busy-poll comparison")
    results["busy_poll"] = busy_poll.measure_busy_poll(
        settings, str(os.getpid()), lambda row: progress.step(report.progress_line(row)),
        results["skipped"])
    progress.start("typed messages")
    results["messages"] = messages.measure_messages(settings.samples, settings.warmup,
                                                    settings.interval_s, progress.step)
    progress.finish()


def _stop(signum, frame):
    raise KeyboardInterrupt


def _invocation() -> str:
    name = os.path.basename(sys.argv[0] or "")
    return "python3 -m agnoshm" if name in ("__main__.py", "-m", "") else name


def plot_path(args: argparse.Namespace) -> str | None:
    """``--plot``, else the ``--json`` path with ``.png``; None with ``--no-plot``."""
    if args.no_plot:
        return None
    if args.plot is None:
        return str(Path(args.json).with_suffix(".png"))
    if not args.plot.lower().endswith(".png"):
        raise CommandError(f"--plot {args.plot!r}: the plot is a PNG, name it *.png")
    return args.plot


def _say(text: str = "") -> None:
    """Print to stdout; an output that cannot encode "×" gets "x"."""
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        report.TIMES.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = text.replace(report.TIMES, "x")
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    plot = plot_path(args)
    if plot:
        _check_writable(plot, "--plot")
    domain = private_domain_id()
    command = " ".join([_invocation(), *map(shlex.quote, args.argv)])
    results = report.new_results(settings, command, ros_domain_id=domain)
    # agnoshm's rows run the pure-Python path unless they say otherwise (agnoshm-native)
    env = {"ROS_DOMAIN_ID": str(domain), "AGNOSHM_BACKEND": settings.backend,
           "AGNOSHM_BUSY_POLL_US": "0", "AGNOSHM_NATIVE": "0"}
    _check_writable(args.json, "--json")
    _say(report.header(results))
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:  # SIGTERM then stops and cleans the workers like Ctrl-C
        previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with environment(env):
            measure(settings, results, Progress(total_steps(settings, args.latency_only)),
                    args.latency_only)
    except BenchError as err:
        print(f"agnoshm bench: {err}", file=sys.stderr)
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    results["targets"] = report.check_targets(results)  # in the JSON only
    _say(report.text(results))
    _say(f"\nresults: {report.write_json(results, args.json).resolve()}")
    if plot:
        written = report.write_plot(results, plot)
        _say(f"plot:    {written.resolve()}" if written else
             "no plot: matplotlib is not installed (pip install 'agnoshm[plot]')")
    verdict = report.verdict_text(results)
    if verdict:
        _say("\n" + verdict)
    _warn_leftovers(domain)
    return 0


def _check_writable(path: str, option: str) -> None:
    """Fail before measuring, not after, when the results cannot be saved."""
    parent = Path(path).resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CommandError(f"{option} {path!r}: cannot create {parent}: {err.strerror}") from None
    if Path(path).is_dir() or not os.access(parent, os.W_OK):
        raise CommandError(f"{option} {path!r}: not a writable file path")


def _warn_leftovers(domain: int) -> None:
    from agnoshm.names import SHM_DIR, registry_name

    path = SHM_DIR + registry_name(domain)
    if os.path.exists(path):
        print(f"agnoshm bench: warning: {path} is still there after every worker exited",
              file=sys.stderr)
