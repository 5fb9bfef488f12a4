"""Test-only fault injection: SIGKILL this process at a named step.

Off by default.  When the environment variable ``AGNOSHM_FAULT`` is set at
import, e.g. ``AGNOSHM_FAULT=publish.inside:3``, the process kills itself with
``SIGKILL`` the 3rd time it passes the point ``publish.inside`` (the count
defaults to 1).  The call sites cost one global bool check when off::

    from agnoshm import faults
    ...
    if faults.ARMED:
        faults.hit("publish.inside")

This module is in the system layer: it imports nothing of agnoshm.  The
campaign (``test/registry/test_campaign.py``, ``scripts/fault_campaign.py``)
runs every point of :data:`FAULT_POINTS`; ``docs/reliability.md`` says what
each death leaves behind and who cleans it up.
"""

from __future__ import annotations

import os
import signal

ENV = "AGNOSHM_FAULT"

#: Every point, in the order a process passes them, with where exactly it dies.
FAULT_POINTS: dict[str, str] = {
    "init.joined": "agnoshm.init(): joined the registry (slot recorded), no pool, queue or "
                   "listener yet",
    "init.pool": "agnoshm.init(): pool created in /dev/shm, announcement queue not yet",
    "init.queue": "agnoshm.init(): announcement queue created, listener thread not started",
    "subscription.registered": "create_subscription: global and topic lock held, record "
                               "written, not yet linked into the topic",
    "publisher.registered": "create_publisher: global and topic lock held, record written, "
                            "not yet linked into the topic",
    "publisher.announce": "create_publisher: registered, before sending each announcement to "
                          "a subscribing process's /new_publisher@pid",
    "borrow": "borrow_loaned_message(): the message's block allocated in the pool, not "
              "published",
    "publish.before": "publish(): nothing of the message written to the channel yet",
    "publish.inside": "publish(): the entry written (seq last), not yet in the log nor the head",
    "publish.logged": "publish(): the log names the entry, the head not yet moved to it",
    "publish.after": "publish(): head moved, the entry that left the depth withdrawn, sleeping "
                     "processes not yet rung, the withdrawn entry not yet freed",
    "take.claimed": "take(): hold counts raised in the receipts, not yet checked against the "
                    "entries (a message may be taken back)",
    "take.inside": "take(): holds checked, cursors and held count not yet written",
    "take.after": "take(): messages held and leases built, not yet handed to the caller",
    "release.inside": "releasing a received message: its hold count lowered in the receipts, "
                      "the held count not yet",
    "reclaim.inside": "the owner reclaiming: an entry withdrawn (seq 0), its holds not yet read, "
                      "its blocks not yet returned to the allocator",
    "reap.inside": "reaping a dead process: global lock held, the dead process's endpoints "
                   "removed, its pool and queue not yet unlinked, its slot not yet freed",
    "repair.inside": "Registry.repair() after a dead lock owner: global lock held, topic lists "
                     "fixed, unlinked records and dead processes not yet reclaimed",
    "shutdown.leave": "agnoshm.shutdown(): own pool and queue unlinked, registry not yet left",
}

ARMED = False
_point: str | None = None
_target = 0
_hits = 0


def parse(spec: str) -> tuple[str, int]:
    """``"name"`` or ``"name:N"`` -> ``(name, N)``.

    :raises ValueError: for an unknown point or a count below 1.
    """
    name, _, count = spec.strip().partition(":")
    if name not in FAULT_POINTS:
        raise ValueError(f"{ENV}={spec!r}: unknown fault point {name!r}; known points: "
                         f"{', '.join(FAULT_POINTS)}")
    try:
        n = int(count) if count else 1
    except ValueError:
        raise ValueError(f"{ENV}={spec!r}: the count after ':' must be an int") from None
    if n < 1:
        raise ValueError(f"{ENV}={spec!r}: the count must be at least 1")
    return name, n


def arm(spec: str | None) -> None:
    """Arm the point ``spec`` (``"name:N"``) in this process, or disarm with None."""
    global ARMED, _point, _target, _hits
    if not spec:
        ARMED, _point, _target, _hits = False, None, 0, 0
        return
    _point, _target = parse(spec)
    _hits = 0
    ARMED = True


def hit(name: str) -> None:
    """Count a pass through point ``name``; SIGKILL this process at the armed count."""
    global _hits
    if name != _point:
        return
    _hits += 1
    if _hits >= _target:
        os.kill(os.getpid(), signal.SIGKILL)
        signal.pause()  # pragma: no cover - SIGKILL is delivered before this returns


arm(os.environ.get(ENV))
