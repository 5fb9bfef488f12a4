"""``agnoshm doctor``: check everything agnoshm needs from this machine, and say how to fix it.

Each check prints ``ok``, ``WARN`` or ``FAIL`` with what it found; a warning
or failure also prints the fix.  Checks: kernel and libc, the configuration,
``memfd_create`` with sealing, ``MAP_FIXED_NOREPLACE``, the configured address
range (reserved and released in this process), ``/dev/shm`` (size, free space,
a test object), POSIX message queue limits (``/proc/sys/fs/mqueue/*``,
``RLIMIT_MSGQUEUE``, a test queue), the domain's registry (magic and layout
version, dead members), objects that dead processes left, permissions, and which
message path runs (the C extension, or pure Python and why).
Nothing is left behind; the exit status is 1 if any check failed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import stat
from dataclasses import dataclass

from agnoshm import _libc
from agnoshm.cli import clean
from agnoshm.cli import snapshot as S

OK, WARN, FAIL = "ok", "WARN", "FAIL"
MIN_KERNEL = (5, 1)
MIN_GLIBC = (2, 34)
MIN_SHM_FREE = 64 << 20
MQUEUE = "/proc/sys/fs/mqueue"
_MSG_STRUCT_BYTES = 48 + 40  # kernel: one struct msg_msg + one posix_msg_tree_node per message


@dataclass
class Check:
    status: str
    name: str
    detail: str
    fix: str = ""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "doctor", help="check that this machine can run agnoshm, and explain each fix",
        description="Check kernel, libc, configuration, memfd, MAP_FIXED_NOREPLACE, the address "
                    "range, /dev/shm, message queue limits, the registry, stale objects and "
                    "permissions; print the fix for each problem.")
    p.set_defaults(run=run)


def run(args) -> int:
    checks: list[Check] = []
    config = _config(checks)
    if config is not None:
        domain = config.domain_id
        print(f"agnoshm doctor: ROS domain {domain}, backend {config.backend}, "
              f"pool {S.size_text(config.pool_size)} x {config.max_processes} processes")
    for probe in (_platform, _memfd, _noreplace):
        checks.append(probe(config))
    if config is not None:
        checks.append(_address_range(config))
        checks += _dev_shm(config)
        checks += _message_queues(config)
        checks += _registry(config)
        checks += _stale()
        checks += _permissions(config)
        checks.append(_message_path(config))
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"  {c.status:<4}  {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != OK:
            print(f"  {'':<4}  {'':<{width}}  fix: {c.fix}")
    warnings = sum(c.status == WARN for c in checks)
    failures = sum(c.status == FAIL for c in checks)
    print(f"{S.plural(len(checks) - warnings - failures, 'check')} ok, "
          f"{S.plural(warnings, 'warning')}, {S.plural(failures, 'failure')}")
    return 1 if failures else 0


def _config(checks: list[Check]):
    from agnoshm.config import ConfigError, config_file, load_config

    try:
        config = load_config()
        where = config_file(os.environ)
    except ConfigError as err:
        checks.append(Check(FAIL, "configuration", str(err),
                            "correct that value in the configuration file or the "
                            "environment (AGNOSHM_* variables, ROS_DOMAIN_ID)"))
        return None
    checks.append(Check(OK, "configuration",
                        f"{where or 'defaults'} + environment; range 0x{config.base_address:x}.."
                        f"0x{config.range_end:x}"))
    return config


def _message_path(config) -> Check:
    """The C message path (``agnoshm._native``) or pure Python, and why."""
    from agnoshm import _native

    detail = _native.describe(config.native)
    if _native.MISSING is None or config.native == "0":
        return Check(OK, "message path", detail)
    return Check(FAIL if config.native == "1" else WARN, "message path", detail
                 + (" and AGNOSHM_NATIVE=1 requires it" if config.native == "1" else
                    "; pure Python works the same, only slower"), _native.FIX)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for token in text.replace("-", ".").split("."):
        if not token.isdigit():
            break
        parts.append(int(token))
    return tuple(parts)


def _platform(config) -> Check:
    kernel = platform.release()
    machine = platform.machine()
    libc = os.confstr("CS_GNU_LIBC_VERSION") or "unknown libc"
    detail = f"Linux {kernel} {machine}, {libc}"
    if platform.system() != "Linux":
        return Check(FAIL, "platform", f"{platform.system()} is not Linux", "run on Linux")
    if _version(kernel) < MIN_KERNEL:
        return Check(FAIL, "platform", detail + " (F_SEAL_FUTURE_WRITE needs Linux >= 5.1)",
                     "upgrade the kernel to 5.1 or newer")
    if machine not in ("x86_64", "aarch64"):
        return Check(WARN, "platform", detail + " (tested on x86_64 and aarch64 only)",
                     "use x86_64 or aarch64, or report how it goes")
    if not libc.startswith("glibc") or _version(libc.split()[-1]) < MIN_GLIBC:
        return Check(FAIL, "platform", detail + " (mq_* and pthread_* must be in libc: glibc >= 2.34)",
                     "use a distribution with glibc 2.34 or newer")
    return Check(OK, "platform", detail)


def _memfd(config) -> Check:
    from agnoshm.memory.memfd import MEMFD

    severity = FAIL if config is not None and config.backend == MEMFD.name else WARN
    name = "memfd_create"
    try:
        fd = _libc.memfd_create(b"agnoshm-doctor", _libc.MFD_CLOEXEC | _libc.MFD_ALLOW_SEALING)
    except OSError as err:
        return Check(severity, name, f"memfd_create fails: {err.strerror}",
                     "use the shm backend (AGNOSHM_BACKEND=shm), or a kernel with memfd_create "
                     "(a seccomp profile may block it)")
    try:
        os.ftruncate(fd, 4096)
        seals = _libc.F_SEAL_SHRINK | _libc.F_SEAL_GROW | _libc.F_SEAL_FUTURE_WRITE
        import fcntl

        try:
            fcntl.fcntl(fd, _libc.F_ADD_SEALS, seals)
        except OSError as err:
            return Check(severity, name, f"works, but sealing fails ({err.strerror}): "
                         "F_SEAL_FUTURE_WRITE needs Linux >= 5.1",
                         "use the shm backend (AGNOSHM_BACKEND=shm) or upgrade the kernel")
        try:
            address = _libc.mmap(None, 4096, _libc.PROT_READ | _libc.PROT_WRITE, _libc.MAP_SHARED,
                                 fd, 0)
        except OSError as err:
            if err.errno == errno.EPERM:
                return Check(OK, name, "works; a sealed pool refuses writable mappings")
            raise
        _libc.munmap(address, 4096)
        return Check(severity, name, "a sealed memfd still maps writable: invariant 1 would "
                     "not hold with the memfd backend", "use the shm backend (AGNOSHM_BACKEND=shm)")
    finally:
        os.close(fd)


def _noreplace(config) -> Check:
    name = "MAP_FIXED_NOREPLACE"
    flags = _libc.MAP_PRIVATE | _libc.MAP_ANONYMOUS
    page = 4096
    taken = _libc.mmap(None, page, _libc.PROT_NONE, flags, -1, 0)
    try:
        try:
            got = _libc.mmap(taken, page, _libc.PROT_NONE, flags | _libc.MAP_FIXED_NOREPLACE, -1, 0)
        except OSError as err:
            if err.errno == errno.EEXIST:
                return Check(OK, name, "refuses to map over an existing mapping (EEXIST)")
            return Check(FAIL, name, f"mmap fails: {err.strerror}", "use Linux >= 4.17")
        _libc.munmap(got, page)
        return Check(FAIL, name, "the kernel ignores the flag (Linux < 4.17): agnoshm could not "
                     "keep other mappings out of its range", "upgrade to Linux 4.17 or newer")
    finally:
        _libc.munmap(taken, page)


def _address_range(config) -> Check:
    from agnoshm.errors import AddressRangeInUseError
    from agnoshm.memory import AddressReservation

    name = "address range"
    size = config.range_size
    span = f"0x{config.base_address:x}..0x{config.range_end:x} ({S.size_text(size)})"
    import agnoshm

    if agnoshm.ok():
        return Check(OK, name, f"{span} is held by agnoshm in this process")
    try:
        AddressReservation(config.base_address, size).close()
    except AddressRangeInUseError:
        return Check(FAIL, name, f"{span} is already mapped in this process: "
                     f"{_overlap(config.base_address, config.range_end)}",
                     "set another base_address (AGNOSHM_BASE_ADDRESS) in every process of "
                     "the domain")
    except OSError as err:
        return Check(FAIL, name, f"cannot reserve {span}: {err.strerror}",
                     "lower pool_size or max_processes (AGNOSHM_POOL_SIZE, AGNOSHM_MAX_PROCESSES); "
                     "check `ulimit -v` (address space limit)")
    return Check(OK, name, f"{span} reserved and released in this process")


def _overlap(start: int, end: int) -> str:
    found = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                if lo < end and hi > start:
                    found.append(f"{parts[0]} {parts[5] if len(parts) > 5 else '[anonymous]'}")
    except OSError:
        pass
    return ", ".join(found[:3]) or "unknown mapping"


def _dev_shm(config) -> list[Check]:
    name = "/dev/shm"
    path = S.SHM_DIR
    if not os.path.isdir(path):
        return [Check(FAIL, name, "does not exist", "mount a tmpfs on /dev/shm "
                      "(mount -t tmpfs tmpfs /dev/shm), or in Docker run with --shm-size")]
    st = os.statvfs(path)
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    used = sum(clean._allocated(p) for p in _agnoshm_objects())
    detail = (f"{S.size_text(free)} free of {S.size_text(total)}; agnoshm objects hold "
              f"{S.size_text(used)}")
    checks = []
    if free < MIN_SHM_FREE:
        checks.append(Check(FAIL, name, detail, "free /dev/shm (agnoshm clean removes what dead "
                            "processes left) or enlarge it (mount -o remount,size=4G /dev/shm; "
                            "Docker: --shm-size)"))
    elif free < config.pool_size:
        checks.append(Check(WARN, name, detail + f"; a pool may fill up to "
                            f"{S.size_text(config.pool_size)}", "enlarge /dev/shm, or expect "
                            "PoolExhaustedError once pools hold that much"))
    else:
        checks.append(Check(OK, name, detail))
    test = f"/agnoshm-doctor@{os.getpid()}".encode()
    try:
        fd = _libc.shm_open(test, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, 1 << 20)
            os.posix_fallocate(fd, 0, 4096)
        finally:
            os.close(fd)
            _libc.shm_unlink(test)
        checks.append(Check(OK, "shm_open", "created, committed and removed a test object"))
    except OSError as err:
        checks.append(Check(FAIL, "shm_open", f"cannot create a shm object: {err.strerror}",
                            "make /dev/shm writable for this user (mode 1777)"))
    return checks


def _agnoshm_objects() -> list[str]:
    import glob

    from agnoshm.memory import BACKENDS

    pools = [path for backend in BACKENDS.values() for _pid, path in backend.pools()]
    return pools + glob.glob(f"{S.SHM_DIR}/agnoshm-registry-*")


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _message_queues(config) -> list[Check]:
    from agnoshm.transport.announce import MAX_MESSAGES, MESSAGE_SIZE

    msg_max = _read_int(f"{MQUEUE}/msg_max")
    msgsize_max = _read_int(f"{MQUEUE}/msgsize_max")
    queues_max = _read_int(f"{MQUEUE}/queues_max")
    soft, _hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    per_queue = MAX_MESSAGES * (MESSAGE_SIZE + _MSG_STRUCT_BYTES)
    fits = "unlimited" if soft == resource.RLIM_INFINITY else str(soft // per_queue)
    detail = (f"msg_max {msg_max}, msgsize_max {msgsize_max}, queues_max {queues_max}, "
              f"RLIMIT_MSGQUEUE {'unlimited' if soft == resource.RLIM_INFINITY else S.size_text(soft)}"
              f" (~{fits} agnoshm processes of this user)")
    checks = []
    if msg_max is not None and msg_max < MAX_MESSAGES or \
            msgsize_max is not None and msgsize_max < MESSAGE_SIZE:
        checks.append(Check(FAIL, "mq limits", detail + f"; agnoshm needs {MAX_MESSAGES} x "
                            f"{MESSAGE_SIZE} B queues", f"sysctl fs.mqueue.msg_max={MAX_MESSAGES} "
                            f"fs.mqueue.msgsize_max={MESSAGE_SIZE} (Linux defaults are 10 and 8192)"))
    elif soft != resource.RLIM_INFINITY and soft // per_queue < config.max_processes // 4:
        checks.append(Check(WARN, "mq limits", detail, "raise RLIMIT_MSGQUEUE (ulimit -q, or "
                            "LimitMSGQUEUE= in a systemd unit)"))
    else:
        checks.append(Check(OK, "mq limits", detail))
    if clean.mqueue_mounted():
        count = len(os.listdir(clean.MQUEUE_DIR))
        if queues_max is not None and count >= queues_max * 0.9:
            checks.append(Check(WARN, "mq count", f"{count} queues exist, queues_max is "
                                f"{queues_max}", "agnoshm clean removes queues of dead "
                                "processes; or raise fs.mqueue.queues_max"))
    test = f"/agnoshm-doctor@{os.getpid()}".encode()
    attr = _libc.mq_attr(mq_flags=0, mq_maxmsg=MAX_MESSAGES, mq_msgsize=MESSAGE_SIZE)
    try:
        mqd = _libc.mq_open(test, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NONBLOCK
                            | os.O_CLOEXEC, 0o600, ctypes.byref(attr))
        _libc.mq_close(mqd)
        _libc.mq_unlink(test)
        checks.append(Check(OK, "mq_open", f"created and removed a {MAX_MESSAGES} x "
                            f"{MESSAGE_SIZE} B test queue"))
    except OSError as err:
        fix = ("agnoshm clean removes queues of dead processes; else raise RLIMIT_MSGQUEUE "
               "(ulimit -q) or fs.mqueue.queues_max") if err.errno in (errno.EMFILE, errno.ENOSPC,
                                                                    errno.ENOMEM) else \
            "POSIX message queues must be available (CONFIG_POSIX_MQUEUE; in a container, " \
            "an IPC namespace that allows them)"
        checks.append(Check(FAIL, "mq_open", f"cannot create a queue: {err.strerror}", fix))
    return checks


def _registry(config) -> list[Check]:
    from agnoshm.errors import RegistryError

    domain = config.domain_id
    name = "registry"
    try:
        snap = S.read(domain)
    except S.NoRegistryError:
        return [Check(OK, name, f"none for ROS domain {domain} yet (no agnoshm process runs "
                      "there); the first process creates it")]
    except RegistryError as err:
        return [Check(FAIL, name, str(err), "stop the processes of that domain and run "
                      "agnoshm clean, or use another ROS_DOMAIN_ID")]
    except S.CommandError as err:
        return [Check(FAIL, name, str(err), "run as the user of the agnoshm processes, or "
                      "configure a shared group (AGNOSHM_GROUP)")]
    alive = [p for p in snap.processes if p.alive]
    dead = [p for p in snap.processes if not p.alive]
    detail = (f"{snap.path}: layout version {snap.layout_version}, "
              f"{S.plural(len(alive), 'live process')}, {S.plural(len(snap.topics), 'topic')}, "
              f"pool {S.size_text(snap.pool_size)} at 0x{snap.base_address:x}")
    checks = [Check(OK, name, detail)]
    if dead:
        checks.append(Check(WARN, "dead members", ", ".join(f"pid {p.pid} ({p.name})" for p in dead)
                            + (" is" if len(dead) == 1 else " are") + " registered but no longer "
                            "running", "nothing to do if another process of the domain runs (it "
                            "reaps the dead within a second); else agnoshm clean"))
    differs = [k for k in ("pool_size", "base_address") if getattr(config, k) !=
               getattr(snap, k)] + [k for k, v in snap.capacities.items() if getattr(config, k) != v]
    if differs:
        checks.append(Check(WARN, "registry config", f"the registry was created with other "
                            f"{', '.join(differs)} than this configuration; the registry's values "
                            "apply to every process that joins", "use one configuration in every "
                            "process of the domain"))
    return checks


def _stale() -> list[Check]:
    found = clean.survey()
    checks = []
    for item in found.stale:
        size = f", {S.size_text(item.size)}" if item.size else ""
        checks.append(Check(WARN, f"stale {item.kind}", f"{item.path}: {item.reason}{size}",
                            "agnoshm clean"))
    for item in found.unsure:
        checks.append(Check(WARN, item.kind, f"{item.path}: {item.reason}",
                            "remove it by hand once no process uses it"))
    if not checks:
        checks.append(Check(OK, "stale objects",
                            f"none ({S.plural(len(found.live), 'live agnoshm object')})"))
    return checks


def _permissions(config) -> list[Check]:
    checks = []
    st = os.stat(S.SHM_DIR)
    if not os.access(S.SHM_DIR, os.W_OK | os.X_OK):
        checks.append(Check(FAIL, "permissions", f"{S.SHM_DIR} is not writable by uid "
                            f"{os.getuid()}", "chmod 1777 /dev/shm"))
    elif st.st_mode & 0o777 == 0o777 and not st.st_mode & stat.S_ISVTX:
        checks.append(Check(WARN, "permissions", f"{S.SHM_DIR} lacks the sticky bit: any user "
                            "may remove agnoshm's objects", "chmod 1777 /dev/shm"))
    foreign = []
    for path in _agnoshm_objects():
        try:
            owner = os.stat(path).st_uid
        except FileNotFoundError:
            continue
        if owner != os.getuid() and not os.access(path, os.R_OK):
            foreign.append(f"{path} (uid {owner})")
    if foreign:
        checks.append(Check(WARN, "permissions", "not readable by this user: "
                            + ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else ""),
                            "run every process of a domain as one user, or set a shared group "
                            "(AGNOSHM_GROUP) in all of them"))
    if config.group is not None and config.group not in os.getgroups() and \
            config.group != os.getgid():
        checks.append(Check(WARN, "group", f"AGNOSHM_GROUP is gid {config.group}, which this user "
                            "is not in: it cannot hand its objects to that group",
                            f"add the user to gid {config.group}"))
    if not checks:
        checks.append(Check(OK, "permissions", f"{S.SHM_DIR} writable, objects readable, mode "
                            f"0o{config.mode:o}" + (f", group {config.group}"
                                                    if config.group is not None else "")))
    return checks
