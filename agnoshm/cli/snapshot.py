"""The CLI's view of one domain's registry: :func:`read` and the lookups that name close matches.

``agnoshm topic``, ``node``, ``doctor`` and ``clean`` read the registry through
the registry's read API (:mod:`agnoshm.registry.snapshot`), which never joins the
domain, never takes a lock and never writes; this module adds the CLI's errors
and the formatting helpers the verbs share.
"""

from __future__ import annotations

import dataclasses
import difflib
import os

from agnoshm.cli import CommandError
from agnoshm.names import SHM_DIR, registry_name
from agnoshm.registry import snapshot as R
from agnoshm.registry.snapshot import (  # noqa: F401  the dataclasses the verbs name
    DURABILITY_NAMES,
    Entry,
    Node,
    Process,
    Publisher,
    Subscription,
    Topic,
)


class NoRegistryError(CommandError):
    """Raised when the domain has no registry, i.e. no agnoshm process runs in it."""

    exit_code = 1


class NotFoundError(CommandError):
    """Raised for a topic or node that the registry does not know."""

    exit_code = 1


class Snapshot(R.Snapshot):
    """A :class:`agnoshm.registry.snapshot.Snapshot` whose lookups raise the CLI's errors."""

    def topic(self, name: str) -> Topic:
        """The topic called ``name`` (a relative name is taken from the root namespace).

        :raises NotFoundError: if there is none; the message names close matches.
        """
        name = normalize_topic(name)
        found = self.find_topic(name)
        if found is None:
            raise NotFoundError(_unknown("topic", name, [t.name for t in self.topics],
                                         self.domain_id, "agnoshm topic list"))
        return found

    def node(self, name: str) -> list[Node]:
        """Every node called ``name`` (usually one).

        :raises NotFoundError: if there is none.
        """
        name = name if name.startswith("/") else "/" + name
        nodes = [n for n in self.nodes() if n.name == name]
        if not nodes:
            raise NotFoundError(_unknown("node", name, sorted({n.name for n in self.nodes()}),
                                         self.domain_id, "agnoshm node list"))
        return nodes


def normalize_topic(name: str) -> str:
    """``chatter`` -> ``/chatter`` (the CLI resolves relative names against the root)."""
    name = name.strip()
    return name if name.startswith("/") else "/" + name


def _unknown(kind: str, name: str, known: list[str], domain_id: int, hint: str) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    text = f"unknown {kind} {name!r} in ROS domain {domain_id}"
    if close:
        text += f"; did you mean {' or '.join(close)}?"
    elif known:
        text += f"; `{hint}` shows the {len(known)} there are"
    else:
        text += f"; there is no {kind} at all"
    return text


def domain_id() -> int:
    """This process's ROS domain (``ROS_DOMAIN_ID``, default 0)."""
    from agnoshm.config import load_config

    return load_config().domain_id


def registry_path(domain: int) -> str:
    return SHM_DIR + registry_name(domain)


def read(domain: int | None = None) -> Snapshot:
    """Read the registry of ``domain`` (default: ``ROS_DOMAIN_ID``) without joining it.

    :raises NoRegistryError: if the domain has no registry (no agnoshm process runs there).
    :raises RegistryVersionError: if another agnoshm layout version created it.
    :raises RegistryCorruptedError: if it holds no agnoshm registry.
    """
    domain = domain_id() if domain is None else domain
    path = registry_path(domain)
    try:
        registry = R.RegistryFile(path)
    except FileNotFoundError:
        raise NoRegistryError(f"no agnoshm processes in ROS domain {domain} "
                              f"({path} does not exist)") from None
    except PermissionError:
        raise CommandError(f"may not read {path} (uid {os.getuid()}): run as the user of the "
                           "agnoshm processes, or configure a shared group (AGNOSHM_GROUP)") from None
    with registry:
        if not registry.initialized:
            raise NoRegistryError(f"no agnoshm processes in ROS domain {domain} "
                                  f"({path} is still being created)")
        snap = registry.snapshot()
    return Snapshot(**{f.name: getattr(snap, f.name) for f in dataclasses.fields(snap)})


# -- formatting helpers shared by the verbs -----------------------------------------------


def size_text(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def plural(n: int, word: str) -> str:
    """``plural(1, "topic")`` -> ``1 topic``; ``plural(0, "live process")`` -> ``0 live processes``."""
    if n == 1:
        return f"1 {word}"
    return f"{n} {word}" + ("es" if word.endswith(("s", "sh", "ch", "x", "z")) else "s")
