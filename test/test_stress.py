"""Load: 8 processes, 64 topics, messages of 64 B .. 8 MiB, publishers and
subscriptions destroyed and re-created while traffic flows, random subscriber
stalls (test/stress_workers.py).

Part of the default run: 60 s of traffic (about 75 s in all).  A longer run is
``AGNOSHM_STRESS_SECONDS=600 python -m pytest -s test/test_stress.py``; hours of a
robot-like load at fixed rates are ``scripts/soak.py``.

Checks (none of them on time): every worker ends cleanly, no message torn, none
delivered twice or out of order, the registry is consistent with only this
process left, memory is flat from the warm-up sample to the end sample
(stress_workers.growth_problems: private memory, live Python objects, pool blocks
in use), and nothing is left in /dev/shm or /dev/mqueue.  The report
(sent/received, p50/p99 latency, memory) is printed (``pytest -s``).
"""

from __future__ import annotations

import os

import pytest

import agnoshm
import campaign_workers
import stress_workers

pytestmark = pytest.mark.long  # CI runs it on one Python only
SECONDS = float(os.environ.get("AGNOSHM_STRESS_SECONDS", "60"))


def test_8_processes_on_64_topics_with_churn_and_stalls_stay_correct_and_flat(isolated_domain,
                                                                              monkeypatch):
    monkeypatch.setenv("AGNOSHM_LINGER_SEC", "0.05")
    registry = agnoshm.context.get_runtime().registry  # this process holds the domain open
    report = stress_workers.run(processes=8, topics=64, duration=SECONDS, warmup=SECONDS / 3,
                                seed=7)
    print("\nstress:", stress_workers.format_report(report))
    for index, warm, end, extra in report["per_worker"]:
        print(stress_workers.format_worker(index, warm, end, extra))
    assert report["errors"] == []
    assert report["exitcodes"] == [0] * 8
    assert report["sent"] > 0 and report["received"] > 0
    assert report["torn"] == 0
    assert report["disorder"] == 0
    assert stress_workers.growth_problems(report) == []
    registry.reap_dead()
    assert registry.check_consistency() == []
    assert registry.live_slots() == [agnoshm.context.get_runtime().slot]
    agnoshm.shutdown()
    assert campaign_workers.objects_of(report["pids"]) == []


def test_growth_bounds_catch_a_leak_of_one_object_or_one_block_per_message():
    """The flatness check itself: a worker that kept one object per message handled
    after warm-up, or one pool block per message, fails it."""
    MiB = stress_workers.MiB
    warm = {"private": 30 * MiB, "objects": 40_000, "pool_used": 10 * MiB, "shm": 0}
    flat = {"private": 31 * MiB, "objects": 40_300, "pool_used": 10 * MiB, "shm": 0}
    received = 5_000  # fewer than a stress worker receives after warm-up (measured 5 600+)
    handled = 25_000  # sent + received after warm-up (measured 28 000+)
    leaky_objects = dict(flat, objects=warm["objects"] + received)  # one object per message
    leaky_memory = dict(flat, private=warm["private"] + handled * 400)  # 400 bytes per message
    leaky_blocks = dict(flat, pool_used=warm["pool_used"] + 100 * 65536)  # 100 blocks of 64 KiB

    def report(end):
        return {"per_worker": [(0, warm, end, {"retained": 10 * MiB})]}

    assert stress_workers.growth_problems(report(flat)) == []
    for end in (leaky_objects, leaky_memory, leaky_blocks):
        assert len(stress_workers.growth_problems(report(end))) == 1, end
