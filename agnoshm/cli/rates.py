"""``agnoshm topic hz`` and ``bw``: publish rate and bandwidth over a window of messages.

Both are zero-copy subscribers (:func:`agnoshm.cli.session.listen`).  The rate
comes from the publish timestamps, the bandwidth from the bytes each message
occupies in its publisher's pool (:func:`message_bytes`).  A report is printed
every second, and once more at ``--count``.  Missed messages are gaps in each
publisher's sequence numbers (they count per publisher).
"""

from __future__ import annotations

import math
import time
from collections import deque

from agnoshm.cli import snapshot as S
from agnoshm.cli.session import listen

REPORT_PERIOD_S = 1.0


class _Window:
    """The newest ``size`` messages: publish times and byte counts; a report every second."""

    def __init__(self, size: int, count: int | None):
        self.stamps: deque = deque(maxlen=size + 1)
        self.sizes: deque = deque(maxlen=size + 1)
        self.count = count
        self.received = 0
        self.missed = 0
        self._last_seq: dict[int, int] = {}  # per publisher record
        self._fresh = False
        self._next_report = time.monotonic() + REPORT_PERIOD_S

    def add(self, msg, nbytes: int = 0) -> None:
        """Count ``msg`` (a received view, or a lease from a raw subscription)."""
        publisher = getattr(msg, "_owner", msg).publisher
        seq = msg.seq
        last = self._last_seq.get(publisher)
        if last is not None and seq > last + 1:  # (lower: a new publisher in that record)
            self.missed += seq - last - 1
        self._last_seq[publisher] = seq
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
