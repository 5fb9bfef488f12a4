"""The executor that runs every callback in the thread that spins it."""

from __future__ import annotations

import time

from agnoshm import context
from agnoshm.errors import InvalidHandleError
from agnoshm.executors.base import _AGAIN, Executor, _deadline, _log_failure
from agnoshm.executors.gate import _gate
from agnoshm.timer import Timer
from agnoshm.transport.waiting import wait_for_work


class SingleThreadedExecutor(Executor):
    """Runs every callback in the thread that spins it."""

    def __init__(self):
        super().__init__()
        self._pass = _gate.new_pass()
        self._lone = None  # the only entity, when it is a subscription
        # (nodes, node, its subscriptions, its timers, the subscription) while _lone is
        # the only entity; the lists are the snapshot's copies (see _entities)
        self._lone_since = None
        self._streak = False  # the lone subscription's last look found a message

    def _run(self, timeout_sec, condition, once: bool) -> bool:
        runtime = context.require_runtime()
        deadline = _deadline(timeout_sec)
        tasks = self._tasks
        # The wake-up loop, called here directly (once a message: no partial in between).
        doorbell, stop, enter, leave = self._wait_parts(runtime, self._pass, condition)
        look = self._look
        ran = False
        burst = None  # the lone subscription, when messages it took are left to deliver
        while not self._is_shutdown:
            if tasks:
                tasks.popleft()()
                ran = True
                if once or (condition is not None and condition()):
                    return True
                continue
            if burst is not None:
                # Taken already: no doorbell, readiness scan or shared memory until the
                # inbox is empty (at most TAKE_BATCH messages).
                picked = _claim_taken(burst)
                burst = None
            else:
                picked = wait_for_work(doorbell, look, deadline, stop, enter, leave)
                if picked is None:
                    return ran
            if picked is None or picked is _AGAIN:
                continue
            entity, group, msg = picked
            picked = None  # holds the message too: not while waiting again
            try:
                result = entity.callback() if msg is None else entity.callback(msg)
            except Exception as exc:
                _log_failure(entity, exc)
                result = None
            except BaseException:  # KeyboardInterrupt, SystemExit: leave the group usable
                group.ending_execution(entity)
                raise
            if msg is not None:
                msg = None  # release the message before waiting again
                if entity is self._lone and entity._inbox:
                    burst = entity
            if result is None:
                group.ending_execution(entity)
            else:
                self._finish(entity, group, result)
            ran = True
            if once or (condition is not None and condition()):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return True
        return ran

    def _look(self) -> tuple:
        """One look of the wake-up loop (in the gate, after the doorbell was read): claim the
        next ready entity and take its message.

        Return ``((entity, group, message or None), None)``, ``(_AGAIN, None)`` when a
        task is queued or the claim was lost, or ``(None, seconds until the next timer)``.
        """
        if self._tasks:
            return _AGAIN, None
        lone = self._lone_since
        if lone is not None:
            nodes, node, subs, timers, sub = lone
            if self._nodes is nodes and node.subscriptions == subs and node.timers == timers:
                # The hot path: one subscription and nothing else, unchanged since the last
                # look (no readiness scan).  Its group's claim stands in for can_execute().
                # Right after a message the take stands in for has_data() too (which walks
                # the channels as the take does); after a look that found nothing, has_data()
                # goes first, so a thread woken for another's message does not take.
                if sub._executor_event:
                    return None, None
                if not self._streak:
                    port = sub._port
                    if port is None or not (sub._inbox or port.has_data()):
                        return None, None
                group = sub.callback_group
                if not group.beginning_execution(sub):
                    return None, None
                port = sub._port
                if port is not None and not sub._inbox:
                    # sub._next_view(True), without its frame
                    try:
                        views = port.take_views(sub._batch)
                    except InvalidHandleError:  # destroyed meanwhile (by another thread)
                        views = ()
                    msg = views[0] if len(views) == 1 else sub._first_of(views)
                else:
                    msg = sub._next_view(True)
                if msg is None:  # nothing new (or destroyed)
                    self._streak = False
                    group.ending_execution(sub)
                    return None, None
                self._streak = True
                return (sub, group, msg), None
        entity, wait = self._next_ready()
        if entity is None:
            return None, wait
        group = entity.callback_group
        if not group.beginning_execution(entity):
            return _AGAIN, None
        if isinstance(entity, Timer):
            entity._advance()
            return (entity, group, None), None
        msg = entity._next_view(True)  # _take(entity), without the call in between
        if msg is None:
            group.ending_execution(entity)
            return _AGAIN, None
        return (entity, group, msg), None

    def _next_ready(self) -> tuple:
        """``(entity, None)`` for the next executable ready entity, else ``(None, seconds
        until the next timer or None)``; notes a lone subscription for :meth:`_look`."""
        entities = self._entities()
        self._lone = self._lone_since = None
        if len(entities) == 1 and not entities[0][1]:
            nodes, per_node, _ = self._snapshot
            if len(per_node) == 1:  # what the next look checks to know nothing changed
                node, subs, timers = per_node[0]
                self._lone = entities[0][0]
                self._lone_since = (nodes, node, subs, timers, self._lone)
        ready, wait = self._ready(True, entities)
        return (ready[0], None) if ready else (None, wait)


def _claim_taken(sub):
    """``(sub, group, message)`` for the next message ``sub`` already took, or None."""
    group = sub.callback_group
    inbox = sub._inbox
    if not inbox or not group.beginning_execution(sub):
        return None
    try:
        return sub, group, inbox.popleft()  # take_pending(), without its frame
    except IndexError:  # another thread took the last one
        group.ending_execution(sub)
        return None
