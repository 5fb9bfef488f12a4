"""The wake-up loop: look for work, and sleep on the doorbell only while nothing rang.

Every thread that waits for messages (the executors, :mod:`agnoshm.aio`'s
helper, the ROS dispatcher) runs :func:`wait_for_work`.  It calls ``enter()``,
then goes round: read the doorbell's word as ``seen``, ``look()``; return what it
found, else return None if ``stop()`` holds or the deadline passed, else
``doorbell.wait(seen, timeout)``; ``enter()`` again (return None if it refuses);
next round.  ``leave()`` comes once, on the way out.  It uses only
``doorbell.value()``, ``doorbell.wait()`` and ``doorbell.disarm()`` (work found: the
thread is awake); producers use ``doorbell.ring()``.

**No lost wake-up.**  A ring adds one to the word (an atomic add in the
kernel), and ``FUTEX_WAIT`` compares the word with ``seen`` atomically with
respect to that ring (both under the futex's hash-bucket lock): a ring after
the read of ``seen`` either makes the wait return at once or wakes it.  Every
producer makes its work visible first and rings after: a publisher commits its
message, then rings; ``Executor.wake`` queues the task, then rings; whoever
makes ``stop()`` true (``Executor.shutdown``, ``agnoshm.shutdown``, a signal,
a stop event) sets its flag, then rings.  So work (or a stop) made visible
after ``seen`` was read is followed by a ring the wait cannot sleep through,
and work made visible before it is found by ``look()`` or ``stop()``, which
run after the read.  That needs the word's load to stay ahead of their loads:
x86 never reorders loads with older loads; elsewhere :data:`ORDERED_LOADS` is
false and a full barrier (a ``FUTEX_WAKE_OP`` on a private word) separates
them.  Deadlines and the caller's timers (``look()``'s timeout) only shorten
the sleep; nothing relies on them for correctness.

**Look once more.**  ``doorbell.wait`` may return without sleeping: the first
time a waiter calls it, it only sets the process's ``sleeping`` flag, from
which on publishers ring, and returns so that the caller looks once more (a
message committed before the flag was set rang nobody).  It may also return
early, spuriously or after its busy poll.  So a return from ``wait`` only
means "look again": the loop always goes round again, it never takes a return
for work.

**The executors' gate** (:mod:`agnoshm.executors.gate`): the word lives in
shared memory, so the loop reads it only between ``enter()`` and ``leave()``,
and sleeps inside them.  ``agnoshm.shutdown()`` drops the runtime, then rings
and waits until every pass has left.  ``stop()`` checks the runtime after the
word was read: it sees the runtime dropped, or the word was read before the
closer's ring, which then wakes the sleeper.  Either way the thread leaves
promptly and touches nothing once ``enter()`` refuses.
"""

from __future__ import annotations

import time

from agnoshm.transport.ring import TOTAL_STORE_ORDER, futex_fence

#: Loads are never reordered with older loads here (x86), so no barrier is needed
#: between reading the word and looking (see the module doc); elsewhere ring.py's fence.
ORDERED_LOADS = TOTAL_STORE_ORDER


_fence = None if ORDERED_LOADS else futex_fence


def wait_for_work(doorbell, look, deadline: float | None = None, stop=None, enter=None,
                  leave=None):
    """Return the first work ``look()`` finds; None once ``stop()`` holds, the deadline
    passes or ``enter()`` refuses.

    An executor calls it once a message, so its arguments may come by position (a
    ``functools.partial`` of them costs no Python frame, and no keyword parsing).

    :param doorbell: the process's doorbell (``value()``, ``wait(seen, timeout_sec)``).
    :param look: ``look() -> (work, timeout_sec)``: work (anything but None) to return,
        or None and how long the loop may sleep at most (None: until a ring; a timer's
        due time, say).  It runs after the word was read and must not block.
    :param deadline: a ``time.monotonic()`` time after which to return None (None: never).
    :param stop: checked after each look that found nothing, before sleeping; whoever
        makes it true must ring the doorbell afterwards.
    :param enter: called first and after each wait; False: return None without touching
        the doorbell again.  ``leave()`` is called on the way out if the first ``enter()``
        admitted the thread.
    """
    fence = _fence
    busy_poll_ns = doorbell.busy_poll_ns
    value = doorbell.value
    disarm = doorbell.disarm
    disarm_always = doorbell.cheap_disarm  # a C call: cheaper than reading sleepers first
    if enter is not None and not enter():
        return None
    # Inside from here to the return, sleeps included: after a wake-up, enter() again only
    # checks that the runtime still runs (no leave() in between: one call, not two).
    try:
        while True:
            seen = value()
            if fence is not None:
                fence()
            work, timeout = look()
            if work is not None:
                # Awake with work: publishers need not ring for this thread.  No thread
                # armed is the usual case, and then there is nothing to undo (no call).
                if disarm_always or doorbell.sleepers:
                    disarm()
                return work
            if stop is not None and stop():
                return None
            if busy_poll_ns and not doorbell.armed():
                # Spin looking, awake (publishers do not ring an awake process), before
                # arming to sleep: AGNOSHM_BUSY_POLL_US trades CPU for the wake-up.
                end = time.monotonic_ns() + busy_poll_ns
                while time.monotonic_ns() < end:
                    work, timeout = look()
                    if work is not None:
                        return work
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if timeout is None or left < timeout:
                    timeout = left
            doorbell.wait(seen, timeout)
            if enter is not None and not enter():
                return None
    finally:
        if leave is not None:
            leave()
