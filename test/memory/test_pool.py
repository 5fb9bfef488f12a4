"""Pools: allocation committed before use, slots given back, each backend's own rules.

What every backend must do (sparse, fixed address, read-only peers, seals, cleanup
of a dead owner) is in ``test_backend_conformance.py``.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import textwrap
import threading

import pytest
from sources import child_cwd, child_env
from workers import TIMEOUT

import agnoshm
from agnoshm import _libc
from agnoshm.errors import LoanError, PoolAccessError, PoolExhaustedError
from agnoshm.memory import BACKENDS, PoolAllocator, memfd
from agnoshm.memory.memfd import MEMFD
from agnoshm.memory.pool import COMMIT_CHUNK
from agnoshm.memory.reservation import AddressReservation
from agnoshm.memory.shm import SHM
from agnoshm.names import memfd_socket_address

BASE = 0x300000000000  # far from the runtime's default range (0x100000000000)
POOL_SIZE = 4 << 30
SLOTS = 2
DOMAIN = 990000 + os.getpid() % 10000  # memfd socket names only; no registry is made
NOBODY = 65534
MiB = 1 << 20


# -- helpers -----------------------------------------------------------------------------------


def vma_rss_kib(address: int) -> int:
    """Resident KiB of the mapping that starts at ``address`` (from /proc/self/smaps)."""
    with open("/proc/self/smaps") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if line and not line[0].isupper() and int(line.split("-", 1)[0], 16) == address:
            for detail in lines[i + 1:]:
                if detail.startswith("Rss:"):
                    return int(detail.split()[1])
    raise AssertionError(f"no mapping starts at 0x{address:x}")


def allocated_bytes(fd: int) -> int:
    return os.fstat(fd).st_blocks * 512


def serve_once(server: memfd.PoolServer) -> None:
    """Answer the connections waiting on ``server`` (as the listener thread would)."""
    readable, _, _ = select.select([server], [], [], TIMEOUT)
    assert readable, "nobody asked the pool server"
    server.serve_pending()


def in_child_as(uid: int | None, function, *args, gid: int | None = None,
                meanwhile=None) -> str:
    """Fork; in the child drop to ``uid``/``gid`` (we are root) and return ``function(*args)``.

    ``meanwhile()`` runs in this process while the child works (e.g. serving it).
    """
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.close(read_end)
            if uid is not None:
                os.setgroups([])
                os.setgid(gid if gid is not None else uid)
                os.setuid(uid)
            answer = function(*args)
            code = 0
        except BaseException as err:
            answer = f"crashed {type(err).__name__}: {err}"
        finally:
            try:
                os.write(write_end, answer.encode())
            finally:
                os._exit(code)
    os.close(write_end)
    try:
        if meanwhile is not None:
            meanwhile()
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(child, 0)
    answer = b"".join(chunks).decode()
    assert os.waitstatus_to_exitcode(status) == 0, answer
    return answer


needs_root = pytest.mark.skipif(os.getuid() != 0, reason="switching to uid 65534 needs root")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def reservation():
    agnoshm.shutdown()  # no runtime of this process may own /agnocast@<pid> meanwhile
    sut = AddressReservation(BASE, SLOTS * POOL_SIZE)
    yield sut
    sut.close()


@pytest.fixture
def pool(backend, reservation):
    """This process's pool (4 GiB, slot 0) in the backend under test."""
    sut = BACKENDS[backend].create(os.getpid(), BASE, POOL_SIZE, mode=0o600, gid=None)
    yield sut
    sut.unlink()
    sut.close(reservation)
    assert not os.path.exists(f"/dev/shm/agnocast@{os.getpid()}")


# -- both backends -------------------------------------------------------------------------------


def test_pool_contains_only_its_own_range(pool):
    assert pool.contains(BASE, POOL_SIZE)
    assert not pool.contains(BASE + POOL_SIZE - 8, 16)
    assert not pool.contains(BASE - 8, 8)


def test_close_gives_the_slot_back_to_the_reservation_and_is_idempotent(backend, reservation):
    sut = BACKENDS[backend].create(os.getpid(), BASE, POOL_SIZE, mode=0o600, gid=None)
    fd = sut.fd
    sut.unlink()
    sut.close(reservation)
    sut.close(reservation)
    assert sut.fd == -1
    with pytest.raises(OSError) as info:
        os.fstat(fd)
    assert info.value.errno == errno.EBADF
    noreplace = _libc.MAP_PRIVATE | _libc.MAP_ANONYMOUS | _libc.MAP_FIXED_NOREPLACE
    with pytest.raises(FileExistsError):  # the slot is reserved again, not free for anyone
        _libc.mmap(BASE, 4096, _libc.PROT_READ, noreplace, -1, 0)


def test_pool_allocator_commits_pages_before_handing_them_out(pool):
    sut = PoolAllocator(pool)
    address = sut.allocate(100)
    assert pool.contains(address, 100)
    assert sut.committed_bytes == COMMIT_CHUNK
    assert allocated_bytes(pool.fd) >= COMMIT_CHUNK  # backed although nothing was written
    big = sut.allocate(3 * COMMIT_CHUNK)
    end = big - BASE + 3 * COMMIT_CHUNK
    assert sut.committed_bytes >= end and sut.committed_bytes % COMMIT_CHUNK == 0
    assert allocated_bytes(pool.fd) >= end
    assert vma_rss_kib(BASE) == 0, "committing must not fault pages into this process"
    sut.free(big)
    sut.free(address)
    assert sut.used_bytes == 0


def test_pool_allocator_refuses_a_block_larger_than_the_pool(pool):
    sut = PoolAllocator(pool)
    kept = sut.allocate(MiB)
    with pytest.raises(PoolExhaustedError) as info:
        sut.allocate(POOL_SIZE)
    assert isinstance(info.value, LoanError) and isinstance(info.value, MemoryError)
    assert "AGNOSHM_POOL_SIZE" in str(info.value) and str(POOL_SIZE) in str(info.value)
    assert sut.used_bytes >= MiB
    sut.free(kept)
    assert sut.used_bytes == 0


_ENOSPC_SCRIPT = """
    import ctypes, json, os, sys
    from agnoshm.errors import PoolExhaustedError
    from agnoshm.memory.pool import PoolAllocator
    from agnoshm.memory.reservation import AddressReservation
    from agnoshm.memory.shm import SHM

    base, size = int(sys.argv[1]), int(sys.argv[2])
    reservation = AddressReservation(base, size)
    pool = SHM.create(os.getpid(), base, size)
    sut = PoolAllocator(pool)
    blocks, report = [], {}
    try:
        while len(blocks) < 64:
            address = sut.allocate(1 << 20)
            ctypes.memset(address, 0xAB, 1 << 20)  # SIGBUS here if the page was not committed
            blocks.append(address)
        report["error"] = None
    except PoolExhaustedError as err:
        report.update(error=str(err), blocks=len(blocks), used=sut.used_bytes,
                      committed=sut.committed_bytes)
        sut.free(blocks.pop())
        again = sut.allocate(1 << 20)  # committed memory is reused after a free
        ctypes.memset(again, 0xCD, 1 << 20)
        report["reused"] = True
    finally:
        pool.close(reservation)
        SHM.unlink(os.getpid())
        reservation.close()
    print(json.dumps(report))
"""


def test_pool_allocator_turns_a_full_dev_shm_into_pool_exhausted():
    """A private 8 MiB tmpfs over /dev/shm (own mount namespace) backs a 64 MiB pool."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs unshare(1) and mount(8) to put a small tmpfs over /dev/shm")
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs -o size=8m agnoshm-test /dev/shm || exit 77; exec "$@"', "sh",
               sys.executable, "-c", textwrap.dedent(_ENOSPC_SCRIPT), str(BASE), str(64 * MiB)]
    result = subprocess.run(command, env=child_env(PYTHONDONTWRITEBYTECODE="1"), cwd=child_cwd(),
                            capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode == 77 or "unshare failed" in result.stderr:
        pytest.skip(f"cannot mount a private tmpfs over /dev/shm here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["error"] is not None, "64 MiB were allocated on an 8 MiB /dev/shm"
    assert "/dev/shm" in report["error"] and "agnoshm clean" in report["error"]
    assert 1 <= report["blocks"] <= 8
    assert report["committed"] <= 8 * MiB
    assert report["used"] <= report["blocks"] * (MiB + 4096), "the failed block was not freed"
    assert report["reused"]


# -- shm backend --------------------------------------------------------------------------------


def test_shm_pool_has_mode_0600_and_replaces_a_dead_processs_leftover(reservation):
    stale = f"/dev/shm/agnocast@{os.getpid()}"
    with open(stale, "wb") as f:  # what a dead process whose pid we now have would leave
        f.write(b"stale")
    os.chmod(stale, 0o644)
    sut = SHM.create(os.getpid(), BASE, POOL_SIZE)
    try:
        assert os.stat(stale).st_mode & 0o777 == 0o600
        assert os.stat(stale).st_size == POOL_SIZE, "the leftover was not replaced"
        assert sut.buffer[0] == 0
    finally:
        sut.close(reservation)
        assert SHM.unlink(os.getpid()) is True
    assert SHM.unlink(os.getpid()) is False


def test_shm_open_readonly_refuses_an_object_smaller_than_the_registry_says(reservation):
    owner = SHM.create(os.getpid(), BASE, 64 * MiB)
    try:
        with pytest.raises(PoolAccessError, match="not an agnoshm pool"):
            SHM.open_readonly(os.getpid(), BASE + POOL_SIZE, POOL_SIZE, domain_id=DOMAIN)
    finally:
        owner.close(reservation)
        SHM.unlink(os.getpid())


def _open_shm_readonly(pid: int) -> str:
    try:
        pool = SHM.open_readonly(pid, BASE + POOL_SIZE, POOL_SIZE, domain_id=DOMAIN)
    except PoolAccessError as err:
        return f"refused {err}"
    return f"granted {bytes(pool.buffer[:3]).decode()}"


@needs_root
def test_shm_pool_with_mode_0600_is_unreadable_for_another_uid(reservation):
    owner = SHM.create(os.getpid(), BASE, POOL_SIZE, mode=0o600)
    try:
        answer = in_child_as(NOBODY, _open_shm_readonly, os.getpid())
    finally:
        owner.close(reservation)
        SHM.unlink(os.getpid())
    assert answer.startswith("refused"), answer
    assert "AGNOSHM_GROUP" in answer


@needs_root
def test_shm_pool_with_a_configured_group_is_readable_by_its_members(reservation):
    owner = SHM.create(os.getpid(), BASE, POOL_SIZE, mode=0o600, gid=NOBODY)
    try:
        owner.buffer[:3] = b"grp"
        st = os.stat(f"/dev/shm/agnocast@{os.getpid()}")
        assert (st.st_gid, st.st_mode & 0o777) == (NOBODY, 0o640)
        answer = in_child_as(NOBODY, _open_shm_readonly, os.getpid())
    finally:
        owner.close(reservation)
        SHM.unlink(os.getpid())
    assert answer == "granted grp"


# -- memfd backend --------------------------------------------------------------------------------


@pytest.fixture
def memfd_pool(reservation):
    sut = MEMFD.create(os.getpid(), BASE, POOL_SIZE)
    yield sut
    sut.close(reservation)


def test_memfd_pool_leaves_nothing_in_dev_shm(memfd_pool):
    assert not os.path.exists(f"/dev/shm/agnocast@{os.getpid()}")
    assert os.readlink(f"/proc/self/fd/{memfd_pool.fd}").startswith("/memfd:agnocast@")


def test_memfd_open_readonly_refuses_an_unsealed_memfd(reservation):
    fake_pid = 4_000_000 + os.getpid() % 100000  # a socket name only: no pool stands behind it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(memfd_socket_address(fake_pid, DOMAIN))
    listener.listen(1)
    unsealed = os.memfd_create("agnoshm-test-unsealed")
    os.ftruncate(unsealed, POOL_SIZE)

    def hand_out():
        conn, _ = listener.accept()
        with conn:
            socket.send_fds(conn, [b"A"], [unsealed])

    thread = threading.Thread(target=hand_out)
    thread.start()
    try:
        with pytest.raises(PoolAccessError, match="not sealed"):
            MEMFD.open_readonly(fake_pid, BASE, POOL_SIZE, domain_id=DOMAIN, timeout=TIMEOUT)
    finally:
        thread.join(TIMEOUT)
        listener.close()
        os.close(unsealed)


def _receive_memfd(pid: int) -> str:
    try:
        fd = memfd.receive_pool_fd(pid, DOMAIN, TIMEOUT)
    except PoolAccessError as err:
        return f"refused {err}"
    return f"granted {fcntl.fcntl(fd, _libc.F_GET_SEALS) & memfd.SEALS == memfd.SEALS}"


def _ask_pool_server(server, uid, gid=None) -> str:
    return in_child_as(uid, _receive_memfd, os.getpid(), gid=gid,
                       meanwhile=lambda: serve_once(server))


@needs_root
def test_pool_server_refuses_a_peer_whose_uid_differs(memfd_pool):
    server = memfd.PoolServer(memfd_pool, os.getpid(), DOMAIN, allowed_gid=None)
    try:
        answer = _ask_pool_server(server, NOBODY)
    finally:
        server.close()
    assert answer.startswith("refused"), answer
    assert f"uid {NOBODY}" in answer


def test_pool_server_grants_the_owner_uid(memfd_pool):
    server = memfd.PoolServer(memfd_pool, os.getpid(), DOMAIN, allowed_gid=None)
    try:
        answer = _ask_pool_server(server, None)
    finally:
        server.close()
    assert answer == "granted True"


@needs_root
def test_pool_server_grants_a_member_of_the_configured_group(memfd_pool):
    server = memfd.PoolServer(memfd_pool, os.getpid(), DOMAIN, allowed_gid=NOBODY)
    try:
        answer = _ask_pool_server(server, NOBODY, gid=NOBODY)
    finally:
        server.close()
    assert answer == "granted True"


def test_peer_allowed_policy():
    me = os.getuid()
    assert memfd.peer_allowed(1, me, 0, None)
    assert memfd.peer_allowed(1, 0, 0, None)  # root reads everything anyway
    other = me + 12345
    assert not memfd.peer_allowed(1, other, other, None)
    assert not memfd.peer_allowed(1, other, other, NOBODY)
    assert memfd.peer_allowed(1, other, NOBODY, NOBODY)
