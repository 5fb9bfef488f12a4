"""Pool backend on named POSIX shared memory: ``/agnocast@<pid>``.

The owner creates the object ``O_CREAT | O_EXCL`` with mode 0600 (or the
configured mode and group) and maps it read-write; peers open it
``O_RDONLY`` and map it ``PROT_READ``, so the kernel refuses them any write
(invariant 1).
"""

from __future__ import annotations

import errno
import glob
import os
import re

from agnoshm import _libc
from agnoshm.errors import PoolAccessError
from agnoshm.memory.pool import Pool
from agnoshm.names import POOL_PREFIX, SHM_DIR, pool_name


def _apply_permissions(fd: int, mode: int, gid: int | None) -> None:
    if gid is not None:
        os.fchown(fd, -1, gid)
        mode |= 0o040
    os.fchmod(fd, mode)


class ShmBackend:
    """Pools named ``/agnocast@<pid>`` in ``/dev/shm`` (see the module docstring)."""

    name = "shm"
    code = 0
    sealed = False

    def create(self, pid: int, address: int, size: int, *, mode: int = 0o600,
               gid: int | None = None) -> Pool:
        """Create and map the pool of this process (``pid``) read-write at ``address``.

        A pool of the same name left by a dead process (whose pid this one reuses)
        is replaced.
        """
        name = pool_name(pid)
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            fd = _libc.shm_open(name.encode(), flags, mode)
        except FileExistsError:
            # Only the live process with this pid may own the name, and that is us: the
            # object was left by a dead process whose pid we reuse. Replace it.
            _libc.shm_unlink(name.encode())
            fd = _libc.shm_open(name.encode(), flags, mode)
        try:
            _apply_permissions(fd, mode, gid)
            os.ftruncate(fd, size)
            flags = _libc.MAP_SHARED | _libc.MAP_FIXED
            _libc.mmap(address, size, _libc.PROT_READ | _libc.PROT_WRITE, flags, fd, 0)
        except BaseException:
            os.close(fd)
            _libc.shm_unlink(name.encode())
            raise
        return Pool(name, address, size, writable=True, fd=fd, backend=self, pid=pid)

    def open_readonly(self, pid: int, address: int, size: int, *, domain_id: int,
                      timeout: float = 5.0) -> Pool:
        """Map the pool of ``pid`` read-only at ``address`` (names carry no domain).

        :raises PoolAccessError: if this process may not read it.
        :raises FileNotFoundError: if its owner is gone.
        """
        name = pool_name(pid)
        try:
            fd = _libc.shm_open(name.encode(), os.O_RDONLY | os.O_CLOEXEC, 0)
        except PermissionError as err:
            raise PoolAccessError(
                errno.EACCES,
                f"may not read pool {name} of process {pid} (uid {os.getuid()}): run both "
                "processes as the same user, or configure a shared group (AGNOSHM_GROUP)",
            ) from err
        try:
            actual = os.fstat(fd).st_size
            if actual < size:
                raise PoolAccessError(
                    errno.EINVAL, f"pool {name} holds {actual} bytes, the registry says {size}: "
                    "the object is not an agnoshm pool of this domain")
            _libc.mmap(address, size, _libc.PROT_READ, _libc.MAP_SHARED | _libc.MAP_FIXED, fd, 0)
        finally:
            os.close(fd)
        return Pool(name, address, size, writable=False, fd=-1, backend=self, pid=pid)

    def serve(self, pool: Pool, domain_id: int, allowed_gid: int | None) -> None:
        """Peers open the name themselves: nothing to serve."""
        return None

    def path(self, pid: int) -> str:
        return SHM_DIR + pool_name(pid)

    def pools(self) -> list[tuple[int, str]]:
        found = []
        for path in sorted(glob.glob(f"{SHM_DIR}/{POOL_PREFIX}*")):
            match = re.fullmatch(re.escape(POOL_PREFIX) + r"(\d+)", os.path.basename(path))
            if match:
                found.append((int(match.group(1)), path))
        return found

    def unlink(self, pid: int) -> bool:
        """Remove the name of ``pid``'s pool; return False if there was none."""
        try:
            _libc.shm_unlink(pool_name(pid).encode())
            return True
        except FileNotFoundError:
            return False


SHM = ShmBackend()
