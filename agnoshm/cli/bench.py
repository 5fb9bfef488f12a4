"""``agnoshm bench``: measure agnoshm against copy baselines on this machine.

Runs, in a private ``ROS_DOMAIN_ID``: latency per size (agnoshm, then the
socket and shm-copy baselines, size by size), throughput, fan-out cost of
``publish()`` and the busy-poll comparison; prints the tables, writes the
JSON (and a PNG if matplotlib is importable).  A slow machine never fails
the command; only a real error does (exit status 1).
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
from agnoshm.bench import report
from agnoshm.bench.baselines import TRANSPORTS, CopyPair
from agnoshm.bench.messages import measure_messages
from agnoshm.bench.latency import AgnoshmPair, measure_busy_poll
from agnoshm.cli import CommandError, positive_int

DEFAULT_JSON = "bench-results/agnoshm-bench.json"
MIN_SIZE = 16
MAX_SIZE = 1 << 30
QUICK = {"samples": 200, "warmup": 20}
FULL = {"samples": 2000, "warmup": 100}


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
                   help=f"{QUICK['samples']} samples per size (well under a minute) instead of "
                        f"{FULL['samples']}")
    p.add_argument("--sizes", type=parse_sizes, metavar="LIST",
                   help="comma-separated payload sizes in bytes, K or M, e.g. 64,4K,1M "
                        "(default: 64,4K,64K,1M,4M,16M)")
    p.add_argument("--samples", type=positive_int, metavar="N",
                   help="measured messages per size and transport")
    p.add_argument("--json", default=DEFAULT_JSON, metavar="PATH",
                   help=f"where to write all results (default: {DEFAULT_JSON})")
    p.add_argument("--plot", metavar="PATH",
                   help="also draw latency against size as a PNG (needs matplotlib)")
    p.add_argument("--backend", choices=("shm", "memfd"),
                   help="agnoshm pool backend (default: AGNOSHM_BACKEND or shm)")
    p.set_defaults(run=run)


def settings_from(args: argparse.Namespace) -> Settings:
    preset = QUICK if args.quick else FULL
    return Settings(sizes=args.sizes or DEFAULT_SIZES,
                    samples=args.samples or preset["samples"],
                    warmup=preset["warmup"],
                    backend=args.backend or os.environ.get("AGNOSHM_BACKEND") or "shm")


class Progress:
    """Progress on stderr: a line per finished step; on a TTY also a transient status line."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def status(self, text: str) -> None:
        if self.tty:
            self.stream.write(f"\r\033[K{text}")
            self.stream.flush()

    def line(self, text: str) -> None:
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()


def measure(settings: Settings, results: dict, progress: Progress) -> None:
    """Fill ``results`` with every measurement; workers are gone when this returns."""
    pairs = []
    try:
        progress.status("starting worker processes ...")
        agnoshm_pair = AgnoshmPair(settings)
        pairs.append(agnoshm_pair)
        copy_pair = CopyPair(settings)
        pairs.append(copy_pair)
        count = len(settings.sizes)
        for i, size in enumerate(settings.sizes, 1):
            parts = []
            for transport in ("agnoshm", *TRANSPORTS):
                progress.status(f"[{i}/{count}] {report.size_label(size)}: {transport} ...")
                row = agnoshm_pair.latency(size) if transport == "agnoshm" \
                    else copy_pair.latency(transport, size)
                results["latency"].append(row)
                parts.append(f"{transport} p50 {row['p50_us']:,.1f} p99 {row['p99_us']:,.1f}")
            progress.line(f"[{i}/{count}] {report.size_label(size)}: " + " | ".join(parts) + " us")
        pairs.remove(copy_pair)
        copy_pair.close()
        progress.status("throughput ...")
        t = results["throughput"] = agnoshm_pair.throughput()
        progress.line(f"throughput: {t['received_per_s']:,.0f} msgs/s received")
        progress.status(f"fan-out to {settings.fanout_subscriptions} subscriptions ...")
        f = results["fanout"] = agnoshm_pair.fanout()
        progress.line(f"fan-out: publish() p50 {f['p50_us']:,.1f} us, p99 {f['p99_us']:,.1f} us")
    finally:
        for pair in reversed(pairs):
            pair.close()
    progress.status("busy-poll comparison ...")
    results["busy_poll"] = measure_busy_poll(
        settings, lambda row: progress.line(report.progress_line(row)))
    progress.status("typed messages ...")
    results["messages"] = measure_messages(settings.samples, settings.warmup,
                                           settings.interval_s, progress.line)


def _stop(signum, frame):
    raise KeyboardInterrupt


def _invocation() -> str:
    name = os.path.basename(sys.argv[0] or "")
    return "python -m agnoshm" if name in ("__main__.py", "-m", "") else name


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.plot and not args.plot.lower().endswith(".png"):
        raise CommandError(f"--plot {args.plot!r}: the plot is a PNG, name it *.png")
    if args.plot:
        _check_writable(args.plot, "--plot")
    domain = private_domain_id()
    command = " ".join([_invocation(), *map(shlex.quote, args.argv)])
    results = report.new_results(settings, command, ros_domain_id=domain)
    env = {"ROS_DOMAIN_ID": str(domain), "AGNOSHM_BACKEND": settings.backend,
           "AGNOSHM_BUSY_POLL_US": "0"}
    _check_writable(args.json, "--json")
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:  # SIGTERM then stops and cleans the workers like Ctrl-C
        previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with environment(env):
            measure(settings, results, Progress())
    except BenchError as err:
        print(f"agnoshm bench: {err}", file=sys.stderr)
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    results["targets"] = report.check_targets(results)
    print(report.text(results))
    path = report.write_json(results, args.json)
    print(f"\nresults written to {path}")
    if args.plot:
        plot = report.write_plot(results, args.plot)
        print(f"plot written to {plot}" if plot else
              "no plot: matplotlib is not installed (pip install matplotlib)")
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
