"""Shared fixtures: an isolated agnoshm domain per test, and a leak check after it."""

from __future__ import annotations

import glob
import itertools
import os

import pytest

_domains = itertools.count(1000 + (os.getpid() % 1000) * 50)


def _pools() -> set[str]:
    return set(glob.glob("/dev/shm/agnocast@*"))


def _leftovers(before: set[str], domain: int) -> list[str]:
    """Objects this test left: new pools of dead processes, and the domain's registry.

    Pools that existed before the test (another run's, a process killed outside
    the suite) are not this test's doing and are ignored.
    """
    found = [path for path in _pools() - before
             if not os.path.exists(f"/proc/{path.rsplit('@', 1)[1]}")]
    found += glob.glob(f"/dev/shm/agnoshm-registry-domain{domain}")
    return found


@pytest.fixture
def isolated_domain(monkeypatch):
    """A fresh ROS_DOMAIN_ID for this test (inherited by the processes it starts).

    After the test, agnoshm is shut down in this process and nothing of the
    domain may remain in /dev/shm.
    """
    import agnoshm

    domain = next(_domains)
    before = _pools()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("AGNOSHM_POOL_SIZE", os.environ.get("AGNOSHM_TEST_POOL_SIZE", "256M"))
    yield domain
    agnoshm.shutdown()
    leftovers = _leftovers(before, domain)
    assert not leftovers, f"left behind in /dev/shm: {leftovers}"


@pytest.fixture
def flush_releases():
    """Write this process's batched releases to the registry now, as its next take, an
    executor about to sleep or the listener's housekeeping would."""
    import agnoshm

    return lambda: agnoshm.context.get_runtime().flush_releases()


@pytest.fixture(params=["shm", "memfd"])
def backend(request, monkeypatch):
    """Run the test once per pool backend (set for this process and its children)."""
    monkeypatch.setenv("AGNOSHM_BACKEND", request.param)
    return request.param
