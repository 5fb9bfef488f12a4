"""Other users: a process of another uid against a live agnoshm domain (DESIGN.md invariant 4).

The owner is a process of this uid (root) with a node and a publisher; the other
user is a child forked from this process (which has no agnoshm runtime of its
own, so nothing of it is inherited) that drops to uid 65534 before it touches
anything.  Both pool backends:

* by default it can open or map none of our objects: not the registry, not the
  pool (shm: mode 0600; memfd: the owner's socket checks SO_PEERCRED and refuses
  it), not the announcement queue; ``agnoshm.init()`` says to configure a group;
* with ``AGNOSHM_GROUP`` naming its group it joins and receives, and then only
  reads: the peer mapping is read-only and cannot be made writable (mprotect), the
  shm object cannot be opened for writing, and the memfd it is handed is sealed
  so that no new writable mapping of it can be made (F_SEAL_FUTURE_WRITE), not
  even through /proc/<owner>/fd.

Unit-level cases (the pool server's policy, seals of an owner's memfd, shm modes)
are in test/memory/test_pool.py.
"""

from __future__ import annotations

import errno
import json
import os
import pwd

import pytest

import agnoshm
import exhaustion_workers
import permission_workers
import workers
from workers import TIMEOUT

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="switching to uid 65534 needs root")


def in_child_as(uid: int, gid: int, function, *args) -> dict:
    """Fork; in the child become ``uid``/``gid`` (no other groups); return ``function(*args)``.

    The interpreter lives under /root (mode 0700), so the child cannot import
    anything new: what it needs is imported here first.
    """
    import rosbags.interfaces  # noqa: F401  (agnoshm loads it lazily)
    import agnoshm.registry.snapshot  # noqa: F401  (and mmap with it: lazily, via the registry)

    assert agnoshm.Bytes is not None  # resolving it loads the message type sources (rosbags)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.environ["HOME"] = pwd.getpwuid(uid).pw_dir  # as its login would set it
            answer = json.dumps(function(*args))
            code = 0
        except BaseException as err:
            answer = json.dumps({"crashed": f"{type(err).__name__}: {err}"})
            try:  # os._exit runs no atexit: leave the domain and unlink what the probe made
                agnoshm.shutdown()
            except BaseException:  # noqa: BLE001  the answer above says what went wrong
                pass
        finally:
            try:
                os.write(write_end, answer.encode())
            finally:
                os._exit(code)
    os.close(write_end)
    chunks = []
    try:
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(child, 0)
    answer = json.loads(b"".join(chunks).decode())
    assert os.waitstatus_to_exitcode(status) == 0, answer
    return answer


def _errno_of(call) -> str:
    """Run ``call``; "ok" if it worked, else the error's errno name (or its type)."""
    try:
        call()
        return "ok"
    except OSError as err:
        if not err.errno:
            return type(err).__name__
        return errno.errorcode.get(err.errno, type(err).__name__)


@pytest.fixture
def domain_owner(isolated_domain, backend, monkeypatch, request):
    """Start the owner in a fresh domain (``AGNOSHM_GROUP`` from an indirect parameter)."""
    group = getattr(request, "param", None)
    if group is not None:
        monkeypatch.setenv("AGNOSHM_GROUP", str(group))
    agnoshm.shutdown()  # the other user is forked from here: no runtime may be inherited
    ctx = workers.context()
    ready, out, done = ctx.Event(), ctx.Queue(), ctx.Event()
    process = ctx.Process(target=permission_workers.owner,
                          args=("/shared", b"only for readers", ready, out, done))
    process.start()
    try:
        workers.wait_until(lambda: ready.is_set() or process.exitcode is not None,
                           what="the owner to start")
        assert ready.is_set(), f"the owner exited with {process.exitcode}"
        _, pid, domain = out.get(timeout=TIMEOUT)
        yield {"pid": pid, "domain": domain, "backend": backend}
    finally:
        done.set()
        process.join(TIMEOUT)
    assert process.exitcode == 0


# -- what the other user tries ---------------------------------------------------------------------


def _probe_without_group(owner_pid: int, domain: int, backend: str) -> dict:
    from agnoshm import _libc
    from agnoshm.errors import PoolAccessError
    from agnoshm.memory import memfd
    from agnoshm.names import pool_name, queue_name, registry_name

    result = {
        "registry": _errno_of(lambda: os.close(os.open(f"/dev/shm{registry_name(domain)}",
                                                       os.O_RDONLY))),
        "queue_write": _errno_of(lambda: _libc.mq_close(_libc.mq_open(
            queue_name(owner_pid).encode(), os.O_WRONLY | os.O_NONBLOCK, 0, None))),
        "queue_read": _errno_of(lambda: _libc.mq_close(_libc.mq_open(
            queue_name(owner_pid).encode(), os.O_RDONLY | os.O_NONBLOCK, 0, None))),
        "proc_fds": _errno_of(lambda: os.listdir(f"/proc/{owner_pid}/fd")),
    }
    if backend == "shm":
        result["pool"] = _errno_of(lambda: os.close(os.open(f"/dev/shm{pool_name(owner_pid)}",
                                                            os.O_RDONLY)))
    else:
        try:
            os.close(memfd.receive_pool_fd(owner_pid, domain, TIMEOUT))
            result["pool"] = "ok"
        except PoolAccessError as err:
            result["pool"] = f"refused: {err}"
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    try:
        agnoshm.init()
        result["init"] = "joined"
        agnoshm.shutdown()
    except agnoshm.AgnoshmError as err:
        result["init"] = f"{type(err).__name__}: {err}"
    return result


def _probe_with_group(owner_pid: int, domain: int, backend: str) -> dict:
    from agnoshm import _libc
    from agnoshm.memory import memfd
    from agnoshm.names import pool_name

    os.environ["ROS_DOMAIN_ID"] = str(domain)
    node = agnoshm.Node("other_user")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/shared", 4)
    msg = exhaustion_workers.take_next(sub, "the owner's message")
    address = msg.data.ctypes.data
    page = address & ~0xFFF  # in the owner's pool, as this process maps it
    with open("/proc/self/maps") as f:
        for line in f:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if start <= address < end:
                perms = line.split()[1]

    def mprotect_writable():
        _libc.mprotect(page, 4096, _libc.PROT_READ | _libc.PROT_WRITE)

    result = {"data": bytes(msg.data).decode(), "writeable": bool(msg.data.flags.writeable),
              "perms": perms, "mprotect": _errno_of(mprotect_writable)}
    if backend == "shm":
        path = f"/dev/shm{pool_name(owner_pid)}"
        result["open_rdonly"] = _errno_of(lambda: os.close(os.open(path, os.O_RDONLY)))
        result["open_rdwr"] = _errno_of(lambda: os.close(os.open(path, os.O_RDWR)))
    else:
        fd = memfd.receive_pool_fd(owner_pid, domain, TIMEOUT)
        try:
            result["seals"] = fcntl_seals(fd) & memfd.SEALS == memfd.SEALS
            result["mmap_writable"] = _errno_of(lambda: _libc.munmap(_libc.mmap(
                None, 4096, _libc.PROT_READ | _libc.PROT_WRITE, _libc.MAP_SHARED, fd, 0), 4096))
            result["pwrite"] = _errno_of(lambda: os.pwrite(fd, b"x", 0))
            result["truncate"] = _errno_of(lambda: os.ftruncate(fd, 4096))
        finally:
            os.close(fd)
        result["proc_fds"] = _errno_of(lambda: os.listdir(f"/proc/{owner_pid}/fd"))
    del msg
    node.destroy_node()
    agnoshm.shutdown()
    return result


def fcntl_seals(fd: int) -> int:
    import fcntl

    from agnoshm import _libc

    return fcntl.fcntl(fd, _libc.F_GET_SEALS)


# -- tests ---------------------------------------------------------------------------------------


def test_another_uid_can_open_none_of_our_objects_by_default(domain_owner):
    o = domain_owner
    answer = in_child_as(NOBODY, NOBODY, _probe_without_group, o["pid"], o["domain"], o["backend"])
    print(f"\n{o['backend']}: {answer}")
    assert "crashed" not in answer, answer
    assert answer["registry"] == "EACCES"
    assert answer["queue_write"] == "EACCES"  # it cannot even announce to us
    assert answer["queue_read"] == "EACCES"
    assert answer["proc_fds"] == "EACCES"  # nor reach our descriptors through /proc
    if o["backend"] == "shm":
        assert answer["pool"] == "EACCES"
    else:  # the owner's socket checked SO_PEERCRED and refused it
        assert answer["pool"].startswith("refused") and f"uid {NOBODY}" in answer["pool"], answer
    assert answer["init"].startswith("RegistryError") and "AGNOSHM_GROUP" in answer["init"], answer


@pytest.mark.parametrize("domain_owner", [NOBODY], indirect=True, ids=["group"])
def test_a_configured_group_lets_another_uid_read_and_only_read(domain_owner):
    o = domain_owner
    answer = in_child_as(NOBODY, NOBODY, _probe_with_group, o["pid"], o["domain"], o["backend"])
    print(f"\n{o['backend']}: {answer}")
    assert "crashed" not in answer, answer
    assert answer["data"] == "only for readers"
    assert answer["writeable"] is False
    assert answer["perms"] == "r--s"  # the owner's pool is mapped shared, read-only
    assert answer["mprotect"] == "EACCES"  # and cannot be made writable
    if o["backend"] == "shm":
        assert answer["open_rdonly"] == "ok"
        assert answer["open_rdwr"] == "EACCES"
    else:
        assert answer["seals"] is True
        assert answer["mmap_writable"] == "EPERM"  # F_SEAL_FUTURE_WRITE
        assert answer["pwrite"] == "EPERM"
        assert answer["truncate"] == "EPERM"
        assert answer["proc_fds"] == "EACCES"
