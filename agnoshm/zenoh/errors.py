"""Exceptions of the Zenoh bridge; each names the cause and the fix."""

from __future__ import annotations

from agnoshm.errors import AgnoshmError, InvalidTopicNameError


class ZenohBridgeError(AgnoshmError):
    """Base class of the Zenoh bridge's errors."""


class ZenohUnavailableError(ZenohBridgeError, ImportError):
    """Raised when ``eclipse-zenoh`` or ``xxhash`` is not installed."""

    def __init__(self, module: str, err: Exception | None = None):
        package = {"zenoh": "eclipse-zenoh"}.get(module, module)
        super().__init__(f"the Zenoh bridge needs the {package} package ({err or 'not installed'}): "
                         "pip install 'agnoshm[zenoh]'")


class ZenohConfigError(ZenohBridgeError, ValueError):
    """Raised for a bad option, ``--topic`` value or bridge YAML file."""


class ZenohTopicNameError(ZenohBridgeError, InvalidTopicNameError):
    """Raised for a topic name that no Zenoh key expression can carry."""


class ZenohSessionError(ZenohBridgeError, ConnectionError):
    """Raised when the Zenoh session cannot be opened (and retrying was not asked for)."""


class MalformedSampleError(ZenohBridgeError, ValueError):
    """A sample from the network that breaks rmw_zenoh's format (dropped and counted)."""
