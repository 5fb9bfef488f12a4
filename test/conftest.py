"""Shared fixtures: an isolated agnoshm domain per test, and a leak check after it."""

from __future__ import annotations

import glob
import itertools
import os

import pytest

_domains = itertools.count(1000 + (os.getpid() % 1000) * 50)


def _leftovers(pids_before: set[str], domain: int) -> list[str]:
    """Shared objects that belong to dead processes or to a domain nobody uses any more."""
    found = []
    for path in glob.glob("/dev/shm/agnocast@*"):
        pid = path.rsplit("@", 1)[1]
        if not os.path.exists(f"/proc/{pid}"):
            found.append(path)
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
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("AGNOSHM_POOL_SIZE", os.environ.get("AGNOSHM_TEST_POOL_SIZE", "256M"))
    yield domain
    agnoshm.shutdown()
    leftovers = _leftovers(set(), domain)
    assert not leftovers, f"left behind in /dev/shm: {leftovers}"


@pytest.fixture(params=["shm", "memfd"])
def backend(request, monkeypatch):
    """Run the test once per pool backend (set for this process and its children)."""
    monkeypatch.setenv("AGNOSHM_BACKEND", request.param)
    return request.param
