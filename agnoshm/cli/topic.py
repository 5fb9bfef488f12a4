"""``agnoshm topic``: list, info, echo, hz and bw, shaped like ``ros2 topic``.

``list`` and ``info`` read the registry without joining the domain
(:mod:`agnoshm.cli.snapshot`).  ``echo``, ``hz`` and ``bw`` are zero-copy
subscribers themselves: they join the domain as a process, read messages in
place in the publishers' pools, and leave it when they stop (``--count``,
``--once``, Ctrl-C or SIGTERM).

This module registers the verbs and runs ``list``, ``info`` and ``echo``.
Joining the domain and subscribing live in :mod:`agnoshm.cli.session`, echo's
YAML output in :mod:`agnoshm.cli.render`, and ``hz``/``bw`` in
:mod:`agnoshm.cli.rates`.
"""

from __future__ import annotations

import sys
import time

from agnoshm.cli import CommandError, positive_int
from agnoshm.cli import snapshot as S
from agnoshm.cli.rates import run_bw, run_hz
from agnoshm.cli.render import Format, field_lines, raw_lines, render
from agnoshm.cli.session import listen, resolve_topic
from agnoshm.memory import BACKENDS
from agnoshm.msg.srv import service_of_topic

DEFAULT_TRUNCATE = 16


def register(subparsers) -> None:
    p = subparsers.add_parser("topic", help="list, inspect and listen to agnoshm topics",
                              description="Inspect the zero-copy topics of this ROS domain "
                                          "(ROS_DOMAIN_ID).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    v = verbs.add_parser("list", help="print the topics")
    v.add_argument("-t", "--show-types", action="store_true", help="also print each topic's type")
    v.add_argument("-v", "--verbose", action="store_true",
                   help="group by published/subscribed, with endpoint counts")
    v.add_argument("--include-hidden-topics", action="store_true",
                   help="also print the topics of services (/rq/..Request, /rr/..Reply)")
    v.set_defaults(run=run_list)

    v = verbs.add_parser("info", help="print a topic's type, QoS, endpoints, pools and live messages")
    v.add_argument("topic", metavar="TOPIC")
    v.add_argument("-v", "--verbose", action="store_true",
                   help="list every live message (seq, address, size, age, holders)")
    v.set_defaults(run=run_info)

    v = verbs.add_parser("echo", help="print the messages of a topic (zero-copy subscriber)")
    _add_subscriber_arguments(v)
    v.add_argument("--once", action="store_true", help="print one message and exit")
    v.add_argument("--count", type=positive_int, metavar="N", help="exit after N messages")
    v.add_argument("--field", metavar="A.B", help="print only this field of each message")
    v.add_argument("--raw", action="store_true",
                   help="print each message's root struct as hex (for types agnoshm cannot "
                        "resolve here)")
    v.add_argument("--no-arr", action="store_true", help="print arrays as their length only")
    v.add_argument("--truncate-length", type=positive_int, default=DEFAULT_TRUNCATE, metavar="N",
                   help=f"show at most N elements of an array (default {DEFAULT_TRUNCATE})")
    v.add_argument("--full-length", action="store_true", help="show arrays in full")
    v.add_argument("--meta", action="store_true",
                   help="print each message's seq and publish time (CLOCK_MONOTONIC ns) first")
    v.set_defaults(run=run_echo)

    v = verbs.add_parser("hz", help="print the publish rate of a topic (zero-copy subscriber)")
    _add_subscriber_arguments(v)
    v.add_argument("-w", "--window", type=positive_int, default=10000, metavar="N",
                   help="messages the statistics cover (default 10000)")
    v.add_argument("--count", type=positive_int, metavar="N",
                   help="print the statistics after N messages and exit")
    v.set_defaults(run=run_hz)

    v = verbs.add_parser("bw", help="print the bandwidth of a topic (zero-copy subscriber)")
    _add_subscriber_arguments(v)
    v.add_argument("-w", "--window", type=positive_int, default=100, metavar="N",
                   help="messages the statistics cover (default 100)")
    v.add_argument("--count", type=positive_int, metavar="N",
                   help="print the statistics after N messages and exit")
    v.set_defaults(run=run_bw)


def _add_subscriber_arguments(v) -> None:
    v.add_argument("topic", metavar="TOPIC")
    v.add_argument("type", nargs="?", metavar="TYPE",
                   help="message type (pkg/msg/Name); default: the topic's, from the registry")
    v.add_argument("--qos-depth", type=positive_int, default=None, metavar="N",
                   help="subscription depth (default: the largest publisher depth, at least 10)")
    v.add_argument("--qos-durability", choices=("volatile", "transient_local"),
                   help="default: transient_local if every publisher is, else volatile")


# -- list and info -------------------------------------------------------------------------


def run_list(args) -> int:
    snap = S.read()
    if not args.include_hidden_topics:  # as ros2 topic list hides services' topics
        snap.topics = [t for t in snap.topics if service_of_topic(t.name, t.type_name) is None]
    if not args.verbose:
        for t in snap.topics:
            print(f"{t.name} [{t.type_name}]" if args.show_types else t.name)
        return 0
    published = [t for t in snap.topics if t.publishers]
    subscribed = [t for t in snap.topics if t.subscriptions]
    print("Published topics:")
    for t in published:
        print(f" * {t.name} [{t.type_name}] {S.plural(len(t.publishers), 'publisher')}")
    print("\nSubscribed topics:")
    for t in subscribed:
        print(f" * {t.name} [{t.type_name}] {S.plural(len(t.subscriptions), 'subscriber')}")
    return 0


def _process_text(p: S.Process | None) -> str:
    if p is None:
        return "unknown process"
    state = "alive" if p.alive else "DEAD (reaped at the next registry operation)"
    return f"pid {p.pid} ({p.name}), slot {p.slot}, {state}"


def _pool_text(p: S.Process | None) -> str:
    if p is None:
        return "unknown"
    backend = BACKENDS.get(p.backend)
    where = (backend and backend.path(p.pid)) or f"{p.backend} {p.pool_name.lstrip('/')}"
    return f"{where} at 0x{p.pool_address:x}..0x{p.pool_address + p.pool_size:x} " \
           f"({S.size_text(p.pool_size)}, {p.backend})"


def run_info(args) -> int:
    snap = S.read()
    t = snap.topic(args.topic)
    now = time.monotonic_ns()
    print(f"Topic: {t.name}")
    print(f"Type: {t.type_name}")
    print(f"Type hash: {t.type_hash}")
    print(f"Messages published: {t.published}")
    print(f"Publisher count: {len(t.publishers)}")
    print(f"Subscription count: {len(t.subscriptions)}")
    for pub in t.publishers:
        print()
        print(f"Publisher: {pub.node_name}")
        print(f"  Process: {_process_text(pub.process)}")
        print(f"  Pool: {_pool_text(pub.process)}")
        print(f"  QoS: KEEP_LAST depth {pub.depth}, {pub.durability}, RELIABLE")
        print(f"  Published: {pub.published}")
        held = sum(1 for e in pub.entries if e.refs)
        if pub.entries:
            first, last = pub.entries[0].seq, pub.entries[-1].seq
            print(f"  Live messages: {len(pub.entries)} (seq {first}..{last}, root structs "
                  f"{S.size_text(sum(e.size for e in pub.entries))}), {held} held by subscribers")
        else:
            print("  Live messages: 0")
        if args.verbose:
            for e in pub.entries:
                holders = [s.node_name for s in t.subscriptions if e.refs >> s.bit & 1]
                age = (now - e.timestamp_ns) / 1e9
                print(f"    seq {e.seq}: 0x{e.address:x} {e.size} B, published {age:.3f} s ago"
                      + (f", held by {', '.join(holders)}" if holders else ""))
    for sub in t.subscriptions:
        print()
        print(f"Subscription: {sub.node_name}" + (" (destroyed, draining)" if sub.draining else ""))
        print(f"  Process: {_process_text(sub.process)}")
        print(f"  QoS: KEEP_LAST depth {sub.depth}, {sub.durability}, RELIABLE")
        print(f"  Received: {sub.received}, holding {sub.held}")
    return 0


# -- echo ----------------------------------------------------------------------------------


def run_echo(args) -> int:
    if args.raw and args.field:
        raise CommandError("--field needs the message type; --raw prints the root struct only")
    limit = args.count or (1 if args.once else None)
    fields = _check_field_path(args) if args.field else []
    options = Format(no_arr=args.no_arr,
                     limit=None if args.full_length else args.truncate_length)
    printed = 0

    def on_message(msg) -> bool:
        nonlocal printed
        if msg is None:
            return False
        lines = []
        if args.meta or args.raw:
            lines += [f"# seq: {msg.seq}", f"# timestamp_ns: {msg.timestamp_ns}"]
        if args.raw:
            lines += raw_lines(msg)
        else:
            lines += field_lines(msg, fields, options) if fields else render(msg, options)
        sys.stdout.write("\n".join(lines + ["---"]) + "\n")
        sys.stdout.flush()
        printed += 1
        return limit is not None and printed >= limit

    return listen(args, "echo", on_message)


def _check_field_path(args) -> list[str]:
    from agnoshm.msg import layout as ML
    from agnoshm.msg import get_message
    from agnoshm.errors import TypeMismatchError

    _name, topic, _ = resolve_topic(args)
    try:
        layout = get_message(args.type or topic.type_name).layout
    except TypeMismatchError as err:
        raise CommandError(str(err)) from None
    path = args.field.split(".")
    for i, part in enumerate(path):
        if layout is None:
            raise CommandError(f"invalid field {args.field!r}: {'.'.join(path[:i])} has no fields")
        try:
            value = layout.field(part).value
        except KeyError:
            names = ", ".join(f.name for f in layout.fields if not layout.is_empty)
            raise CommandError(f"invalid field {args.field!r}: {layout.type_name} has no field "
                               f"{part!r} (fields: {names or 'none'})") from None
        layout = value.struct if value.kind == ML.MESSAGE else None
    return path
