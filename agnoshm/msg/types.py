"""The registry of message types: names resolved to definitions, from the type sources.

A type is named ``"pkg/msg/Name"`` (``"pkg/Name"`` is accepted and normalized).
:class:`TypeRegistry` resolves a name from these sources, in this order:

1. agnoshm's own type, ``agnoshm/msg/Bytes`` (:mod:`agnoshm.msg.bytes`). No
   other source is asked for it: an rclpy-style lookup imports ``agnoshm.msg``
   and takes ``Bytes``, which asks this registry again.
2. **rclpy message classes**, when ``import rclpy`` works (tried lazily, once):
   :mod:`agnoshm.msg.rclpy_source`.
3. **rosbags type stores**: :mod:`agnoshm.msg.rosbags_source`.
4. **user definitions** registered with :meth:`TypeRegistry.register_msg` (text
   or a ``.msg`` file) or :meth:`TypeRegistry.register_package` (a package
   folder with ``msg/*.msg``): :mod:`agnoshm.msg.user_source`.

Every definition it hands out carries its RIHS01 type hash (:mod:`agnoshm.msg.rihs01`).
The model (:class:`MessageDefinition` and its parts) is :mod:`agnoshm.msg.definition`;
its names are importable from here too, as before the split.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import threading
from typing import Any

from agnoshm.msg.bytes import BYTES_DEFINITION, BYTES_TYPE_NAME
from agnoshm.msg.definition import (
    EMPTY_MEMBER, PRIMITIVES, STRING, WSTRING, Constant, Field, FieldType, MessageDefinition,
    MessageDefinitionError, UnknownTypeError, normalize_type_name,
)
from agnoshm.msg.parser import parse_msg
from agnoshm.msg.rclpy_source import (
    RclpySource, class_type_name, from_message_class, is_message_class,
)
from agnoshm.msg.rihs01 import rihs01, struct_description
from agnoshm.msg.rosbags_source import STANDARD_DEFAULTS, RosbagsSource
from agnoshm.msg.user_source import read_msg, read_package

__all__ = [
    "PRIMITIVES", "STRING", "WSTRING", "EMPTY_MEMBER", "STANDARD_DEFAULTS",
    "FieldType", "Field", "Constant", "MessageDefinition",
    "UnknownTypeError", "MessageDefinitionError",
    "TypeRegistry", "default_registry", "get_definition", "type_hash",
    "register_msg", "register_package", "normalize_type_name", "parse_msg",
]


class TypeRegistry:
    """Resolves message type names to :class:`MessageDefinition` (with RIHS01 hash).

    :param distro: rosbags store to use (``"humble"``, ``"jazzy"`` ...); default
        ``ROS_DISTRO``, else the newest.
    :param use_rclpy: look types up in rclpy first when ``import rclpy`` works.
    """

    def __init__(self, distro: str | None = None, *, use_rclpy: bool = True):
        self._distro = distro
        self._rclpy: RclpySource | None | bool = None if use_rclpy else False
        self._rosbags: RosbagsSource | None = None
        self._user: dict[str, MessageDefinition] = {}
        self._builtin = {BYTES_TYPE_NAME: parse_msg(BYTES_DEFINITION, BYTES_TYPE_NAME,
                                                    source="agnoshm (built in)")}
        self._cache: dict[str, MessageDefinition] = {}
        self._lock = threading.RLock()

    # sources -------------------------------------------------------------

    @property
    def rosbags(self) -> RosbagsSource:
        """The rosbags store in use (``.typestore``, ``.store_name``)."""
        if self._rosbags is None:
            self._rosbags = RosbagsSource(self._distro)
        return self._rosbags

    def _rclpy_source(self) -> RclpySource | None:
        if self._rclpy is None:
            try:
                self._rclpy = RclpySource()
            except Exception:  # noqa: BLE001  (no ROS 2 here: the next sources serve)
                self._rclpy = False
        return self._rclpy or None

    def _raw(self, name: str) -> MessageDefinition | None:
        """The definition without hash, from the first source that knows ``name``."""
        found = self._builtin.get(name)
        if found is None:
            rclpy_source = self._rclpy_source()
            found = rclpy_source.get(name) if rclpy_source else None
        if found is None:
            found = self.rosbags.get(name)
        if found is None:
            found = self._user.get(name)
        return found

    # lookup --------------------------------------------------------------

    def get(self, msg_type: str | type | MessageDefinition) -> MessageDefinition:
        """The definition of ``msg_type``: a name, an rclpy message class or a definition.

        :raises UnknownTypeError: no source knows the type or one of its nested types.
        """
        if isinstance(msg_type, MessageDefinition):
            msg_type = msg_type.type_name
        if is_message_class(msg_type):
            name = class_type_name(msg_type)
            with self._lock:
                if name not in self._cache:
                    self._cache[name] = self._hashed(from_message_class(msg_type))
                return self._cache[name]
        try:
            name = normalize_type_name(msg_type)
        except ValueError as exc:
            raise UnknownTypeError(str(exc)) from None
        with self._lock:
            if name not in self._cache:
                raw = self._raw(name)
                if raw is None:
                    raise UnknownTypeError(self._unknown_message(name))
                self._cache[name] = self._hashed(raw)
            return self._cache[name]

    def __contains__(self, msg_type: object) -> bool:
        try:
            self.get(msg_type)  # type: ignore[arg-type]
        except UnknownTypeError:
            return False
        return True

    def type_hash(self, msg_type: str | type) -> str:
        """The RIHS01 hash string (``"RIHS01_<64 hex>"``) of ``msg_type``."""
        return self.get(msg_type).type_hash

    def names(self) -> list[str]:
        """Every type name the rosbags store, the user registrations and agnoshm know."""
        return sorted(set(self.rosbags.names()) | set(self._user) | set(self._builtin))

    def _unknown_message(self, name: str, needed_by: str | None = None) -> str:
        sources = ["rosbags store " + self.rosbags.store_name]
        if self._rclpy_source():
            sources.insert(0, "rclpy")
        if self._user:
            sources.append(f"{len(self._user)} registered type(s)")
        similar = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.75)
        return (
            f"unknown message type {name!r}" + (f" (used by {needed_by})" if needed_by else "")
            + f"; looked in: {', '.join(sources)}. To fix: check the spelling ('pkg/msg/Name'"
            + (f"; did you mean {' or '.join(similar)}?" if similar else "")
            + "), register its definition with agnoshm.register_msg(text_or_path, "
            "type_name) or register_package(folder); or set ROS_DISTRO to the distro that "
            "defines it (or source ROS 2 so rclpy provides it).")

    def _hashed(self, definition: MessageDefinition) -> MessageDefinition:
        """``definition`` with its RIHS01 hash (resolving every nested type)."""
        def resolve(nested: str, needed_by: str) -> MessageDefinition:
            found = self._cache.get(nested) or self._raw(nested)
            if found is None:
                raise UnknownTypeError(self._unknown_message(nested, needed_by))
            return found
        return dataclasses.replace(definition, type_hash=rihs01(definition, resolve))

    # user definitions ----------------------------------------------------

    def register_msg(self, text_or_path: str | os.PathLike, type_name: str | None = None) -> str:
        """Register a ``.msg`` definition; return its type name.

        :param text_or_path: ``.msg`` text, or the path of a ``.msg`` file (a
            ``Path``, or a string naming an existing file).
        :param type_name: ``"pkg/msg/Name"``; for a file in ``<pkg>/msg/`` it
            defaults to ``<pkg>/msg/<file stem>``.
        :raises MessageDefinitionError: bad syntax (with file/type and line), or a
            different definition is already known under that name.
        """
        definition = read_msg(text_or_path, type_name)
        self._add(definition)
        return definition.type_name

    def register_package(self, folder: str | os.PathLike) -> list[str]:
        """Register every ``msg/*.msg`` of a package folder; return the type names.

        The package name is ``<name>`` of its ``package.xml`` if there is one,
        else the folder's name.
        """
        definitions = read_package(folder)
        for definition in definitions:
            self._add(definition)
        return [d.type_name for d in definitions]

    def _add(self, definition: MessageDefinition) -> None:
        name = definition.type_name
        with self._lock:
            known = self._cache.get(name) or self._user.get(name) or self._raw(name)
            if known is not None:
                if _shape(known) != _shape(definition):
                    raise MessageDefinitionError(
                        f"{name} is already defined differently (by {known.source}):\n"
                        f"{known.to_msg()}--- new definition ({definition.source}):\n"
                        f"{definition.to_msg()}Choose another type name.")
                return
            self._user[name] = definition


def _shape(definition: MessageDefinition) -> tuple:
    """What must agree for two definitions to be the same type: what the hash covers,
    and the default values and constants, which the hash leaves out."""
    defaults = tuple((f.name, _comparable(f.default)) for f in definition.fields)
    constants = tuple((c.name, c.type, _comparable(c.value)) for c in definition.constants)
    return struct_description(definition), defaults, constants


def _comparable(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


# --------------------------------------------------------------------------- module API

_default: TypeRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> TypeRegistry:
    """The process-wide registry (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = TypeRegistry()
        return _default


def get_definition(msg_type: str | type) -> MessageDefinition:
    """:meth:`TypeRegistry.get` on the default registry."""
    return default_registry().get(msg_type)


def type_hash(msg_type: str | type) -> str:
    """:meth:`TypeRegistry.type_hash` on the default registry."""
    return default_registry().type_hash(msg_type)


def register_msg(text_or_path: str | os.PathLike, type_name: str | None = None) -> str:
    """:meth:`TypeRegistry.register_msg` on the default registry."""
    return default_registry().register_msg(text_or_path, type_name)


def register_package(folder: str | os.PathLike) -> list[str]:
    """:meth:`TypeRegistry.register_package` on the default registry."""
    return default_registry().register_package(folder)
