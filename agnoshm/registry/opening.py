"""Opening the registry: create it race-free or validate the one that exists.

:func:`validate_header` is the one check of a registry header; the joining
:class:`~agnoshm.registry.registry.Registry` and the read-only reader
(:mod:`agnoshm.registry.snapshot`) both call it.
"""

from __future__ import annotations

import ctypes
import os

from agnoshm import _libc
from agnoshm.config import Config
from agnoshm.errors import (
    LimitReachedError,
    RegistryCorruptedError,
    RegistryError,
    RegistryVersionError,
)
from agnoshm.registry import layout as L
from agnoshm.registry import liveness
from agnoshm.registry.lock import RobustLock, initialize_mutex


def validate_header(header: L.Header, size: int | None, where: str, *, joining: bool) -> None:
    """Check a header that has magic: agnoshm's, this layout version, sane capacities.

    :param size: the object's size, checked against the header (None: not checked).
    :param where: the registry's shm name (joining) or its path (reading), for messages.
    :param joining: a process joining the domain must run the same version; a reader
        only needs a version that reads this layout.  The fix each message names differs.
    :raises RegistryCorruptedError: for no agnoshm magic, bad capacities or sizes.
    :raises RegistryVersionError: for another layout version.
    """
    if header.magic != L.MAGIC:
        remove = f"remove /dev/shm{where}" if joining else "remove it"
        raise RegistryCorruptedError(
            f"{where} is not an agnoshm registry (magic 0x{header.magic:016x}): another "
            f"program uses this name, or it was overwritten; {remove} when no agnoshm process "
            "runs (agnoshm clean)")
    if header.layout_version != L.LAYOUT_VERSION:
        if joining:
            raise RegistryVersionError(
                f"{where} has layout version {header.layout_version}, this agnoshm uses "
                f"{L.LAYOUT_VERSION}: run the same agnoshm version in every process of ROS "
                f"domain {header.domain_id}, or use another ROS_DOMAIN_ID")
        raise RegistryVersionError(
            f"{where} has registry layout version {header.layout_version}, this agnoshm reads "
            f"version {L.LAYOUT_VERSION}: use the agnoshm version that the processes of ROS "
            f"domain {header.domain_id} run")
    bad = L.bad_per_topic_capacity(header)
    if bad:
        fix = "remove it with agnoshm clean" if joining else \
            "remove it when no agnoshm process runs (agnoshm clean)"
        raise RegistryCorruptedError(f"{where} header is corrupted ({bad}): {fix}")
    if size is None:
        return
    expected = L.Offsets(header).total_size
    if header.total_size != expected or size < expected:
        raise RegistryCorruptedError(
            f"{where} header is inconsistent (size {size}, header says {header.total_size}, "
            f"capacities need {expected}): remove it with agnoshm clean")


def read_header(fd: int) -> L.Header:
    """A copy of the header of the registry open at ``fd`` (zeros where it is shorter)."""
    raw = os.pread(fd, ctypes.sizeof(L.Header), 0)
    return L.Header.from_buffer_copy(raw.ljust(ctypes.sizeof(L.Header), b"\0"))


class Opening:
    """The :class:`Registry`'s steps of opening: the name, the header, the tables."""

    name: str
    _fd: int

    def _open_fd(self, config: Config) -> tuple[int, bool]:
        name = self.name.encode()
        mode = config.mode | (0o060 if config.group is not None else 0) | ((config.mode & 0o444) >> 1)
        try:
            fd = _libc.shm_open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            if config.group is not None:
                os.fchown(fd, -1, config.group)
            os.fchmod(fd, mode)
            return fd, True
        except FileExistsError:
            pass
        try:
            return _libc.shm_open(name, os.O_RDWR | os.O_CLOEXEC, 0), False
        except PermissionError as err:
            raise RegistryError(
                f"may not open registry {self.name} (uid {os.getuid()}): run as the user who "
                "created it or configure a shared group (AGNOSHM_GROUP)"
            ) from err
        except FileNotFoundError:
            return self._open_fd(config)

    def _initialize_or_validate(self, config: Config, created: bool) -> int:
        """Initialize the header if nobody did; return the object size, 0 if it was closed."""
        liveness.lock_byte_blocking(self._fd, L.INIT_LOCK_BYTE)
        try:
            size = os.fstat(self._fd).st_size
            header = read_header(self._fd)
            if header.magic == 0:
                # Nobody finished initializing (a creator may have died after sizing it
                # for other capacities): size it for ours, then write the header.
                offsets = L.Offsets(config)
                size = offsets.total_size
                os.ftruncate(self._fd, size)
                # Back every table but the channels and receipts now: a page of a sparse shm object
                # first touched on a full /dev/shm is a SIGBUS, and scans read them all.
                self._commit(0, offsets.channels, "the registry's tables")
                self._write_header(config, size)
                return size
            validate_header(header, size, self.name, joining=True)
            if header.state == L.REGISTRY_CLOSED:
                self._unlink_if_abandoned()
                return 0
            return header.total_size
        finally:
            liveness.unlock_byte(self._fd, L.INIT_LOCK_BYTE)

    def _unlink_if_abandoned(self) -> None:
        """Unlink this closed registry if its last process died before unlinking it.

        ``leave`` marks it closed and unlinks it holding the global lock, so once we
        hold that lock a closer that is alive is done; if the name still denotes
        this object, the closer died in between and would wedge the domain forever.
        """
        address = _libc.mmap(None, L.PAGE, _libc.PROT_READ | _libc.PROT_WRITE, _libc.MAP_SHARED,
                             self._fd, 0)
        try:
            with RobustLock(address + L.Header.lock.offset, lambda: None):  # closed: no repair
                try:
                    fd = _libc.shm_open(self.name.encode(), os.O_RDONLY | os.O_CLOEXEC, 0)
                except FileNotFoundError:
                    return
                try:
                    named, ours = os.fstat(fd), os.fstat(self._fd)
                    if (named.st_dev, named.st_ino) == (ours.st_dev, ours.st_ino):
                        _libc.shm_unlink(self.name.encode())
                finally:
                    os.close(fd)
        finally:
            _libc.munmap(address, L.PAGE)

    def _commit(self, offset: int, length: int, what: str) -> None:
        """Back ``length`` bytes at ``offset`` with memory (posix_fallocate), or raise.

        :raises LimitReachedError: if /dev/shm (or RAM) has no room for them.
        """
        if not _libc.fallocate(self._fd, offset, length):
            raise LimitReachedError(
                f"no memory left in /dev/shm for {what} in registry {self.name} "
                f"({length} bytes): free space in /dev/shm (agnoshm clean removes what "
                "dead processes left)")

    def _write_header(self, config: Config, size: int) -> None:
        address = _libc.mmap(None, L.PAGE, _libc.PROT_READ | _libc.PROT_WRITE, _libc.MAP_SHARED,
                             self._fd, 0)
        try:
            header = L.Header.from_address(address)
            ctypes.memset(address, 0, L.PAGE)
            header.layout_version = L.LAYOUT_VERSION
            header.domain_id = config.domain_id
            for key in ("max_processes", "max_topics", "max_publishers", "max_subscriptions",
                        "max_entries", *L.PER_TOPIC_CAPACITIES, "pool_size", "base_address"):
                setattr(header, key, getattr(config, key))
            header.total_size = size
            initialize_mutex(address + L.Header.lock.offset)
            header.state = L.REGISTRY_READY
            header.magic = L.MAGIC  # last: a header with magic is complete
        finally:
            _libc.munmap(address, L.PAGE)
