"""Effective configuration: defaults, the YAML file, then ``AGNOSHM_*`` variables.

The API layer builds one frozen :class:`Config` and passes it down; nothing
below the API reads the environment. ``config/agnoshm.yaml`` documents every
key; a test keeps it equal to the defaults here.
"""

from __future__ import annotations

import dataclasses
import grp
import os
from pathlib import Path
from typing import Any, Mapping

from agnoshm.errors import AgnoshmError

_SUFFIXES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
MAX_PER_TOPIC = 0xFFFF  # the registry counts a topic's publishers and subscriptions in 16 bits
MAX_ENTRIES = 0xFFFF  # a channel's log word keeps the entry index in 16 bits
NATIVE_SETTINGS = ("auto", "0", "1")  # AGNOSHM_NATIVE: see agnoshm/_native


class ConfigError(AgnoshmError, ValueError):
    """Raised when a configuration file or ``AGNOSHM_*`` variable holds a bad value."""


@dataclasses.dataclass(frozen=True)
class Config:
    """The settings one process runs with (see ``config/agnoshm.yaml``)."""

    backend: str = "shm"
    pool_size: int = 4 << 30
    base_address: int = 0x100000000000
    max_processes: int = 256
    max_topics: int = 1024
    max_publishers: int = 4096
    max_subscriptions: int = 8192
    max_entries: int = 256
    max_publishers_per_topic: int = 64
    max_subscriptions_per_topic: int = 256
    mode: int = 0o600
    group: int | None = None
    busy_poll_us: int = 0
    linger_sec: float = 1.0
    domain_id: int = 0
    native: str = "auto"

    def __post_init__(self) -> None:
        from agnoshm.memory import BACKENDS  # the one table of pool backends

        if self.backend not in BACKENDS:
            names = " or ".join(map(repr, BACKENDS))
            raise ConfigError(f"backend must be {names}, not {self.backend!r}")
        if self.pool_size < (1 << 20) or self.pool_size % (2 << 20):
            raise ConfigError(
                f"pool_size must be a multiple of 2 MiB and at least 2 MiB, not {self.pool_size}"
            )
        if self.base_address % (2 << 20):
            raise ConfigError(f"base_address must be 2 MiB aligned, not 0x{self.base_address:x}")
        if self.range_end > (1 << 47):
            raise ConfigError(
                f"address range 0x{self.base_address:x}..0x{self.range_end:x} passes the 47-bit "
                "user address space: lower base_address, pool_size or max_processes"
            )
        for name in ("max_processes", "max_topics", "max_publishers", "max_subscriptions", "max_entries"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("max_publishers_per_topic", "max_subscriptions_per_topic"):
            if not 1 <= getattr(self, name) <= MAX_PER_TOPIC:
                raise ConfigError(f"{name} must be 1..{MAX_PER_TOPIC}, not {getattr(self, name)}")
        if self.max_entries > MAX_ENTRIES:
            raise ConfigError(f"max_entries must be at most {MAX_ENTRIES}, not {self.max_entries}")
        if self.max_processes > 4096:
            raise ConfigError(f"max_processes must be at most 4096, not {self.max_processes}")
        if not 0 <= self.mode <= 0o777:
            raise ConfigError(f"mode must be permission bits 0o000..0o777, not {self.mode:#o}")
        if self.busy_poll_us < 0:
            raise ConfigError(f"busy_poll_us must be >= 0, not {self.busy_poll_us}")
        if not 0 <= self.linger_sec < float("inf"):  # also refuses nan
            raise ConfigError(f"linger_sec must be a finite number >= 0, not {self.linger_sec}")
        if self.native not in NATIVE_SETTINGS:
            raise ConfigError(f"native must be auto, 0 or 1, not {self.native!r}")
        if self.domain_id < 0:
            raise ConfigError(f"ROS_DOMAIN_ID must be a non-negative integer, not {self.domain_id}")

    @property
    def range_size(self) -> int:
        """Bytes of the reserved address range (one pool slot per process)."""
        return self.max_processes * self.pool_size

    @property
    def range_end(self) -> int:
        return self.base_address + self.max_processes * self.pool_size


def parse_size(value: Any) -> int:
    """Parse ``4G``, ``512M``, ``65536`` or an int into bytes."""
    if isinstance(value, int):
        return value
    text = str(value).strip().upper().removesuffix("B").removesuffix("I")
    factor = _SUFFIXES.get(text[-1:], 1)
    number = text[:-1] if factor != 1 else text
    try:
        return int(float(number) * factor)
    except (ValueError, OverflowError):  # OverflowError: "inf"
        raise ConfigError(f"not a size: {value!r} (use bytes or a K/M/G/T suffix, e.g. 4G)") from None


def _parse_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 0)
    except ValueError:
        raise ConfigError(f"not an integer: {value!r}") from None


def _parse_domain_id(value: Any) -> int:
    try:
        return _parse_int(value)
    except ConfigError:
        raise ConfigError(f"ROS_DOMAIN_ID={value!r} is not an integer: set it to a ROS domain "
                          "number, an integer 0 or above (0 when unset), or unset it") from None


def _parse_mode(value: Any) -> int:
    """Permission bits: a YAML int, or a string read as octal (``600``, ``0600``, ``0o600``)."""
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        raise ConfigError(f"not an octal mode: {value!r} (e.g. 0o600)") from None


def _parse_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"not a number: {value!r}") from None


def _parse_group(value: Any) -> int | None:
    if value in (None, "", "null"):
        return None
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    try:
        return grp.getgrnam(str(value)).gr_gid
    except KeyError:
        raise ConfigError(f"group {value!r} does not exist (create it or set group: null)") from None


def _parse_native(value: Any) -> str:
    """``auto``, ``0`` or ``1`` (YAML's true/false and 0/1 too): the C message path."""
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value).strip().lower()
    if text not in NATIVE_SETTINGS:
        raise ConfigError(f"not auto, 0 or 1: {value!r} (auto: the C message path when it was "
                          "built, 0: pure Python, 1: C or fail)")
    return text


_PARSERS = {
    "backend": str,
    "pool_size": parse_size,
    "base_address": _parse_int,
    "max_processes": _parse_int,
    "max_topics": _parse_int,
    "max_publishers": _parse_int,
    "max_subscriptions": _parse_int,
    "max_entries": _parse_int,
    "max_publishers_per_topic": _parse_int,
    "max_subscriptions_per_topic": _parse_int,
    "mode": _parse_mode,
    "group": _parse_group,
    "busy_poll_us": _parse_int,
    "linger_sec": _parse_float,
    "domain_id": _parse_domain_id,
    "native": _parse_native,
}


def config_file(environ: Mapping[str, str]) -> Path | None:
    """Return the configuration file that the lookup order selects, or None."""
    if environ.get("AGNOSHM_CONFIG"):
        path = Path(environ["AGNOSHM_CONFIG"])
        if not path.is_file():
            raise ConfigError(f"AGNOSHM_CONFIG names {path}, which is not a file")
        return path
    xdg = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    for path in (xdg / "agnoshm" / "agnoshm.yaml", Path("/etc/agnoshm/agnoshm.yaml")):
        try:
            if path.is_file():
                return path
        except PermissionError:  # a folder we may not search (another user's HOME): none here
            continue
    return None


def read_yaml(path: Path) -> dict:
    """Read one configuration file, refusing unknown keys."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not {type(data).__name__}")
    unknown = set(data) - set(_PARSERS)
    if unknown:
        raise ConfigError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(_PARSERS)}")
    return data


def read_yaml_mapping(path: str | Path, known: tuple[str, ...], error: type[Exception],
                      what: str) -> dict:
    """Read the YAML file of a tool (a bridge's, say): a mapping with only the ``known`` keys.

    :raises error: naming ``what`` and ``path`` if it cannot be read, is not valid YAML, holds
        no mapping, or has a key not in ``known``.
    """
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as err:
        raise error(f"cannot read {what} {path}: {err}") from None
    if not isinstance(data, dict):
        raise error(f"{path} must hold a mapping ({', '.join(known)})")
    unknown = set(data) - set(known)
    if unknown:
        raise error(f"unknown key(s) {sorted(unknown)} in {path} (known: {', '.join(known)})")
    return data


def load_config(environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Build the effective :class:`Config`.

    :param environ: the environment to read (default ``os.environ``).
    :param overrides: keyword settings that win over file and environment.
    :raises ConfigError: if a file or variable holds a bad value.
    """
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    path = config_file(environ)
    if path is not None:
        for key, value in read_yaml(path).items():
            settings[key] = _parse(key, value, f"{path}: {key}")
    for key in _PARSERS:
        env_name = "ROS_DOMAIN_ID" if key == "domain_id" else f"AGNOSHM_{key.upper()}"
        if environ.get(env_name, "") != "":
            settings[key] = _parse(key, environ[env_name], env_name)
    for key, value in overrides.items():
        settings[key] = _parse(key, value, key)
    return Config(**settings)


def _parse(key: str, value: Any, source: str) -> Any:
    """Parse one setting; a bad value's error names where it came from (file and key, or the
    environment variable)."""
    try:
        return _PARSERS[key](value)
    except ConfigError as err:
        message = str(err)
        raise ConfigError(message if message.startswith(source) else f"{source}: {message}") from None
