"""Shared fixtures: an agnoshm domain of its own per test, and a leak check after it.

Tests share the machine (DESIGN.md, amendment 4): other test runs, and other
agnoshm programs (a ``talker`` in domain 0), may run at the same time, and dead
processes of other domains may have left pools in /dev/shm. So:

* every domain a test uses is *claimed* (test/domains.py): an exclusive
  ``flock`` on a per-domain file, which the kernel drops when this process
  exits however it ends, so two runs never share a domain and a crashed run
  blocks nothing; a domain whose registry exists (someone else's, live or
  dead) is never claimed;
* the whole run works in a claimed domain (``ROS_DOMAIN_ID`` is set at start),
  so a test that forgets ``isolated_domain`` still never touches domain 0;
* the leak check judges only the test's own objects: its domains' registries,
  the pools and queues of the processes registered in them, and this
  process's own pool and queue. Names carry the pid, not the domain, so a
  pool is attributed by the registry that lists its pid; a process of ours
  that died leaves its record there (nobody is left to reap it), so a leak of
  ours always shows up as a registry left behind;
* after the check, what dead processes left in the test's domains is removed
  (``agnoshm clean``'s code, scoped to those domains), so a failing test leaves
  no litter for later runs.
"""

from __future__ import annotations

import os

import pytest
from domains import (DOMAIN_RANGE, ROS_DOMAIN_RANGE, DomainClaim, claim_domain,
                     domain_leftovers, remove_leftovers)

from agnoshm.memory import BACKENDS

def own_leftovers() -> list[str]:
    """This process's pool and queue, which ``agnoshm.shutdown()`` must have removed."""
    from agnoshm.cli.clean import queue_exists
    from agnoshm.names import SHM_DIR, pool_name, queue_name

    pid = os.getpid()
    found = [SHM_DIR + pool_name(pid)] if os.path.exists(SHM_DIR + pool_name(pid)) else []
    return found + ([f"queue {queue_name(pid)}"] if queue_exists(pid) else [])


@pytest.fixture(scope="session", autouse=True)
def run_domain():
    """The claimed domain of the whole run (the default for tests without ``isolated_domain``)."""
    claim = claim_domain()
    previous = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = str(claim.domain)
    yield claim.domain
    import agnoshm

    agnoshm.shutdown()
    if previous is None:
        os.environ.pop("ROS_DOMAIN_ID", None)
    else:
        os.environ["ROS_DOMAIN_ID"] = previous
    leftovers = domain_leftovers(claim.domain) + own_leftovers()
    kept = remove_leftovers(claim.domain) if leftovers else []
    claim.release()
    assert not leftovers, (f"the run's default domain {claim.domain} left: {leftovers}"
                           f"{_removal(kept)}")


@pytest.fixture
def claimed_domains():
    """``claim() -> domain``: more domains for one test, each checked for leftovers after it."""
    import agnoshm

    claims: list[DomainClaim] = []

    def claim(domains=DOMAIN_RANGE) -> int:
        claims.append(claim_domain(domains))
        return claims[-1].domain

    yield claim
    agnoshm.shutdown()
    leftovers = [item for c in claims for item in domain_leftovers(c.domain)]
    # removed before the claims go, so that later runs (which never claim a domain whose
    # registry exists) find no litter of this test; other domains are never touched
    kept = [item for c in claims if leftovers for item in remove_leftovers(c.domain)]
    for c in claims:
        c.release()
    assert not leftovers, f"left behind: {leftovers}{_removal(kept)}"


def _removal(kept: list[str]) -> str:
    return f"; still there after removal: {kept}" if kept else " (removed since)"


@pytest.fixture
def isolated_domain(monkeypatch, claimed_domains):
    """A claimed ROS_DOMAIN_ID for this test (inherited by the processes it starts).

    After the test, agnoshm is shut down in this process, and neither the domain
    (registry, its processes' pools and queues) nor this process may leave anything.
    """
    import agnoshm

    domain = claimed_domains()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("AGNOSHM_POOL_SIZE", os.environ.get("AGNOSHM_TEST_POOL_SIZE", "256M"))
    yield domain
    agnoshm.shutdown()
    leftovers = own_leftovers()
    assert not leftovers, f"this process left: {leftovers}"


@pytest.fixture
def ros_domain_id(claimed_domains):
    """A claimed DDS domain id for rclpy (1..232: what ROS 2 over DDS allows; never 0)."""
    return claimed_domains(ROS_DOMAIN_RANGE)


@pytest.fixture(params=list(BACKENDS))
def backend(request, monkeypatch):
    """Run the test once per pool backend of the table (set for this process and its children)."""
    monkeypatch.setenv("AGNOSHM_BACKEND", request.param)
    return request.param
