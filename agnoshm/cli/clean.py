"""``agnoshm clean``: remove what dead processes left behind, never touching a live one.

What a process killed with SIGKILL may leave when no other agnoshm process of
its domain is there to reap it:

* its pool ``/dev/shm/agnocast@<pid>`` (shm backend);
* its announcement queue ``/new_publisher@<pid>``; ``/dev/mqueue`` is listed
  when mqueue is mounted there, otherwise the queue names of every dead pid
  found in pool names and registry records are tried;
* the registry ``/dev/shm/agnoshm-registry-domain<id>`` of a domain whose
  every process is dead.

A pool or queue is removed only if no process with its pid runs (a zombie
counts as dead).  A registry is removed the way its last process would
remove it: under its global lock, only if still no process in it is alive,
after marking it closed so that a process opening it right then starts a
new one.  ``--dry-run`` only reports.
"""

from __future__ import annotations

import glob
import os
import re
import time
from dataclasses import dataclass, field

from agnoshm import _libc
from agnoshm.cli import snapshot as S
from agnoshm.errors import RegistryError
from agnoshm.memory import BACKENDS
from agnoshm.names import QUEUE_PREFIX, REGISTRY_PREFIX, SHM_DIR, queue_name
from agnoshm.registry.snapshot import RegistryFile

MQUEUE_DIR = "/dev/mqueue"
#: a registry nobody finished creating is left alone this long (its creator may be at work)
UNINITIALIZED_GRACE_S = 10.0


@dataclass
class Leftover:
    """One named object and what became of its owner."""

    kind: str  # "pool", "queue" or "registry"
    name: str  # the shm / mq name, e.g. "/agnocast@123"
    pid: int | None
    reason: str
    size: int = 0  # bytes of memory it holds (pools and registries)
    backend: str | None = None  # a pool's backend (agnoshm.memory.BACKENDS)

    @property
    def path(self) -> str:
        if self.backend is not None:
            return BACKENDS[self.backend].path(self.pid)
        return (MQUEUE_DIR if self.kind == "queue" else SHM_DIR) + self.name


@dataclass
class Survey:
    """Every agnoshm object on this machine, sorted into stale, live and undecidable."""

    stale: list[Leftover] = field(default_factory=list)
    live: list[Leftover] = field(default_factory=list)
    unsure: list[Leftover] = field(default_factory=list)


def pid_alive(pid: int) -> bool:
    """True if a process (not a zombie) with ``pid`` runs, whoever owns it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X")


def _pid_of(name: str, prefix: str) -> int | None:
    match = re.fullmatch(re.escape(prefix) + r"(\d+)", name)
    return int(match.group(1)) if match else None


def _allocated(path: str) -> int:
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return 0


def mqueue_mounted() -> bool:
    """True if the mqueue file system is mounted at /dev/mqueue (so queues can be listed)."""
    try:
        with open("/proc/self/mounts") as f:
            return any(line.split()[1:3] == [MQUEUE_DIR, "mqueue"] for line in f)
    except OSError:
        return False


def queue_exists(pid: int) -> bool | None:
    """Whether ``/new_publisher@<pid>`` exists; None if it does but is not ours to open."""
    try:
        mqd = _libc.mq_open(queue_name(pid).encode(), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC,
                            0, None)
    except FileNotFoundError:
        return False
    except PermissionError:
        return None
    _libc.mq_close(mqd)
    return True


def survey(pids: set[int] | None = None) -> Survey:
    """Sort every agnoshm pool, queue and registry into stale, live and unsure.

    :param pids: only look at the pools and queues of these pids (and at no registry).
    """
    result = Survey()
    dead_pids: set[int] = set()
    for backend in BACKENDS.values():
        for pid, path in backend.pools():
            if pids is not None and pid not in pids:
                continue
            name = "/" + os.path.basename(path)
            if pid_alive(pid):
                result.live.append(Leftover("pool", name, pid, f"process {pid} runs",
                                            _allocated(path), backend.name))
            else:
                dead_pids.add(pid)
                result.stale.append(Leftover("pool", name, pid, f"process {pid} is gone",
                                             _allocated(path), backend.name))
    if pids is None:
        for path in sorted(glob.glob(f"{SHM_DIR}/{REGISTRY_PREFIX}*")):
            _survey_registry(path, result, dead_pids)
    _survey_queues(result, dead_pids | (pids or set()), pids)
    order = {"pool": 0, "queue": 1, "registry": 2}  # a registry's reaping removes its queues
    result.stale.sort(key=lambda item: order[item.kind])
    return result


def _survey_queues(result: Survey, candidates: set[int], pids: set[int] | None) -> None:
    if mqueue_mounted():
        for path in sorted(glob.glob(f"{MQUEUE_DIR}/{QUEUE_PREFIX}*")):
            pid = _pid_of(os.path.basename(path), QUEUE_PREFIX)
            if pid is not None and (pids is None or pid in pids):
                candidates.add(pid)
    for pid in sorted(candidates):
        if pid_alive(pid):
            if pids is not None and queue_exists(pid):
                result.live.append(Leftover("queue", queue_name(pid), pid, f"process {pid} runs"))
            continue
        exists = queue_exists(pid)
        if exists:
            result.stale.append(Leftover("queue", queue_name(pid), pid, f"process {pid} is gone"))
        elif exists is None:
            result.unsure.append(Leftover("queue", queue_name(pid), pid,
                                          f"process {pid} is gone, but the queue belongs to "
                                          "another user: remove it as that user (or root)"))


def _survey_registry(path: str, result: Survey, dead_pids: set[int]) -> None:
    name = "/" + os.path.basename(path)
    size = _allocated(path)
    try:
        registry = RegistryFile(path)
    except FileNotFoundError:
        return
    except PermissionError:
        result.unsure.append(Leftover("registry", name, None, "not readable by this user", size))
        return
    except RegistryError as err:
        result.unsure.append(Leftover("registry", name, None, str(err), size))
        return
    with registry:
        if not registry.initialized:
            age = time.time() - registry.modified()
            if registry.being_created() or age < UNINITIALIZED_GRACE_S:
                result.live.append(Leftover("registry", name, None, "being created", size))
            else:
                result.stale.append(Leftover("registry", name, None,
                                             "its creator died before initializing it", size))
            return
        if registry.closed:
            result.stale.append(Leftover("registry", name, None,
                                         "closed, but its last process died before removing it",
                                         size))
            return
        processes = registry.processes()
    alive = [p for p in processes if p.alive]
    dead_pids.update(p.pid for p in processes if not p.alive and not pid_alive(p.pid))
    if alive:
        result.live.append(Leftover("registry", name, None,
                                    f"{S.plural(len(alive), 'live process')}", size))
    else:
        reason = ("no process is in it" if not processes else "its only process is gone"
                  if len(processes) == 1 else f"all its {len(processes)} processes are gone")
        result.stale.append(Leftover("registry", name, None, reason, size))


# -- removal -------------------------------------------------------------------------------


def remove(item: Leftover) -> bool:
    """Remove one stale object; return False if it was gone, or came alive meanwhile."""
    if item.kind in ("pool", "queue") and item.pid is not None and pid_alive(item.pid):
        return False
    if item.kind == "registry":
        return _remove_registry(item)
    if item.backend is not None:
        return BACKENDS[item.backend].unlink(item.pid)
    unlink = _libc.shm_unlink if item.kind != "queue" else _libc.mq_unlink
    try:
        unlink(item.name.encode())
        return True
    except FileNotFoundError:
        return False


def _remove_registry(item: Leftover) -> bool:
    """Close and unlink a registry whose processes are all dead, as its last process would."""
    from agnoshm.config import load_config
    from agnoshm.registry.registry import Registry

    domain = int(item.name[len("/" + REGISTRY_PREFIX):])
    if not os.path.exists(item.path):
        return False
    registry = Registry(load_config(domain_id=domain))  # validates version and magic
    try:
        return registry.close_if_abandoned()
    finally:
        registry.close()


# -- the command -----------------------------------------------------------------------------


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "clean", help="remove pools, queues and registries that dead processes left",
        description="Remove /dev/shm/agnocast@<pid> pools, /new_publisher@<pid> queues and "
                    "registries of processes that are gone; live processes' objects are never "
                    "touched.")
    p.add_argument("-n", "--dry-run", action="store_true", help="show what would be removed")
    p.add_argument("--pid", type=int, action="append", metavar="PID",
                   help="only the pool and queue of this pid (repeatable); registries are left")
    p.set_defaults(run=run)


def run(args) -> int:
    found = survey(set(args.pid) if args.pid else None)
    verb = "would remove" if args.dry_run else "removed"
    removed = 0
    for item in found.stale:
        if args.dry_run or remove(item):
            removed += 1
            size = f", {S.size_text(item.size)}" if item.size else ""
            print(f"{verb} {item.kind} {item.path} ({item.reason}{size})")
        else:
            print(f"kept {item.kind} {item.path} (already gone, or in use again)")
    for item in found.unsure:
        print(f"left {item.kind} {item.path}: {item.reason}")
    if found.live:
        kinds = sorted({i.kind for i in found.live})
        print(f"kept {S.plural(len(found.live), 'live ' + '/'.join(kinds) + ' object')}"
              + ("".join(f"\n  {i.path} ({i.reason})" for i in found.live) if args.pid else ""))
    if not found.stale:
        print("nothing to clean")
    elif args.dry_run:
        print(f"{S.plural(removed, 'object')} would be removed; run without --dry-run to "
              "remove them")
    return 0
