"""``agnoshm topic echo``'s output: messages as ``ros2 topic echo``-like YAML, or raw hex.

:func:`render` turns a message view, a dict or a structured numpy row into
YAML lines; arrays are shortened as :class:`Format` says.  :func:`field_lines`
prints one field (``--field``), :func:`raw_lines` the root struct of an
untyped lease (``--raw``).  Only the printed elements are converted.
"""

from __future__ import annotations

import math
import re


class Format:
    """How arrays are shown: as their length only (``no_arr``), or at most ``limit``
    elements (``None``: all of them)."""

    def __init__(self, no_arr: bool, limit: int | None):
        self.no_arr = no_arr
        self.limit = limit


def field_lines(msg, path: list[str], options: Format) -> list[str]:
    value = msg
    for part in path:
        value = getattr(value, part)
    if _is_mapping(value):
        return render(value, options)
    if _is_sequence(value):
        return _sequence_lines("", None, value, options, 0)
    return [_scalar(value)]


def render(value, options: Format, indent: int = 0) -> list[str]:
    """A message (view, dict or structured row) as ``ros2 topic echo``-like YAML lines."""
    lines = []
    pad = "  " * indent
    for name, item in _items(value):
        if _is_mapping(item):
            inner = render(item, options, indent + 1)
            lines += [f"{pad}{name}:"] + inner if inner else [f"{pad}{name}: {{}}"]
        elif _is_sequence(item):
            lines += _sequence_lines(pad, name, item, options, indent)
        else:
            lines.append(f"{pad}{name}: {_scalar(item)}")
    return lines


def _sequence_lines(pad: str, name: str | None, items, options: Format, indent: int) -> list[str]:
    import numpy as np

    key = f"{pad}{name}: " if name is not None else ""
    n = len(items)
    if options.no_arr:
        return [f"{key}<array of {n} {_element_kind(items)}>"]
    shown = items if options.limit is None else items[:options.limit]
    more = n - len(shown)
    if n and (_is_mapping(shown[0]) or (isinstance(shown, np.ndarray) and shown.dtype.names)):
        lines = [f"{pad}{name}:"] if name is not None else []
        for element in shown:
            inner = render(element, options, indent + 1)
            lines.append(f"{pad}- " + (inner[0].lstrip() if inner else "{}"))
            lines += inner[1:]
        if more:
            lines.append(f"{pad}- '...'  # {n} items")
        return lines
    values = shown.tolist() if isinstance(shown, np.ndarray) else list(shown)
    text = ", ".join(_scalar(v) for v in values)
    if more:
        return [f"{key}[{text}, '...']  # {n} items"]
    return [f"{key}[{text}]"]


def _element_kind(items) -> str:
    import numpy as np

    if isinstance(items, np.ndarray):
        return str(items.dtype) if not items.dtype.names else "messages"
    return "items"


def _items(value):
    import numpy as np

    if isinstance(value, dict):
        return value.items()
    if isinstance(value, np.void):
        return [(n, value[n]) for n in value.dtype.names if not n.startswith("structure_needs")]
    return [(n, getattr(value, n)) for n in value.get_fields_and_field_types()]


def _is_mapping(value) -> bool:
    import numpy as np

    if isinstance(value, dict):
        return True
    if isinstance(value, np.void):
        return bool(value.dtype.names)
    return hasattr(value, "get_fields_and_field_types")


def _is_sequence(value) -> bool:
    import numpy as np

    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0)


_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_ ./()+-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(value) -> str:
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _YAML_WORDS and not value.endswith(" "):
            return value
        if value.isprintable():
            return "'" + value.replace("'", "''") + "'"
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    return str(value)


def raw_lines(lease) -> list[str]:
    """The root struct of a message as a hex dump (``hexdump -C`` style)."""
    pool = lease.pool
    offset = lease.address - pool.address
    data = bytes(pool.buffer[offset:offset + lease.size])
    lines = [f"# address: 0x{lease.address:x} in {pool.name}",
             f"# root struct: {lease.size} bytes (strings and sequences point elsewhere in the "
             "pool)", "raw: |"]
    for at in range(0, len(data), 16):
        chunk = data[at:at + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"  {at:08x}  {hexes:<47}  |{text}|")
    return lines
