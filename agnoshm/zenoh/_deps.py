"""The optional packages of the Zenoh bridge (the ``zenoh`` extra), imported on first use so
that ``import agnoshm.zenoh`` works without them."""

from __future__ import annotations

import importlib

from agnoshm.zenoh.errors import ZenohUnavailableError


def require(module: str):
    """Import ``module`` (``"zenoh"``, ``"zenoh.ext"`` or ``"xxhash"``) or raise
    :class:`ZenohUnavailableError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ZenohUnavailableError(module.split(".")[0], err) from err
