"""The names of agnoshm's shared objects, built in this one module.

| object | name |
|---|---|
| pool (shm backend) | ``/agnocast@<pid>`` (``/dev/shm/agnocast@<pid>``) |
| pool (memfd backend) | memfd ``agnocast@<pid>``, served on abstract socket ``@agnoshm-pool@<domain>@<pid>`` |
| announcement queue | ``/new_publisher@<pid>`` |
| registry | ``/agnoshm-registry-domain<ROS_DOMAIN_ID>`` |
"""

from __future__ import annotations

SHM_DIR = "/dev/shm"
POOL_PREFIX = "agnocast@"
QUEUE_PREFIX = "new_publisher@"
REGISTRY_PREFIX = "agnoshm-registry-domain"


def pool_name(pid: int) -> str:
    """POSIX shm name of the pool owned by ``pid``."""
    return f"/{POOL_PREFIX}{pid}"


def memfd_name(pid: int) -> str:
    """Name given to ``memfd_create`` for the pool owned by ``pid`` (shown in /proc/<pid>/fd)."""
    return f"{POOL_PREFIX}{pid}"


def memfd_socket_address(pid: int, domain_id: int) -> bytes:
    """Abstract Unix socket address on which ``pid`` hands out its memfd pool."""
    return f"\0agnoshm-pool@{domain_id}@{pid}".encode()


def queue_name(pid: int) -> str:
    """POSIX message queue name on which ``pid`` hears of new publishers."""
    return f"/{QUEUE_PREFIX}{pid}"


def registry_name(domain_id: int) -> str:
    """POSIX shm name of the registry of one ROS domain."""
    return f"/{REGISTRY_PREFIX}{domain_id}"
