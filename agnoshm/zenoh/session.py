"""Opening the bridge's Zenoh session: configuration, and retries while nothing answers.

The session is configured as rmw_zenoh configures its own
(``DEFAULT_RMW_ZENOH_SESSION_CONFIG.json5``): multicast scouting off, explicit
``connect``/``listen`` endpoints.  Shared-memory transport is off too: the bridge
exists to leave the machine, and zenoh's segments would outlive a killed bridge in
/dev/shm.

A client that reaches no router fails to open; a peer opens at once and keeps
dialling its ``connect`` endpoints in the background (the bridge says so while
:func:`is_connected` is false).  :func:`open_session` retries the first, printing
what it waits for, until it opens or is stopped; it never raises for an
unreachable router unless asked to give up after ``attempts``.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from agnoshm.zenoh._deps import require
from agnoshm.zenoh.config import BridgeOptions
from agnoshm.zenoh.errors import ZenohConfigError, ZenohSessionError

_logger = logging.getLogger("agnoshm.zenoh")
RETRY_SEC = 2.0


def make_config(options: BridgeOptions):
    """A ``zenoh.Config`` for ``options``.

    :raises ZenohConfigError: for an endpoint Zenoh does not accept.
    """
    zenoh = require("zenoh")
    config = zenoh.Config()
    values = {
        "mode": options.mode,
        "connect/endpoints": list(options.connect),
        "listen/endpoints": list(options.listen),
        "scouting/multicast/enabled": False,
        "transport/shared_memory/enabled": False,
    }
    for key, value in values.items():
        try:
            config.insert_json5(key, json.dumps(value))
        except zenoh.ZError as err:
            raise ZenohConfigError(f"Zenoh refuses {key}={value!r}: {str(err).split(' at ')[0]} "
                                   "(endpoints look like tcp/HOST:PORT)") from None
    return config


def is_connected(session) -> bool:
    """Whether the session has a router or a peer."""
    info = session.info
    return bool(info.routers_zid() or info.peers_zid())


def open_session(options: BridgeOptions, *, stop: threading.Event | None = None,
                 attempts: int | None = None, retry_sec: float = RETRY_SEC,
                 say=_logger.warning):
    """Open the session, retrying while the router cannot be reached.

    :param stop: set it to give up (returns None).
    :param attempts: give up after this many failed opens (None: never).
    :param say: where the waiting messages go.
    :raises ZenohSessionError: after ``attempts`` failed opens.
    """
    zenoh = require("zenoh")
    stop = stop or threading.Event()
    where = ", ".join(options.connect) or "(no connect endpoint)"
    failures = 0
    while not stop.is_set():
        try:
            session = zenoh.open(make_config(options))
        except zenoh.ZError as err:
            failures += 1
            reason = str(err).split(" at /")[0]
            if attempts is not None and failures >= attempts:
                raise ZenohSessionError(
                    f"cannot reach a Zenoh router or peer at {where} ({reason}); start the router "
                    "(ros2 run rmw_zenoh_cpp rmw_zenohd) or fix --connect") from None
            say(f"cannot reach a Zenoh router or peer at {where} ({reason}); retrying in "
                f"{retry_sec:g} s (attempt {failures}; Ctrl-C to stop)")
            stop.wait(retry_sec)
            continue
        return session
    return None
