"""What a pool backend is: the protocol every backend (``shm.py``, ``memfd.py``) implements.

A backend makes one process's pool: the owner creates it read-write at its
slot address, peers map it read-only at the same address, and whatever the
backend named after the owner's pid is removed by pid once the owner is dead.
The one table of backends is ``agnoshm.memory.BACKENDS``: its names are the
values of the ``backend`` setting, its codes what the registry stores in
``ProcessRecord.backend``.  ``test/memory/test_backend_conformance.py`` runs
every behaviour over every backend of that table.

Backends are asked at pool creation, peer mapping and cleanup only, never on
the per-message path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from agnoshm.memory.pool import Pool


class PeerServer(Protocol):
    """What hands the owner's pool to peers; the listener thread polls it."""

    def fileno(self) -> int: ...

    def serve_pending(self) -> None:
        """Answer every waiting peer (called when :meth:`fileno` is readable)."""

    def close(self) -> None: ...


class PoolBackend(Protocol):
    name: str  # the ``backend`` setting (AGNOSHM_BACKEND)
    code: int  # stored in the registry's ProcessRecord.backend; unique, never reused
    sealed: bool  # the kernel refuses any new writable mapping, the owner's included

    def create(self, pid: int, address: int, size: int, *, mode: int = 0o600,
               gid: int | None = None) -> Pool:
        """Create the pool of this process (``pid``) and map it read-write at ``address``."""

    def open_readonly(self, pid: int, address: int, size: int, *, domain_id: int,
                      timeout: float = 5.0) -> Pool:
        """Map the pool of ``pid`` read-only at ``address``.

        :raises PoolAccessError: if this process may not read it.
        :raises FileNotFoundError: if its owner is gone.
        """

    def serve(self, pool: Pool, domain_id: int, allowed_gid: int | None) -> PeerServer | None:
        """Start handing the owner's ``pool`` to peers; None if peers need nothing from it."""

    def path(self, pid: int) -> str | None:
        """Where ``pid``'s pool appears in the file system; None if it appears nowhere."""

    def pools(self) -> list[tuple[int, str]]:
        """``(pid, path)`` of every pool of this backend on the machine (for ``agnoshm clean``)."""

    def unlink(self, pid: int) -> bool:
        """Remove what ``pid``'s pool is named by; False if there was nothing (always for memfd)."""
