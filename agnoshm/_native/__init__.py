"""The optional C accelerator of the message path: ``_ring``, built from ``ring.c``.

``ring.c`` does the per-message steps of :mod:`agnoshm.transport.ring`'s protocol
(publish, take, release, the doorbell's wait and ring) on the same shared words as
the pure-Python path, which stays the reference and the fallback.  ``setup.py``
builds it where a C compiler is found; ``AGNOSHM_NATIVE`` (config key ``native``)
chooses: ``auto`` (the default) uses it when built, ``0`` never, ``1`` always
(:class:`NativeUnavailableError` when it was not built).
"""

from __future__ import annotations

from agnoshm import faults
from agnoshm.config import ConfigError

try:
    # (not ``from agnoshm._native import _ring``: when the file is missing, that reports a
    # "partially initialized module ... circular import", which would mislead a user)
    import agnoshm._native._ring as _ring
except ImportError as err:  # installed without a C compiler (or Python headers)
    _ring = None
    #: why the extension is absent (None: it is here)
    MISSING: str | None = str(err) or type(err).__name__
else:
    MISSING = None
    _ring.set_faults(faults)  # the C code passes the same named fault points

FIX = ("install a C compiler and the Python headers (Debian/Ubuntu: apt install gcc "
       "python3-dev) and reinstall agnoshm (pip install --force-reinstall --no-deps agnoshm, "
       "or colcon build), or set AGNOSHM_NATIVE=auto or 0 to run the pure-Python path")


class NativeUnavailableError(ConfigError):
    """Raised when ``AGNOSHM_NATIVE=1`` (config ``native: 1``) but the extension
    ``agnoshm._native._ring`` was not built (no C compiler or Python headers at install);
    the message names the fix."""


def load(setting: str):
    """The extension module the setting asks for, or None for the pure-Python path.

    :raises NativeUnavailableError: for ``"1"`` when the extension is missing.
    """
    if setting == "0":
        return None
    if _ring is None and setting == "1":
        raise NativeUnavailableError(
            f"AGNOSHM_NATIVE=1, but agnoshm's native extension agnoshm._native._ring is not "
            f"built ({MISSING}): {FIX}")
    return _ring


def describe(setting: str) -> str:
    """One line: which path this setting runs, and why."""
    if setting == "0":
        return "pure Python (AGNOSHM_NATIVE=0)"
    if _ring is None:
        return f"pure Python: the extension agnoshm._native._ring is not built ({MISSING})"
    return f"native: agnoshm._native._ring ({_ring.__file__}), AGNOSHM_NATIVE={setting}"
