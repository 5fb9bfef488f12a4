"""Type source: your definitions, ``.msg`` text, ``.msg`` files and package folders.

:func:`read_msg` and :func:`read_package` turn what ``register_msg`` and
``register_package`` are given into definitions; :class:`~agnoshm.msg.types.TypeRegistry`
keeps them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from agnoshm.msg.definition import MessageDefinition, MessageDefinitionError, normalize_type_name
from agnoshm.msg.parser import parse_msg

__all__ = ["read_msg", "read_package"]


def read_msg(text_or_path: str | os.PathLike, type_name: str | None = None) -> MessageDefinition:
    """The definition in ``.msg`` text or a ``.msg`` file (see ``TypeRegistry.register_msg``).

    :raises MessageDefinitionError: bad syntax (with file/type and line), or no type name.
    """
    path = _as_path(text_or_path)
    if path is not None:
        text = path.read_text(encoding="utf-8")
        if type_name is None:
            package = path.parent.parent.name if path.parent.name == "msg" else ""
            if not package:
                raise MessageDefinitionError(
                    f"cannot tell the type name of {path}: pass type_name='pkg/msg/Name' "
                    f"or put the file in <pkg>/msg/")
            type_name = f"{package}/msg/{path.stem}"
    else:
        text = str(text_or_path)
        if type_name is None:
            raise MessageDefinitionError("register_msg(text) needs type_name='pkg/msg/Name'")
    try:
        name = normalize_type_name(type_name)
    except ValueError as exc:
        raise MessageDefinitionError(str(exc)) from None
    return parse_msg(text, name, source=str(path) if path else None)


def read_package(folder: str | os.PathLike) -> list[MessageDefinition]:
    """The definitions of every ``msg/*.msg`` of a package folder.

    The package name is ``<name>`` of its ``package.xml`` if there is one, else the
    folder's name.
    """
    folder = Path(folder)
    msg_dir = folder / "msg"
    files = sorted(msg_dir.glob("*.msg"))
    if not files:
        raise MessageDefinitionError(f"{folder} has no msg/*.msg files")
    package = folder.resolve().name
    manifest = folder / "package.xml"
    if manifest.exists():
        match = re.search(r"<name>\s*([^<\s]+)\s*</name>", manifest.read_text(encoding="utf-8"))
        if match:
            package = match.group(1)
    return [parse_msg(f.read_text(encoding="utf-8"), f"{package}/msg/{f.stem}", source=str(f))
            for f in files]


def _as_path(value: str | os.PathLike) -> Path | None:
    if isinstance(value, os.PathLike):
        return Path(value)
    if isinstance(value, str) and "\n" not in value and value.endswith(".msg") and Path(value).is_file():
        return Path(value)
    return None
