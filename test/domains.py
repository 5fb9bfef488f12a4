"""Domain ids a test run may use alone: claimed, so two runs on one machine never share one.

A claim is an exclusive ``flock`` on a per-domain file in a per-user folder;
the kernel drops it when the process exits however it ends, so a crashed run
blocks nothing. A domain whose registry exists (another program's, live or
dead) is never claimed. Used by test/conftest.py's fixtures, and at import
by the launch_testing modules (which pick their domain before any fixture).
"""

from __future__ import annotations

import fcntl
import os
import random
import tempfile

#: test domains: far from the ones people use (0..232 for ROS 2 over DDS); bounded, since
#: each leaves an empty lock file (deleting it could let two runs lock different files)
DOMAIN_RANGE = range(100_000, 110_000)
#: DDS domain ids for rclpy in tests (claimed the same way; no agnoshm domain is among them)
ROS_DOMAIN_RANGE = range(1, 233)
_CLAIM_DIR = os.path.join(tempfile.gettempdir(), f"agnoshm-test-domains-{os.getuid()}")


class DomainClaim:
    """This process's exclusive claim on one ROS domain id."""

    def __init__(self, domain: int, fd: int):
        self.domain = domain
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # drops the flock
            self._fd = -1


def registry_path(domain: int) -> str:
    from agnoshm.names import SHM_DIR, registry_name

    return SHM_DIR + registry_name(domain)


def claim_domain(domains: range = DOMAIN_RANGE) -> DomainClaim:
    """Claim a domain id no other test run holds and nothing else uses; release it when done.

    Candidates are tried from a random start so that concurrent runs rarely probe
    the same files; the lock files stay (empty, reused), the locks die with us.
    """
    os.makedirs(_CLAIM_DIR, mode=0o700, exist_ok=True)
    start = random.randrange(len(domains))
    for i in range(len(domains)):
        domain = domains[(start + i) % len(domains)]
        fd = os.open(os.path.join(_CLAIM_DIR, f"{domain}.lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if os.path.exists(registry_path(domain)):  # in use outside the claims, or leftovers
            os.close(fd)
            continue
        return DomainClaim(domain, fd)
    raise RuntimeError(f"no free test domain in {domains}")


def domain_leftovers(domain: int) -> list[str]:
    """What domain ``domain`` still holds: its registry, and the pools and queues of the
    processes registered in it (the ones of dead processes, and of live ones too)."""
    from agnoshm.cli.clean import queue_exists
    from agnoshm.names import SHM_DIR, pool_name, queue_name
    from agnoshm.registry.snapshot import RegistryFile

    path = registry_path(domain)
    try:
        with RegistryFile(path) as registry:
            processes = registry.processes()
    except FileNotFoundError:
        return []
    except Exception as err:  # noqa: BLE001  an unreadable registry is reported as such
        return [f"{path} ({err})"]
    found = [path]
    for process in processes:
        pid, state = process.pid, "alive" if process.alive else "dead"
        if os.path.exists(SHM_DIR + pool_name(pid)):
            found.append(f"{SHM_DIR}{pool_name(pid)} ({state})")
        if queue_exists(pid):
            found.append(f"queue {queue_name(pid)} ({state})")
    return found


def remove_leftovers(domain: int) -> list[str]:
    """Remove what dead processes left in domain ``domain`` (``agnoshm clean``'s survey and
    removal, limited to this domain's registry and the pools and queues of the processes it
    lists) and return what is still there (:func:`domain_leftovers`).

    Live processes' objects stay, as with ``agnoshm clean``; so does a pid that another
    process has taken since (it counts as alive).  Nothing of another domain is looked at.
    """
    from agnoshm.cli import clean
    from agnoshm.registry.snapshot import RegistryFile

    path = registry_path(domain)
    try:
        with RegistryFile(path) as registry:
            pids = {process.pid for process in registry.processes()}
    except FileNotFoundError:
        return []
    except Exception:  # noqa: BLE001  unreadable: clean's registry survey says why
        pids = set()
    found = clean.survey(pids) if pids else clean.Survey()  # pools and queues of these pids
    clean._survey_registry(path, found, set())  # last: a registry is removed after its pools
    for item in found.stale:
        clean.remove(item)
    return domain_leftovers(domain)
