"""``agnoshm bag``: record topics into a rosbag2 bag (MCAP), play a bag back, show a bag.

``record`` is a zero-copy subscriber that writes each message's CDR with its
publish time; ``play`` publishes a bag's messages at their recorded timing
(one copy each).  Ctrl-C or SIGTERM stops either cleanly: a recording is
always closed into a complete bag.  The logic lives in :mod:`agnoshm.bag`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from agnoshm.cli import CommandError, positive_int
from agnoshm.cli.snapshot import plural


def register(subparsers) -> None:
    p = subparsers.add_parser("bag", help="record agnoshm topics into a rosbag2 bag, play one back",
                              description="Record agnoshm topics into rosbag2 bags with MCAP "
                                          "storage, and play bags back into agnoshm topics.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    v = verbs.add_parser("record", help="record topics until --count, --duration or Ctrl-C")
    v.add_argument("topics", nargs="+", metavar="TOPIC")
    v.add_argument("-o", "--output", metavar="DIR",
                   help="bag directory to create (default: rosbag2_<date>-<time>)")
    v.add_argument("--count", type=positive_int, metavar="N",
                   help="stop after N messages (all topics together)")
    v.add_argument("-d", "--duration", type=_positive_float, metavar="SEC",
                   help="stop after SEC seconds")
    v.set_defaults(run=run_record)

    v = verbs.add_parser("play", help="publish a bag's messages at their recorded timing")
    v.add_argument("bag", metavar="DIR")
    v.add_argument("-r", "--rate", type=_positive_float, default=1.0, metavar="R",
                   help="playback speed factor (default 1.0)")
    v.add_argument("-l", "--loop", action="store_true", help="start over at the end")
    v.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these topics")
    v.add_argument("--wait-for-subscribers", action="store_true",
                   help="start once every played topic has a subscription")
    v.set_defaults(run=run_play)

    v = verbs.add_parser("info", help="print a bag's topics, types, counts and time span")
    v.add_argument("bag", metavar="DIR")
    v.set_defaults(run=run_info)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


class _Status:
    """A transient status line on stderr, only on a terminal (plain output otherwise)."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self._next = 0.0

    def show(self, text: str) -> None:
        now = time.monotonic()
        if self.tty and now >= self._next:
            self._next = now + 0.2
            sys.stderr.write(f"\r\033[K{text}")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


class _StopOnSignals:
    """Ctrl-C and SIGTERM set an event instead of raising, so files are closed cleanly."""

    def __init__(self):
        self.event = threading.Event()
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, lambda *_: self.event.set())
        return self.event

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_record(args) -> int:
    from agnoshm.bag import BagError, record
    from agnoshm.cli.snapshot import normalize_topic

    output = args.output or time.strftime("rosbag2_%Y_%m_%d-%H_%M_%S")
    topics = list(dict.fromkeys(normalize_topic(t) for t in args.topics))
    status = _Status()

    def opened(path):
        print(f"recording {', '.join(topics)} to {path}", file=sys.stderr)

    def waiting(names):
        print(f"waiting for {', '.join(names)} to appear", file=sys.stderr)

    with _StopOnSignals() as stop:
        try:
            summary = record(output, topics, count=args.count, duration=args.duration, stop=stop,
                             on_message=lambda _t, n: status.show(plural(n, "message")),
                             on_waiting=waiting, on_open=opened)
        except BagError as err:
            raise CommandError(str(err)) from None
        finally:
            status.clear()
    span = (summary.last_ns - summary.first_ns) / 1e9 if summary.messages else 0.0
    per_topic = ", ".join(f"{t}: {n}" for t, n in summary.counts.items())
    print(f"recorded {plural(summary.messages, 'message')} ({per_topic}) over {span:.3f} s to "
          f"{summary.path}")
    return 0


def run_play(args) -> int:
    from agnoshm.bag import BagError, play
    from agnoshm.cli.snapshot import normalize_topic

    status = _Status()
    topics = [normalize_topic(t) for t in args.topics] if args.topics else None
    with _StopOnSignals() as stop:
        try:
            summary = play(args.bag, rate=args.rate, loop=args.loop, topics=topics,
                           wait_for_subscribers=args.wait_for_subscribers, stop=stop,
                           on_message=lambda _t, n: status.show(f"{plural(n, 'message')} published"))
        except BagError as err:
            raise CommandError(str(err)) from None
        finally:
            status.clear()
    per_topic = ", ".join(f"{t}: {n}" for t, n in summary.counts.items())
    print(f"published {plural(summary.messages, 'message')} ({per_topic}) from {summary.path}")
    return 0


def _metadata(bag: str) -> dict:
    import yaml
    from pathlib import Path

    try:
        data = yaml.safe_load((Path(bag) / "metadata.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return data.get("rosbag2_bagfile_information", {}) if isinstance(data, dict) else {}


def run_info(args) -> int:
    from rosbags.rosbag2 import Reader

    from agnoshm.bag import CLOCK_OFFSET_KEY

    try:
        reader = Reader(args.bag)
        reader.open()
    except Exception as err:  # ReaderError, or OSError for a missing directory
        raise CommandError(f"cannot read bag {args.bag}: {err}") from None
    try:
        start, end = reader.start_time, reader.end_time
        print(f"Bag: {args.bag}")
        info = _metadata(args.bag)
        print(f"Storage: {info.get('storage_identifier', '?')}, "
              f"rosbag2 version {info.get('version', '?')}")
        offset = (info.get("custom_data") or {}).get(CLOCK_OFFSET_KEY)
        if offset is not None:
            print(f"Recorded by agnoshm: CLOCK_MONOTONIC + {int(offset)} ns = wall time")
        print(f"Messages: {reader.message_count}")
        if reader.message_count:
            print(f"Duration: {(end - start) / 1e9:.3f} s")
            print(f"Start: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(start / 1e9))}"
                  f".{start % 1_000_000_000:09d} ({start} ns)")
        print("Topics:")
        for c in reader.connections:
            print(f"  {c.topic}: {c.msgtype} ({plural(c.msgcount, 'message')})")
    finally:
        reader.close()
    return 0
