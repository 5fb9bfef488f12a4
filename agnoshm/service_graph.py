"""What the registry says about a service: its servers and the type its topics carry.

A service ``/name`` is two agnoshm topics (:func:`~agnoshm.msg.srv.request_topic`,
:func:`~agnoshm.msg.srv.reply_topic`); a server is a subscription on the request topic.
Read through the registry's read API only.
"""

from __future__ import annotations

from agnoshm.errors import TypeMismatchError
from agnoshm.msg.srv import CALL_SUFFIX, REPLY_SUFFIX, request_topic


def servers(runtime, service_name: str) -> list:
    """The live (not draining) server subscriptions of ``service_name`` (read API records)."""
    topic = runtime.registry.read_topic(request_topic(service_name))
    if topic is None:
        return []
    return [s for s in topic.subscriptions if not s.draining]


def mismatch_error(runtime, srv_type, service_name: str, topic_name: str,
                   err: TypeMismatchError) -> TypeMismatchError:
    """A :class:`TypeMismatchError` naming both service types and hashes, from the one the
    topic layer raised for ``topic_name`` (one of the service's two topics)."""
    topic = runtime.registry.read_topic(topic_name)
    if topic is None:
        return err
    other = topic.type_name
    for suffix in (CALL_SUFFIX, REPLY_SUFFIX):
        if other.endswith(suffix):
            other = other[:-len(suffix)]
    return TypeMismatchError(
        f"service {service_name} carries {other} ({topic.type_hash}), not {srv_type.type_name} "
        f"({srv_type.type_hash}): use the same service type (and the same .srv definition) in "
        f"every server and client of {service_name}, or another service name")
