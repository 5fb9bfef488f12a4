"""Thread settings per callback group, read from YAML, applied to one Linux thread.

The file :class:`~agnoshm.executors.callback_isolated.CallbackIsolatedExecutor`
reads (see docs/executors.md)::

    callback_groups:
      /camera/driver/capture:        # <node fully qualified name>/<group name>
        policy: SCHED_FIFO           # SCHED_OTHER (default), SCHED_BATCH, SCHED_IDLE, SCHED_FIFO, SCHED_RR
        priority: 10                 # 1..99 with SCHED_FIFO / SCHED_RR, nothing else
        cpu_affinity: [1]            # the CPUs the thread may run on
      /camera/driver/default:
        nice: 5                      # -20..19, with SCHED_OTHER / SCHED_BATCH

A setting the process may not apply raises :class:`ThreadSettingError` naming
the capability or cause and the fix; nothing is silently left out.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import resource
import threading
from pathlib import Path
from typing import Mapping

from agnoshm.config import read_yaml_mapping
from agnoshm.errors import AgnoshmError

POLICIES = {
    "SCHED_OTHER": os.SCHED_OTHER, "SCHED_BATCH": os.SCHED_BATCH, "SCHED_IDLE": os.SCHED_IDLE,
    "SCHED_FIFO": os.SCHED_FIFO, "SCHED_RR": os.SCHED_RR,
}
_REALTIME = ("SCHED_FIFO", "SCHED_RR")
_NICE_POLICIES = ("SCHED_OTHER", "SCHED_BATCH")  # the policies nice means something under
SETTINGS = ("nice", "policy", "priority", "cpu_affinity")
_KEY = re.compile(r"(/[A-Za-z_][A-Za-z0-9_]*)+/[A-Za-z_][A-Za-z0-9_]*\Z")
_CAP_FIX = ("run as root, give the interpreter the capability (sudo setcap cap_sys_nice+ep "
            "<python binary>; in a container: --cap-add SYS_NICE)")


class ThreadConfigError(AgnoshmError, ValueError):
    """Raised when a thread configuration is malformed (unknown key, policy or bad value)."""


class ThreadSettingError(AgnoshmError, OSError):
    """Raised when a callback group's thread setting cannot be applied by this process."""


@dataclasses.dataclass(frozen=True)
class ThreadSettings:
    """What to set on one callback group's thread; None leaves a setting as inherited."""

    policy: str | None = None
    priority: int | None = None
    nice: int | None = None
    cpu_affinity: tuple[int, ...] | None = None

    def to_yaml(self) -> dict:
        return {k: (list(v) if k == "cpu_affinity" else v)
                for k, v in dataclasses.asdict(self).items() if v is not None}


def load_thread_config(source: str | Path | Mapping | None) -> dict[str, ThreadSettings]:
    """Read a thread configuration: a YAML file's path, or the same mapping in code.

    :return: settings by group key (``<node fully qualified name>/<group name>``).
    :raises ThreadConfigError: naming the key that is wrong and what it may be.
    """
    if source is None:
        return {}
    if isinstance(source, Mapping):
        data, where = dict(source), "thread configuration"
        unknown = set(data) - {"callback_groups"}
        if unknown:
            raise ThreadConfigError(f"unknown key(s) {sorted(map(str, unknown))} in {where} "
                                    "(known: callback_groups)")
    else:
        data = read_yaml_mapping(source, ("callback_groups",), ThreadConfigError,
                                 "thread configuration")
        where = str(source)
    groups = data.get("callback_groups") or {}
    if not isinstance(groups, Mapping):
        raise ThreadConfigError(f"{where}: callback_groups must map '<node>/<group name>' to "
                                f"settings, not {type(groups).__name__}")
    return {key: _settings(f"{where}: callback_groups.{key}", key, value)
            for key, value in groups.items()}


def _settings(where: str, key, value) -> ThreadSettings:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ThreadConfigError(f"{where}: a callback group key is '<node fully qualified "
                                f"name>/<group name>' (say /ns/node/default), not {key!r}")
    value = {} if value is None else value
    if not isinstance(value, Mapping):
        raise ThreadConfigError(f"{where} must be a mapping of settings ({', '.join(SETTINGS)})")
    unknown = set(value) - set(SETTINGS)
    if unknown:
        raise ThreadConfigError(f"{where}: unknown setting(s) {sorted(map(str, unknown))} "
                                f"(known: {', '.join(SETTINGS)})")
    policy = value.get("policy")
    if policy is not None and policy not in POLICIES:
        raise ThreadConfigError(f"{where}.policy must be one of {', '.join(POLICIES)}, "
                                f"not {policy!r}")
    priority = _integer(where, "priority", value.get("priority"))
    if policy in _REALTIME:
        low, high = os.sched_get_priority_min(POLICIES[policy]), os.sched_get_priority_max(POLICIES[policy])
        if priority is None or not low <= priority <= high:
            raise ThreadConfigError(f"{where}.priority must be {low}..{high} with {policy}, "
                                    f"not {priority!r}")
    elif priority is not None:
        raise ThreadConfigError(f"{where}.priority needs policy SCHED_FIFO or SCHED_RR (under "
                                f"{policy or 'SCHED_OTHER'} use nice), not priority {priority}")
    nice = _integer(where, "nice", value.get("nice"))
    if nice is not None:
        if not -20 <= nice <= 19:
            raise ThreadConfigError(f"{where}.nice must be -20..19, not {nice}")
        if (policy or "SCHED_OTHER") not in _NICE_POLICIES:
            raise ThreadConfigError(f"{where}.nice has no effect under {policy}: drop nice, or "
                                    "use SCHED_OTHER / SCHED_BATCH")
    cpus = value.get("cpu_affinity")
    if cpus is not None:
        if (not isinstance(cpus, list) or not cpus
                or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in cpus)):
            raise ThreadConfigError(f"{where}.cpu_affinity must be a non-empty list of CPU "
                                    f"numbers (say [0, 1]), not {cpus!r}")
        cpus = tuple(sorted(set(cpus)))
    return ThreadSettings(policy=policy, priority=priority, nice=nice, cpu_affinity=cpus)


def _integer(where: str, name: str, value) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ThreadConfigError(f"{where}.{name} must be an integer, not {value!r}")
    return value


def apply(tid: int, settings: ThreadSettings, key: str) -> None:
    """Apply ``settings`` to the thread ``tid`` (a native id) of callback group ``key``.

    :raises ThreadSettingError: naming the setting, the cause and the fix.
    """
    if settings.policy is not None:
        policy = POLICIES[settings.policy]
        try:
            os.sched_setscheduler(tid, policy, os.sched_param(settings.priority or 0))
        except PermissionError:
            what = f"{settings.policy} priority {settings.priority}"
            if settings.policy in _REALTIME:
                why = ("real-time scheduling needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least "
                       f"{settings.priority} (now {_rtprio()})")
                fix = (f"{_CAP_FIX}, raise the limit (ulimit -r {settings.priority}; rtprio in "
                       "/etc/security/limits.conf), or remove policy from the configuration")
            else:  # leaving SCHED_IDLE, say
                why = "the thread's current policy may only be left with CAP_SYS_NICE"
                fix = f"{_CAP_FIX}, or remove policy from the configuration"
            raise ThreadSettingError(f"callback group {key}: cannot set {what}: {why}; {fix}") from None
        except OSError as err:
            raise ThreadSettingError(f"callback group {key}: cannot set {settings.policy} "
                                     f"priority {settings.priority}: {err}") from None
    if settings.nice is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, settings.nice)
        except PermissionError:  # EACCES: lowering nice
            raise ThreadSettingError(
                f"callback group {key}: cannot set nice {settings.nice} (below the current "
                f"{os.getpriority(os.PRIO_PROCESS, tid)}): lowering nice needs CAP_SYS_NICE or "
                f"RLIMIT_NICE (ulimit -e); {_CAP_FIX}, raise the limit, or use nice >= "
                f"{os.getpriority(os.PRIO_PROCESS, tid)}") from None
    if settings.cpu_affinity is not None:
        wanted = set(settings.cpu_affinity)
        try:
            os.sched_setaffinity(tid, wanted)  # the kernel drops CPUs outside the cpuset
            pinned = os.sched_getaffinity(tid)
        except OSError as err:
            if err.errno != errno.EINVAL:  # EINVAL: none of them is allowed
                raise ThreadSettingError(f"callback group {key}: cannot pin to CPUs "
                                         f"{sorted(wanted)}: {err}") from None
            pinned = set()
        if pinned != wanted:
            raise ThreadSettingError(
                f"callback group {key}: cannot pin to CPUs {sorted(wanted)}: CPU(s) "
                f"{sorted(wanted - pinned)} are not available to this process (allowed: "
                f"{_allowed_cpus(tid)}, from its cpuset); use CPUs from that list in "
                "cpu_affinity") from None


class GroupThread:
    """A callback group's thread, given its settings before it runs anything: ``target``
    gets ``(*args, this)`` and waits for :attr:`configured` first."""

    def __init__(self, key: str, settings: ThreadSettings | None, target, *args):
        self.key = key
        self.settings = settings
        self.stopped = False
        self.configured = threading.Event()
        self.thread = threading.Thread(target=target, args=(*args, self),
                                       name=f"agnoshm-group {key}", daemon=True)

    def start(self) -> None:
        """Start the thread and apply the group's settings before it runs any callback.

        :raises ThreadSettingError: if a setting cannot be applied (the thread then ends).
        """
        self.thread.start()
        try:
            if self.settings is not None:
                apply(self.thread.native_id, self.settings, self.key)
        except BaseException:
            self.stopped = True
            raise
        finally:
            self.configured.set()


def _rtprio() -> int:
    return resource.getrlimit(resource.RLIMIT_RTPRIO)[0]


def _allowed_cpus(tid: int) -> list[int]:
    """The CPUs the kernel lets thread ``tid`` use (its cpuset; the thread's mask is lost)."""
    try:
        os.sched_setaffinity(tid, range(os.cpu_count() or 1))
        return sorted(os.sched_getaffinity(tid))
    except OSError:
        return sorted(os.sched_getaffinity(0))


def keyed_groups(nodes, members_of, name_of) -> list[tuple[str, object, object, bool]]:
    """``(key, group, members, named)`` for every callback group with entities, node by node.

    The key is ``<node fully qualified name>/<group name>``; a node's default group is
    named ``default``; a group shared by two nodes belongs to the first.  ``members_of(node)``
    gives ``{group: members}``, ``name_of(group)`` a group's name or None.

    :raises ThreadConfigError: when a node has two groups of the same name.
    """
    found = []
    seen = set()
    for node in nodes:
        fqn = node.get_fully_qualified_name()
        names = set()
        for group, members in members_of(node).items():
            if group in seen:
                continue
            seen.add(group)
            name = name_of(group)
            if name is None and group is node.default_callback_group:
                name = "default"
            if name is None:
                found.append((f"{fqn}/<unnamed {len(found)}>", group, members, False))
                continue
            if name in names:
                raise ThreadConfigError(
                    f"node {fqn} has two callback groups named {name!r} (the default "
                    "group is 'default'): give each group of a node its own name")
            names.add(name)
            found.append((f"{fqn.rstrip('/')}/{name}", group, members, True))
    return found


def unknown_groups(config: Mapping, groups: list[tuple[str, object, object, bool]]) -> str | None:
    """A warning when the thread configuration names groups none of ``groups`` is, else None."""
    named = [key for key, _, _, is_named in groups if is_named]
    unknown = sorted(set(config) - set(named))
    if not unknown:
        return None
    return (f"thread configuration names callback group(s) {', '.join(unknown)} that no node "
            f"of this executor has yet (known: {', '.join(named) or 'none'})")


def template(groups: list[tuple[str, str, bool]], how_to_name: str = "create it with name=...") -> str:
    """A thread configuration to fill in: ``groups`` are ``(key, members, named)``;
    ``how_to_name`` tells how to name an unnamed group."""
    lines = [
        "# agnoshm thread configuration (CallbackIsolatedExecutor(thread_config=...)):",
        "# one entry per callback group, <node fully qualified name>/<group name>; settings:",
        "#   policy: SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_FIFO | SCHED_RR",
        "#   priority: 1..99 (SCHED_FIFO, SCHED_RR only)   nice: -20..19 (SCHED_OTHER, SCHED_BATCH)",
        "#   cpu_affinity: [0, 1]",
        "callback_groups:",
    ]
    for key, members, named in groups:
        if named:
            lines.append(f"  {key}: {{}}  # {members}")
        else:
            lines.append(f"  # {key} ({members}) has no name: {how_to_name} to "
                         "configure its thread")
    if len(lines) == 6:
        lines[-1] += " {}"
    return "\n".join(lines) + "\n"
