"""The fault campaign: SIGKILL a process at every named fault point (agnoshm.faults),
5 times each, with a publisher and subscriber in this process and in a survivor
process, and check after every kill:

* the victim really died at the point (exit status SIGKILL);
* everything of it is reclaimed (registry records, /dev/shm pool, message queue)
  and the registry passes ``check_consistency``;
* both survivors still publish and receive: every message of a new round
  arrives exactly once, in order, untorn, and no message of anyone (the victim's
  included) was ever delivered twice or torn;
* after everyone exited, /dev/shm and the message queues hold nothing of ours.

Each repetition uses a fresh victim process, armed at a different count
(``point:N``, spread over the number of times the victim's workload passes the
point).  Every wait is on a queue, an event or a condition under a watchdog.
``scripts/fault_campaign.py`` runs the same kill at random points, many times.
"""

from __future__ import annotations

import os

import pytest

import agnoshm
import campaign_workers
from agnoshm.faults import FAULT_POINTS

pytestmark = pytest.mark.long  # CI runs it on one Python only
REPETITIONS = 5


def counts_for(point: str) -> list[int]:
    """``REPETITIONS`` armed counts spread over 1 .. the times the workload passes ``point``."""
    hits = campaign_workers.HITS[point]
    return [1 + (k * (hits - 1)) // (REPETITIONS - 1) for k in range(REPETITIONS)]


def test_every_fault_point_is_exercised():
    assert set(campaign_workers.HITS) == set(FAULT_POINTS)


@pytest.mark.parametrize("point", list(FAULT_POINTS))
def test_kill_at_fault_point(point, isolated_domain):
    campaign = campaign_workers.Campaign(f"/campaign_{point.replace('.', '_')}")
    try:
        for count in counts_for(point):
            campaign.kill_once(point, count)
    finally:
        campaign.close()
    assert len(campaign.victims) == REPETITIONS
    agnoshm.shutdown()
    assert campaign_workers.objects_of([*campaign.pids(), os.getpid()]) == []
