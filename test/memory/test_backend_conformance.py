"""Every pool backend of ``agnoshm.memory.BACKENDS`` behaves the same: one suite, run over each.

As iceoryx2's conformance tests run one trait's tests over every implementation,
each test here runs once per backend in the table (the ``backend`` fixture of
``conftest.py`` takes its parameters from it), so a new backend is tested by
adding it to the table.  Peers and dead owners are real processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
from sources import child_cwd, child_env
from workers import TIMEOUT

import agnoshm
from agnoshm import _libc
from agnoshm.config import Config
from agnoshm.memory import BACKEND_CODES, BACKENDS
from agnoshm.memory.reservation import AddressReservation

BASE = 0x340000000000  # far from the runtime's range and from test_pool's
POOL_SIZE = 1 << 30
MiB = 1 << 20


# -- helpers -----------------------------------------------------------------------------------


def mapping_at(address: int) -> dict[str, str]:
    """The /proc/self/smaps entry of the mapping that starts at ``address``, as ``{field: value}``
    plus ``range`` and ``perms``."""
    with open("/proc/self/smaps") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if line and not line[0].isupper() and int(line.split("-", 1)[0], 16) == address:
            entry = {"range": line.split()[0], "perms": line.split()[1]}
            for detail in lines[i + 1:]:
                if not detail or not detail[0].isupper() or ":" not in detail:
                    break
                key, value = detail.split(":", 1)
                entry[key] = value.strip()
            return entry
    raise AssertionError(f"no mapping starts at 0x{address:x}")


def rss_kib(address: int) -> int:
    return int(mapping_at(address)["Rss"].split()[0])


@contextlib.contextmanager
def serving(backend, pool, domain: int):
    """Hand ``pool`` to peers meanwhile, as the runtime's listener thread would."""
    server = backend.serve(pool, domain, None)
    if server is None:
        yield
        return
    stop_r, stop_w = os.pipe()

    def run():
        while True:
            readable, _, _ = select.select([server, stop_r], [], [])
            if stop_r in readable:
                return
            server.serve_pending()

    thread = threading.Thread(target=run, name="conformance-pool-server")
    thread.start()
    try:
        yield
    finally:
        os.write(stop_w, b"x")
        thread.join(TIMEOUT)
        server.close()
        os.close(stop_r)
        os.close(stop_w)


def run_python(script: str, *args, **popen) -> subprocess.Popen:
    env = child_env(PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONFAULTHANDLER", None)  # a SIGSEGV must end the peer, not print a traceback
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
                            env=env, cwd=child_cwd(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


_PEER = """
    import ctypes, json, os, sys
    from agnoshm import _libc
    from agnoshm.memory import BACKENDS
    from agnoshm.memory.reservation import AddressReservation

    name, owner, domain, base, size, action = sys.argv[1:]
    owner, domain, base, size = int(owner), int(domain), int(base), int(size)
    reservation = AddressReservation(base, size)
    pool = BACKENDS[name].open_readonly(owner, base, size, domain_id=domain, timeout=60)
    if action == "write":
        ctypes.memset(base, 1, 1)  # the kernel must stop this with SIGSEGV
        print("wrote")
        sys.exit(0)
    report = {"address": pool.address, "text": ctypes.string_at(base, 5).decode(),
              "writable": pool.writable, "readonly": pool.buffer.readonly}
    try:
        _libc.mprotect(base, 4096, _libc.PROT_READ | _libc.PROT_WRITE)
        report["mprotect"] = "granted"
    except OSError as err:
        report["mprotect"] = err.errno
    try:
        pool.unlink()
        report["unlink"] = "done"
    except PermissionError:
        report["unlink"] = "refused"
    print(json.dumps(report))
"""


def run_peer(backend, pool, domain: int, action: str) -> subprocess.CompletedProcess:
    """A peer process maps ``pool`` read-only at the same address and does ``action``."""
    with serving(backend, pool, domain):
        peer = run_python(_PEER, backend.name, os.getpid(), domain, BASE, POOL_SIZE, action)
        out, err = peer.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(peer.args, peer.returncode, out, err)


_OWNER = """
    import ctypes, os, sys
    from agnoshm.memory import BACKENDS
    from agnoshm.memory.reservation import AddressReservation

    name, base, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    reservation = AddressReservation(base, size)
    pool = BACKENDS[name].create(os.getpid(), base, size)
    ctypes.memset(base, 7, 1 << 20)
    print("ready", flush=True)
    sys.stdin.read()  # until killed
"""


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def sut(backend):
    """The backend under test, from the table."""
    return BACKENDS[backend]


@pytest.fixture
def reservation():
    agnoshm.shutdown()  # no runtime of this process may own a pool of this pid meanwhile
    sut = AddressReservation(BASE, POOL_SIZE)
    yield sut
    sut.close()


@pytest.fixture
def owner(sut, reservation, isolated_domain):
    """This process's pool, created by the backend under test at ``BASE``."""
    pool = sut.create(os.getpid(), BASE, POOL_SIZE, mode=0o600, gid=None)
    yield pool
    pool.unlink()
    pool.close(reservation)


# -- the table ----------------------------------------------------------------------------------


def test_the_table_names_each_backend_once_with_its_own_code(sut):
    assert BACKENDS[sut.name] is sut and BACKEND_CODES[sut.code] is sut
    assert len(BACKEND_CODES) == len(BACKENDS), "two backends share a registry code"
    assert Config(backend=sut.name).backend == sut.name  # a valid setting


# -- behaviours -------------------------------------------------------------------------------------


def test_owner_maps_its_pool_read_write_at_the_fixed_address(sut, owner):
    assert (owner.address, owner.size, owner.writable, owner.backend) == (BASE, POOL_SIZE, True, sut)
    entry = mapping_at(BASE)
    assert entry["range"] == f"{BASE:x}-{BASE + POOL_SIZE:x}"
    assert entry["perms"].startswith("rw") and entry["perms"].endswith("s")  # shared
    owner.buffer[:5] = b"hello"
    assert ctypes.string_at(BASE, 5) == b"hello"
    assert repr(owner) == f"Pool('{owner.name}', 0x{BASE:x}, size={POOL_SIZE}, rw, {sut.name})"


def test_pool_commits_pages_only_where_written(owner):
    assert os.fstat(owner.fd).st_blocks == 0
    assert rss_kib(BASE) == 0
    ctypes.memset(BASE + 3 * MiB, 1, MiB)
    assert MiB <= os.fstat(owner.fd).st_blocks * 512 <= 2 * MiB
    assert 1024 <= rss_kib(BASE) <= 2048


def test_pool_appears_at_its_path_and_nowhere_else_until_unlinked(sut, owner):
    pid = os.getpid()
    path = sut.path(pid)
    named = glob.glob(f"/dev/shm/*{pid}")
    if path is None:
        assert not named and pid not in dict(sut.pools())
        assert sut.unlink(pid) is False and owner.unlink() is False
        return
    assert os.path.exists(path) and named in ([], [path]) and dict(sut.pools())[pid] == path
    assert owner.unlink() is True
    assert not os.path.exists(path) and pid not in dict(sut.pools())
    assert sut.unlink(pid) is False
    owner.buffer[0] = 1  # the owner's mapping outlives the name


def test_peer_process_maps_the_pool_read_only_at_the_same_address(sut, owner, isolated_domain):
    owner.buffer[:5] = b"peers"
    result = run_peer(sut, owner, isolated_domain, "read")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["address"] == BASE and report["text"] == "peers"
    assert report["writable"] is False and report["readonly"] is True
    assert report["mprotect"] in (errno.EACCES, errno.EPERM), "a peer made its mapping writable"
    assert report["unlink"] == "refused"


def test_a_peer_writing_to_the_pool_dies_of_sigsegv(sut, owner, isolated_domain):
    owner.buffer[0] = 42
    result = run_peer(sut, owner, isolated_domain, "write")
    assert result.returncode == -signal.SIGSEGV, (result.returncode, result.stdout, result.stderr)
    assert "wrote" not in result.stdout
    assert owner.buffer[0] == 42


def test_a_sealed_backend_refuses_every_new_writable_mapping_and_resizing(sut, owner):
    if not sut.sealed:
        pytest.skip(f"the {sut.name} backend claims no seals (peers get read-only descriptors)")
    fd = owner.fd
    with pytest.raises(PermissionError):  # no new writable mapping, not even the owner's
        _libc.mmap(BASE + POOL_SIZE - 4096, 4096, _libc.PROT_READ | _libc.PROT_WRITE,
                   _libc.MAP_SHARED | _libc.MAP_FIXED, fd, 0)
    with pytest.raises(PermissionError):
        os.pwrite(fd, b"x", 0)
    with pytest.raises(PermissionError):
        os.ftruncate(fd, 4096)
    with pytest.raises(PermissionError):
        os.ftruncate(fd, 2 * POOL_SIZE)
    owner.buffer[:2] = b"ok"  # the owner's own mapping stays writable
    assert os.pread(fd, 2, 0) == b"ok"


def test_unlink_by_pid_removes_everything_a_killed_owner_left(sut, isolated_domain):
    owner = run_python(_OWNER, sut.name, BASE, POOL_SIZE, stdin=subprocess.PIPE)
    try:
        assert owner.stdout.readline() == "ready\n", owner.stderr.read()
        path = sut.path(owner.pid)
        assert path is None or os.path.exists(path)
    finally:
        owner.kill()  # SIGKILL: the owner cleans nothing up
        owner.communicate(timeout=TIMEOUT)
    assert owner.returncode == -signal.SIGKILL
    sut.unlink(owner.pid)
    assert not glob.glob(f"/dev/shm/*@{owner.pid}")
    assert path is None or not os.path.exists(path)
    assert owner.pid not in dict(sut.pools())
    assert sut.unlink(owner.pid) is False


def test_peer_of_a_gone_owner_gets_file_not_found(sut, reservation, isolated_domain):
    gone = 4_000_000 + os.getpid() % 100_000  # above pid_max: nobody owns a pool there
    with pytest.raises(FileNotFoundError):
        sut.open_readonly(gone, BASE, POOL_SIZE, domain_id=isolated_domain, timeout=TIMEOUT)

