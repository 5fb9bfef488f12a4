"""Pool backend on a sealed anonymous memfd, handed to peers over a Unix socket.

The owner creates ``memfd_create("agnocast@<pid>", MFD_ALLOW_SEALING)``, maps
it read-write, then adds ``F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE``:
from then on nobody, the owner included, can create a new writable mapping or
``write()`` to it, and its size is fixed (invariant 1).  Peers get the
descriptor with ``SCM_RIGHTS`` on the abstract socket
``@agnoshm-pool@<domain>@<pid>``, after the owner checked their credentials
(``SO_PEERCRED``): same uid, root, or a member of the configured group.
Nothing of a memfd pool appears in ``/dev/shm``.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from agnoshm import _libc
from agnoshm.errors import PoolAccessError
from agnoshm.memory.pool import Pool
from agnoshm.names import memfd_name, memfd_socket_address

SEALS = _libc.F_SEAL_SHRINK | _libc.F_SEAL_GROW | _libc.F_SEAL_FUTURE_WRITE
_GRANTED = b"A"
_REFUSED = b"R"


def receive_pool_fd(pid: int, domain_id: int, timeout: float = 5.0) -> int:
    """Connect to ``pid``'s pool socket and return the memfd it sends."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(memfd_socket_address(pid, domain_id))
            reply, fds, _flags, _addr = socket.recv_fds(sock, 256, 1)
        except (ConnectionRefusedError, FileNotFoundError) as err:
            raise FileNotFoundError(errno.ENOENT, f"process {pid} serves no memfd pool (gone?)") from err
        except socket.timeout as err:
            raise PoolAccessError(errno.ETIMEDOUT, f"process {pid} did not hand out its memfd pool") from err
    if not fds:
        raise PoolAccessError(
            errno.EACCES,
            f"process {pid} refused its memfd pool to uid {os.getuid()}: "
            f"{reply[1:].decode(errors='replace')}",
        )
    return fds[0]


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """Return ``(pid, uid, gid)`` of the process at the other end of ``conn``."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", raw)


def _in_group(pid: int, gid: int | None) -> bool:
    if gid is None:
        return False
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Groups:"):
                    return str(gid) in line.split()[1:]
    except OSError:
        return False
    return False


def peer_allowed(pid: int, uid: int, gid: int, allowed_gid: int | None) -> bool:
    """Access policy for a pool: same uid, root, or a member of the configured group."""
    if uid == os.getuid() or uid == 0:
        return True
    return allowed_gid is not None and (gid == allowed_gid or _in_group(pid, allowed_gid))


class PoolServer:
    """The owner's listening socket that hands its memfd to allowed peers."""

    def __init__(self, pool: Pool, pid: int, domain_id: int, allowed_gid: int | None):
        self.pool = pool
        self.allowed_gid = allowed_gid
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.bind(memfd_socket_address(pid, domain_id))
            self.sock.listen(64)
            self.sock.setblocking(False)
        except BaseException:
            self.sock.close()
            raise

    def fileno(self) -> int:
        return self.sock.fileno()

    def serve_pending(self) -> None:
        """Answer every waiting connection (called when the socket is readable)."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            with conn:
                conn.setblocking(True)
                conn.settimeout(1.0)
                try:
                    pid, uid, gid = peer_credentials(conn)
                    if peer_allowed(pid, uid, gid, self.allowed_gid):
                        socket.send_fds(conn, [_GRANTED], [self.pool.fd])
                    else:
                        conn.sendall(_REFUSED + f"uid {uid} is not the owner's and not in the pool's group".encode())
                except OSError:
                    pass  # the peer went away; it will ask again

    def close(self) -> None:
        self.sock.close()


class MemfdBackend:
    """Sealed anonymous memfd pools, handed out by the owner (see the module docstring)."""

    name = "memfd"
    code = 1
    sealed = True

    def create(self, pid: int, address: int, size: int, *, mode: int = 0o600,
               gid: int | None = None) -> Pool:
        """Create, map read-write at ``address`` and seal the pool of this process.

        ``mode`` has no use (the memfd has no name); ``gid`` is checked when serving.
        """
        import fcntl

        fd = _libc.memfd_create(memfd_name(pid).encode(),
                                _libc.MFD_CLOEXEC | _libc.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fd, size)
            flags = _libc.MAP_SHARED | _libc.MAP_FIXED
            _libc.mmap(address, size, _libc.PROT_READ | _libc.PROT_WRITE, flags, fd, 0)
            fcntl.fcntl(fd, _libc.F_ADD_SEALS, SEALS)
        except BaseException:
            os.close(fd)
            raise
        return Pool(memfd_name(pid), address, size, writable=True, fd=fd, backend=self, pid=pid)

    def open_readonly(self, pid: int, address: int, size: int, *, domain_id: int,
                      timeout: float = 5.0) -> Pool:
        """Ask ``pid`` for its memfd and map it read-only at ``address``.

        :raises PoolAccessError: if the owner refuses this process or the memfd is not sealed.
        :raises FileNotFoundError: if the owner is not serving (gone).
        """
        import fcntl

        fd = receive_pool_fd(pid, domain_id, timeout)
        try:
            if fcntl.fcntl(fd, _libc.F_GET_SEALS) & SEALS != SEALS:
                raise PoolAccessError(errno.EPERM,
                                      f"memfd pool of process {pid} is not sealed: refusing it")
            if os.fstat(fd).st_size < size:
                raise PoolAccessError(errno.EINVAL,
                                      f"memfd pool of process {pid} is smaller than {size}")
            _libc.mmap(address, size, _libc.PROT_READ, _libc.MAP_SHARED | _libc.MAP_FIXED, fd, 0)
        finally:
            os.close(fd)
        return Pool(memfd_name(pid), address, size, writable=False, fd=-1, backend=self, pid=pid)

    def serve(self, pool: Pool, domain_id: int, allowed_gid: int | None) -> PoolServer:
        return PoolServer(pool, pool.pid, domain_id, allowed_gid)

    def path(self, pid: int) -> None:
        """A memfd has no name in the file system; it is gone with its last descriptor."""
        return None

    def pools(self) -> list[tuple[int, str]]:
        return []

    def unlink(self, pid: int) -> bool:
        return False


MEMFD = MemfdBackend()
