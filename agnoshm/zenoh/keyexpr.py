"""rmw_zenoh's names: the data key expression of a topic and the DDS-style type name.

A topic's samples travel on (``TopicInfo`` in rmw_zenoh's ``liveliness_utils.cpp``)::

    <domain>/<topic without its leading and trailing '/'>/<pkg>::msg::dds_::<Name>_/RIHS01_<64 hex>

e.g. ``0/chatter/std_msgs::msg::dds_::String_/RIHS01_df66…``.  Inner slashes
stay, so ``/robot1/scan`` is three chunks.  The type name is what rmw_zenoh's
``_create_type_name`` (``type_support_common.cpp``) builds from the Fast-CDR type
support.  Keys that differ in any part never meet, silently; so the type hash
must be ROS 2's RIHS01 (agnoshm computes it as ``rosidl_generator_type_description``
does) and both ends must use the same domain.
"""

from __future__ import annotations

import re

from agnoshm.errors import InvalidTopicNameError
from agnoshm.topic_name import validate_full_topic_name
from agnoshm.zenoh.errors import ZenohTopicNameError

#: characters a ROS 2 topic name may not carry into a Zenoh key: wildcards and the
#: selector/verbatim markers of Zenoh's key-expression grammar, and '%' (rmw_zenoh's slash
#: replacement in liveliness tokens)
_ZENOH_RESERVED = {"*": "a Zenoh wildcard", "$": "a Zenoh wildcard marker",
                   "?": "Zenoh's selector separator", "#": "forbidden in Zenoh keys",
                   "%": "rmw_zenoh's slash replacement in graph tokens",
                   "@": "Zenoh's verbatim-chunk marker"}
_HASH_RE = re.compile(r"^RIHS01_[0-9a-f]{64}$")
_DDS_TYPE_RE = re.compile(r"^([a-z][a-z0-9_]*)::([a-z]+)::dds_::([A-Za-z][A-Za-z0-9_]*)_$")


def check_topic_name(topic: str) -> str:
    """Return ``topic`` (absolute) if a Zenoh key expression can carry it.

    :raises ZenohTopicNameError: for a character Zenoh reserves, an empty chunk, or a
        name that breaks ROS 2's rules; the message points at the character.
    """
    if not isinstance(topic, str):
        raise TypeError(f"topic name must be a str, not {type(topic).__name__}")
    for index, char in enumerate(topic):
        if char in _ZENOH_RESERVED:
            raise ZenohTopicNameError(
                topic, f"{char!r} is {_ZENOH_RESERVED[char]}: Zenoh cannot carry this name "
                "(ROS 2 names hold letters, digits, '_' and '/'); rename the topic", index)
    try:
        return validate_full_topic_name(topic)
    except InvalidTopicNameError as err:
        raise ZenohTopicNameError(topic, f"{err.reason} (Zenoh carries only valid, absolute "
                                  "ROS 2 topic names; rename the topic)", err.index) from None


def dds_type_name(type_name: str) -> str:
    """``pkg/msg/Name`` → ``pkg::msg::dds_::Name_`` (rmw_zenoh's spelling of a type)."""
    package, kind, name = type_name.split("/")
    return f"{package}::{kind}::dds_::{name}_"


def ros_type_name(dds_name: str) -> str | None:
    """``pkg::msg::dds_::Name_`` → ``pkg/msg/Name``; None for anything else."""
    match = _DDS_TYPE_RE.match(dds_name)
    return "/".join(match.groups()) if match else None


def is_type_hash(text: str) -> bool:
    """Whether ``text`` is a RIHS01 hash string (``RIHS01_`` and 64 lowercase hex digits)."""
    return bool(_HASH_RE.match(text))


def data_key(domain: int, topic: str, type_name: str, type_hash: str) -> str:
    """The key expression rmw_zenoh publishes ``topic`` of ``type_name`` on.

    :param topic: an absolute ROS 2 topic name (``/chatter``).
    :param type_name: ``pkg/msg/Name``.
    :param type_hash: ``RIHS01_<64 hex>``.
    :raises ZenohTopicNameError: if Zenoh cannot carry ``topic``.
    :raises ValueError: for a malformed type hash.
    """
    check_topic_name(topic)
    if not is_type_hash(type_hash):
        raise ValueError(f"type hash of {type_name} must be RIHS01_<64 hex>, not {type_hash!r}")
    return f"{int(domain)}/{topic.strip('/')}/{dds_type_name(type_name)}/{type_hash}"
