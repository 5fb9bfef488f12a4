"""Repairing the registry after a process died holding a lock, and checking it."""

from __future__ import annotations

from agnoshm import faults
from agnoshm.registry import layout as L


class Repair:
    """The :class:`Registry`'s repairs (run by its robust locks) and consistency check."""

    def repair(self) -> None:
        """Restore consistency after a process died holding the global lock."""
        self.header.repairs += 1
        for topic, t in enumerate(self.topics):
            if t.state != L.USED:
                continue
            for array, table in ((t.publishers, self.publishers), (t.subscriptions, self.subscriptions)):
                for pos in range(len(array)):
                    ref = array[pos]
                    if ref and (ref > len(table) or table[ref - 1].state == L.FREE
                                or table[ref - 1].topic != topic):
                        array[pos] = 0
            t.n_publishers = sum(1 for x in t.publishers if x)
            t.n_subscriptions = sum(1 for x in t.subscriptions if x)
        if faults.ARMED:
            faults.hit("repair.inside")
        self._free_unused_topics_locked()  # opened by a process that died before linking to it
        for table, array_name in ((self.publishers, "publishers"), (self.subscriptions, "subscriptions")):
            for i, r in enumerate(table):
                if r.state != L.FREE and (
                        r.topic >= len(self.topics) or r.process >= len(self.processes)
                        or (i + 1) not in list(getattr(self.topics[r.topic], array_name))):
                    r.state = L.FREE  # claimed but never linked: its creator died mid-way
        self.header.live_processes = len(self.live_slots())
        self._reap_dead_locked()

    def _repair_topic(self, topic: int) -> None:
        """A process died holding a topic lock.  Only endpoint changes take it, and
        they write the topic's lists before the counts :meth:`repair` recounts; the
        dead process's endpoints are reaped at the next registry operation."""
        self.header.repairs += 1

    def check_consistency(self) -> list[str]:
        """Return a list of problems found (empty when the registry is consistent)."""
        problems = []
        with self.lock:
            live = 0
            n_topics, n_processes = len(self.topics), len(self.processes)
            for table, kind in ((self.publishers, "publisher"), (self.subscriptions, "subscription")):
                for i, r in enumerate(table):
                    if r.state != L.FREE and (r.topic >= n_topics or r.process >= n_processes):
                        problems.append(f"{kind} {i} names topic {r.topic} / process slot "
                                        f"{r.process}, past the registry's tables")
            if problems:
                return problems  # the checks below index the tables with these fields
            for slot, p in enumerate(self.processes):
                if p.state == L.USED:
                    live += 1
                    if not self.is_alive(slot):
                        problems.append(f"process slot {slot} (pid {p.pid}) is dead but registered")
            if live != self.header.live_processes:
                problems.append(f"live_processes is {self.header.live_processes}, counted {live}")
            for topic, t in enumerate(self.topics):
                if t.state == L.USED:
                    with self.topic_lock(topic):  # endpoint changes write under it
                        problems += self._check_topic_locked(topic)
            for table, kind in ((self.publishers, "publisher"), (self.subscriptions, "subscription")):
                for i, r in enumerate(table):
                    if r.state != L.FREE and self.processes[r.process].state != L.USED:
                        problems.append(f"{kind} {i} belongs to free process slot {r.process}")
        return problems

    def _check_topic_locked(self, topic: int) -> list[str]:
        """Problems of one topic: its endpoint lists and its publishers' channels."""
        problems = []
        t = self.topics[topic]
        pubs = self.publisher_indices(topic)
        subs = self.subscription_indices(topic)
        if len(pubs) != sum(1 for x in t.publishers if x) or len(subs) != sum(
                1 for x in t.subscriptions if x):
            problems.append(f"topic {t.name!r} lists endpoints past the registry's tables")
        if len(pubs) != t.n_publishers or len(subs) != t.n_subscriptions:
            problems.append(f"topic {t.name.decode()} endpoint counts disagree with lists")
        for pos, ref in enumerate(t.subscriptions):
            if 0 < ref <= len(self.subscriptions):  # those past the table: reported above
                s = self.subscriptions[ref - 1]
                if s.state == L.FREE or s.topic != topic or s.bit != pos:
                    problems.append(f"topic {t.name.decode()} lists bad subscription {ref - 1}")
        for pos, ref in enumerate(t.publishers):
            if 0 < ref <= len(self.publishers) and self.publishers[ref - 1].position != pos:
                problems.append(f"publisher {ref - 1} of topic {t.name.decode()} is listed at "
                                f"position {pos}, not its own")
        for pub in pubs:
            r = self.publishers[pub]
            if r.state != L.USED or r.topic != topic:
                problems.append(f"topic {t.name.decode()} lists bad publisher {pub}")
            if self.processes[r.process].state != L.USED:
                problems.append(f"publisher {pub} belongs to a free process slot")
            if r.state == L.USED and not self.channel(pub).start.ident:
                problems.append(f"publisher {pub} of topic {t.name.decode()} has no channel")
        return problems
