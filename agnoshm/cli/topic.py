"""``agnoshm topic``: list, info, echo, hz and bw, shaped like ``ros2 topic``.

``list`` and ``info`` read the registry without joining the domain
(:mod:`agnoshm.cli.snapshot`).  ``echo``, ``hz`` and ``bw`` are zero-copy
subscribers themselves: they join the domain as a process, read messages in
place in the publishers' pools, and leave it when they stop (``--count``,
``--once``, Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import math
import os
import re
import signal
import sys
import threading
import time
from collections import deque

from agnoshm.cli import CommandError, positive_int
from agnoshm.cli import snapshot as S

DEFAULT_TRUNCATE = 16
REPORT_PERIOD_S = 1.0


def register(subparsers) -> None:
    p = subparsers.add_parser("topic", help="list, inspect and listen to agnoshm topics",
                              description="Inspect the zero-copy topics of this ROS domain "
                                          "(ROS_DOMAIN_ID).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    v = verbs.add_parser("list", help="print the topics")
    v.add_argument("-t", "--show-types", action="store_true", help="also print each topic's type")
    v.add_argument("-v", "--verbose", action="store_true",
                   help="group by published/subscribed, with endpoint counts")
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
    where = f"/dev/shm{p.pool_name}" if p.backend == "shm" else f"memfd {p.pool_name.lstrip('/')}"
    return f"{where} at 0x{p.pool_address:x}..0x{p.pool_address + p.pool_size:x} " \
           f"({S.size_text(p.pool_size)}, {p.backend})"


def run_info(args) -> int:
    snap = S.read()
    t = snap.topic(args.topic)
    now = time.monotonic_ns()
    print(f"Topic: {t.name}")
    print(f"Type: {t.type_name}")
    print(f"Type hash: {t.type_hash}")
    print(f"Messages published: {t.seq}")
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
        print(f"  Received: {sub.received} (up to seq {sub.last_seq}), holding {sub.held}")
    return 0


# -- joining the domain: echo, hz, bw, bag record -------------------------------------------


def _stop(signum, frame):
    raise KeyboardInterrupt


class Session:
    """This CLI process as a member of the domain: one node, a wait loop on the doorbell,
    SIGTERM handled like Ctrl-C, and agnoshm shut down at the end if this session started it.
    """

    def __init__(self, purpose: str):
        import agnoshm

        self._started = not agnoshm.ok()
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, _stop)
        try:
            self.node = agnoshm.Node(f"_agnoshm_{purpose}_{os.getpid()}")
            self.runtime = self.node._runtime
        except BaseException:
            self.close()
            raise

    def subscribe(self, msg_type, topic: str, depth: int, durability: str):
        """A polling subscription (``take()``) on ``topic``."""
        import agnoshm

        qos = agnoshm.QoSProfile(depth=depth, durability=durability_policy(durability))
        return self.node.create_polling_subscription(msg_type, topic, qos)

    def subscribe_raw(self, topic: S.Topic, depth: int, durability: str) -> "RawSubscription":
        """A subscription that delivers leases (address, size, pool) instead of typed views."""
        port = self.runtime.create_subscriber_port(
            topic.name, topic.type_name, topic.type_hash, depth,
            int(durability_policy(durability)), self.node.get_fully_qualified_name())
        return RawSubscription(port)

    def wait(self, seen: int, timeout_sec: float) -> None:
        self.runtime.doorbell.wait(seen, timeout_sec)

    def doorbell(self) -> int:
        return self.runtime.doorbell.value()

    def close(self) -> None:
        import agnoshm

        node = getattr(self, "node", None)
        if node is not None:
            node.destroy_node()
        if self._started:
            agnoshm.shutdown()
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawSubscription:
    """``take()`` returns a lease: the message's address, size and mapped pool; untyped."""

    def __init__(self, port):
        self.port = port

    def take(self):
        leases = self.port.take(1) if self.port.has_data() else []
        return leases[0] if leases else None

    def destroy(self) -> None:
        self.port.destroy()


def durability_policy(name: str):
    """``"volatile"`` / ``"transient_local"`` -> :class:`agnoshm.DurabilityPolicy`."""
    from agnoshm.qos import DurabilityPolicy

    return DurabilityPolicy[name.upper()]


def subscription_qos(topic: S.Topic | None, depth: int | None, durability: str | None):
    """``(depth, durability)``: what was asked, else what matches the topic's publishers."""
    pubs = topic.publishers if topic else []
    if durability is None:
        durability = "transient_local" if pubs and all(
            p.durability == "TRANSIENT_LOCAL" for p in pubs) else "volatile"
    if depth is None:
        depth = max([10] + [p.depth for p in pubs])
    return depth, durability


def resolve_topic(args):
    """``(topic name, snapshot topic or None, MessageType or None, raw)`` for a subscriber verb.

    :raises NotFoundError: for an unknown topic when no type was given.
    :raises CommandError: when the type cannot be resolved (pointing to ``--raw``).
    """
    from agnoshm.msg import resolve_type
    from agnoshm.errors import TypeMismatchError

    name = S.normalize_topic(args.topic)
    topic = None
    try:
        topic = S.read().topic(name)
    except (S.NoRegistryError, S.NotFoundError) as err:
        if args.type is None:
            raise type(err)(f"{err}; give its TYPE to wait for it "
                            f"(agnoshm topic {args.verb} {name} pkg/msg/Name)") from None
    type_name = args.type or topic.type_name
    if getattr(args, "raw", False):
        if topic is None:
            raise S.NotFoundError(f"--raw needs the topic {name} to exist (it takes the type "
                                  "hash from the registry)")
        return name, topic, None
    try:
        msg_type = resolve_type(type_name)
    except TypeMismatchError as err:
        hint = f" or print raw bytes: agnoshm topic echo {name} --raw" \
            if args.verb == "echo" else ""
        raise CommandError(f"cannot resolve {type_name}, the type of {name}: {err}"
                           f"{hint}") from None
    if topic is not None and msg_type.type_name != topic.type_name:
        raise CommandError(f"{name} carries {topic.type_name}, not {msg_type.type_name}")
    return name, topic, msg_type


def listen(args, purpose: str, on_message, on_subscribed=None) -> int:
    """Subscribe to ``args.topic`` and call ``on_message(msg)`` for each message, and
    ``on_message(None)`` at least every 0.2 s while none comes, until it returns True or
    Ctrl-C / SIGTERM arrives; ``on_subscribed()`` runs once the subscription exists."""
    name, topic, msg_type = resolve_topic(args)
    depth, durability = subscription_qos(topic, args.qos_depth, args.qos_durability)
    with Session(purpose) as session:
        if msg_type is None:
            sub = session.subscribe_raw(topic, depth, durability)
        else:
            sub = session.subscribe(msg_type, name, depth, durability)
        if on_subscribed is not None:
            on_subscribed()
        try:
            while True:
                seen = session.doorbell()
                msg = sub.take()
                if msg is None:
                    if on_message(None):
                        return 0
                    session.wait(seen, 0.2)
                    continue
                while msg is not None:
                    if on_message(msg):
                        return 0
                    msg = sub.take()
        except KeyboardInterrupt:
            return 0
        finally:
            sub.destroy()


# -- echo ----------------------------------------------------------------------------------


def run_echo(args) -> int:
    if args.raw and args.field:
        raise CommandError("--field needs the message type; --raw prints the root struct only")
    limit = args.count or (1 if args.once else None)
    fields = _check_field_path(args) if args.field else []
    options = _Format(no_arr=args.no_arr,
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
            lines += _raw_lines(msg)
        else:
            lines += _field_lines(msg, fields, options) if fields else render(msg, options)
        sys.stdout.write("\n".join(lines + ["---"]) + "\n")
        sys.stdout.flush()
        printed += 1
        return limit is not None and printed >= limit

    return listen(args, "echo", on_message)


def _check_field_path(args) -> list[str]:
    from agnoshm.msg import layout as ML
    from agnoshm.msg import resolve_type
    from agnoshm.errors import TypeMismatchError

    _name, topic, _ = resolve_topic(args)
    try:
        layout = resolve_type(args.type or topic.type_name).layout
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


class _Format:
    def __init__(self, no_arr: bool, limit: int | None):
        self.no_arr = no_arr
        self.limit = limit


def _field_lines(msg, path: list[str], options: _Format) -> list[str]:
    value = msg
    for part in path:
        value = getattr(value, part)
    if _is_mapping(value):
        return render(value, options)
    if _is_sequence(value):
        return _sequence_lines("", None, value, options, 0)
    return [_scalar(value)]


def render(value, options: _Format, indent: int = 0) -> list[str]:
    """A message (view, dict or structured row) as ``ros2 topic echo``-like YAML lines."""
    lines = []
    pad = "  " * indent
    for name, item in _items(value):
        if _is_mapping(item):
            inner = render(item, options, indent + 1)
            lines += [f"{pad}{name}:"] + inner if inner else [f"{pad}{name}: {{}}"]
        elif _is_sequence(item):
            lines += _sequence_lines(pad, name, item, options, indent)
        else:
            lines.append(f"{pad}{name}: {_scalar(item)}")
    return lines


def _sequence_lines(pad: str, name: str | None, items, options: _Format, indent: int) -> list[str]:
    import numpy as np

    key = f"{pad}{name}: " if name is not None else ""
    n = len(items)
    if options.no_arr:
        return [f"{key}<array of {n} {_element_kind(items)}>"]
    shown = items if options.limit is None else items[:options.limit]
    more = n - len(shown)
    if n and (_is_mapping(shown[0]) or (isinstance(shown, np.ndarray) and shown.dtype.names)):
        lines = [f"{pad}{name}:"] if name is not None else []
        for element in shown:
            inner = render(element, options, indent + 1)
            lines.append(f"{pad}- " + (inner[0].lstrip() if inner else "{}"))
            lines += inner[1:]
        if more:
            lines.append(f"{pad}- '...'  # {n} items")
        return lines
    values = shown.tolist() if isinstance(shown, np.ndarray) else list(shown)
    text = ", ".join(_scalar(v) for v in values)
    if more:
        return [f"{key}[{text}, '...']  # {n} items"]
    return [f"{key}[{text}]"]


def _element_kind(items) -> str:
    import numpy as np

    if isinstance(items, np.ndarray):
        return str(items.dtype) if not items.dtype.names else "messages"
    return "items"


def _items(value):
    import numpy as np

    if isinstance(value, dict):
        return value.items()
    if isinstance(value, np.void):
        return [(n, value[n]) for n in value.dtype.names if not n.startswith("structure_needs")]
    return [(n, getattr(value, n)) for n in value.get_fields_and_field_types()]


def _is_mapping(value) -> bool:
    import numpy as np

    if isinstance(value, dict):
        return True
    if isinstance(value, np.void):
        return bool(value.dtype.names)
    return hasattr(value, "get_fields_and_field_types")


def _is_sequence(value) -> bool:
    import numpy as np

    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0)


_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_ ./()+-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(value) -> str:
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _YAML_WORDS and not value.endswith(" "):
            return value
        if value.isprintable():
            return "'" + value.replace("'", "''") + "'"
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    return str(value)


def _raw_lines(lease) -> list[str]:
    """The root struct of a message as a hex dump (``hexdump -C`` style)."""
    pool = lease.pool
    offset = lease.address - pool.address
    data = bytes(pool.buffer[offset:offset + lease.size])
    lines = [f"# address: 0x{lease.address:x} in {pool.name}",
             f"# root struct: {lease.size} bytes (strings and sequences point elsewhere in the "
             "pool)", "raw: |"]
    for at in range(0, len(data), 16):
        chunk = data[at:at + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"  {at:08x}  {hexes:<47}  |{text}|")
    return lines


# -- hz and bw -----------------------------------------------------------------------------


class _Window:
    """The newest ``size`` messages: publish times and byte counts; a report every second."""

    def __init__(self, size: int, count: int | None):
        self.stamps: deque = deque(maxlen=size + 1)
        self.sizes: deque = deque(maxlen=size + 1)
        self.count = count
        self.received = 0
        self.missed = 0
        self._last_seq = None
        self._fresh = False
        self._next_report = time.monotonic() + REPORT_PERIOD_S

    def add(self, msg, nbytes: int = 0) -> None:
        if self._last_seq is not None and msg.seq > self._last_seq + 1:
            self.missed += msg.seq - self._last_seq - 1
        self._last_seq = msg.seq
        self.stamps.append(msg.timestamp_ns)
        self.sizes.append(nbytes)
        self.received += 1
        self._fresh = True

    def done(self) -> bool:
        return self.count is not None and self.received >= self.count

    def due(self) -> bool:
        """True once a second; also says whether messages came since the last report."""
        now = time.monotonic()
        if now < self._next_report:
            return False
        self._next_report = now + REPORT_PERIOD_S
        return True

    def take_fresh(self) -> bool:
        fresh, self._fresh = self._fresh, False
        return fresh


def run_hz(args) -> int:
    window = _Window(args.window, args.count)

    def report() -> None:
        stamps = list(window.stamps)
        if len(stamps) < 2:
            print("no new messages" if not stamps else "waiting for a second message")
            return
        deltas = [(b - a) / 1e9 for a, b in zip(stamps, stamps[1:])]
        mean = sum(deltas) / len(deltas)
        std = math.sqrt(sum((d - mean) ** 2 for d in deltas) / len(deltas))
        rate = 1.0 / mean if mean > 0 else float("inf")
        print(f"average rate: {rate:.3f}\n\tmin: {min(deltas):.3f}s max: {max(deltas):.3f}s "
              f"std dev: {std:.5f}s window: {len(stamps)}"
              + (f" missed: {window.missed}" if window.missed else ""), flush=True)

    return _measure(args, "hz", window, report, with_size=False)


def run_bw(args) -> int:
    window = _Window(args.window, args.count)

    def report() -> None:
        stamps, sizes = list(window.stamps), list(window.sizes)
        if len(stamps) < 2:
            print("no new messages" if not stamps else "waiting for a second message")
            return
        span = (stamps[-1] - stamps[0]) / 1e9
        rate = sum(sizes[1:]) / span if span > 0 else float("inf")
        mean = sum(sizes) / len(sizes)
        print(f"{S.size_text(rate)}/s from {len(sizes)} messages\n\tMessage size mean: "
              f"{S.size_text(mean)} min: {S.size_text(min(sizes))} max: "
              f"{S.size_text(max(sizes))}", flush=True)

    return _measure(args, "bw", window, report, with_size=True)


def _measure(args, purpose: str, window: _Window, report, with_size: bool) -> int:
    def on_message(msg) -> bool:
        if msg is not None:
            window.add(msg, message_bytes(msg) if with_size else 0)
            if window.done():
                report()
                return True
        if window.due():
            if window.take_fresh():
                report()
            else:
                print("no new messages", flush=True)
        return False

    return listen(args, purpose, on_message, lambda: print(
        f"subscribed to [{S.normalize_topic(args.topic)}]", flush=True))


def message_bytes(view) -> int:
    """Bytes a message occupies in its publisher's pool: its root struct plus the storage
    of its strings and sequences (allocator overhead not counted)."""
    return view._layout.size + _heap_bytes(view, view._layout)


def _heap_bytes(value, layout) -> int:
    from agnoshm.msg import layout as ML

    if layout.is_empty or not layout.holds_pointers:
        return 0
    total = 0
    for f in layout.fields:
        v = f.value
        if not v.holds_pointers:
            continue
        item = getattr(value, f.name)
        total += _value_heap_bytes(item, v, ML)
    return total


def _value_heap_bytes(item, v, ML) -> int:
    if v.kind == ML.STRING_KIND:
        return len(item.encode()) + 1
    if v.kind == ML.WSTRING_KIND:
        return (len(item.encode("utf-16-le")) // 2 + 1) * 2
    if v.kind == ML.MESSAGE:
        return _heap_bytes(item, v.struct)
    element = v.element
    total = len(item) * element.size if v.kind == ML.SEQUENCE else 0
    if element.holds_pointers:
        total += sum(_value_heap_bytes(x, element, ML) for x in item)
    return total
