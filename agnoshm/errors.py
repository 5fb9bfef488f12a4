"""Exceptions raised by agnoshm.

Every exception derives from :class:`AgnoshmError`; where a built-in category
fits, it is a second base (an invalid topic name is also a ``ValueError``).
Each message names the cause and the fix.
"""

from __future__ import annotations


class AgnoshmError(Exception):
    """Base class of every agnoshm error."""


class InvalidTopicNameError(AgnoshmError, ValueError):
    """Raised when a topic name breaks ROS 2 naming rules."""

    def __init__(self, name: str, reason: str, index: int):
        caret = " " * (index + 2) + "^"  # under name[index] in the " '<name>'" line
        super().__init__(f"invalid topic name {name!r}: {reason}\n '{name}'\n{caret}")
        self.name = name
        self.reason = reason
        self.index = index


class InvalidQoSError(AgnoshmError, ValueError):
    """Raised when a QoS setting cannot be honoured by agnoshm."""


class TypeMismatchError(AgnoshmError, TypeError):
    """Raised when an endpoint's message type differs from the topic's."""


class LoanError(AgnoshmError):
    """Raised when a message cannot be loaned from the pool."""


class PoolExhaustedError(LoanError, MemoryError):
    """Raised when the process's pool has no block large enough for a message."""


class UnknownFieldError(AgnoshmError, AttributeError):
    """Raised for a field name that a message type does not have (an ``AttributeError``,
    as rclpy raises for it, that names the type, the fields it has and the value)."""


class MessageInvalidatedError(AgnoshmError, RuntimeError):
    """Raised when a loaned message is used after ``publish()`` or after its node is gone."""


class InvalidHandleError(AgnoshmError, RuntimeError):
    """Raised when a destroyed node, publisher or subscription is used."""


class RegistryError(AgnoshmError):
    """Raised when the shared registry cannot be opened or used."""


class RegistryCorruptedError(RegistryError):
    """Raised when the registry's header or records do not hold agnoshm data."""


class RegistryVersionError(RegistryError):
    """Raised when the registry was created by an incompatible agnoshm layout version."""


class LimitReachedError(RegistryError):
    """Raised when a capacity is used up: of the registry (processes, topics, endpoints,
    entries) or of the system (message queues, /dev/shm for the registry)."""


class AddressRangeInUseError(AgnoshmError, OSError):
    """Raised when the agnoshm virtual address range is already mapped in this process."""


class PoolAccessError(AgnoshmError, PermissionError):
    """Raised when another process's pool cannot be opened or mapped."""


class NotInitializedError(AgnoshmError, RuntimeError):
    """Raised when agnoshm is used after ``shutdown()`` (call ``agnoshm.init()`` again)."""


class InvalidSynchronizerError(AgnoshmError, ValueError):
    """Raised when a message synchronizer (:mod:`agnoshm.message_filters`) gets inputs, a
    queue size or a slop it cannot work with."""


class HeaderlessMessageError(AgnoshmError, TypeError):
    """Raised when a synchronizer input carries messages without ``header.stamp`` and
    ``allow_headerless`` is off."""


class ServiceError(AgnoshmError):
    """Base class of the errors of services and clients."""


class ServiceExistsError(ServiceError, RuntimeError):
    """Raised when a second server is created for a service name that has one."""


class ServiceUnavailableError(ServiceError, RuntimeError):
    """Raised (or set on a call's future) when no server runs, or the server went away
    before it answered."""


class ServiceTimeoutError(ServiceError, TimeoutError):
    """Raised when a call or ``wait_for_service`` runs out of time."""


class ServiceCallbackError(ServiceError, RuntimeError):
    """Set on a call's future when the server's callback raised or returned no valid
    response; the message names the service and the server's exception."""
