"""ROS 2 topic name rules (rcl's), and expansion of relative names against a node."""

from __future__ import annotations

from agnoshm.errors import InvalidTopicNameError

MAX_TOPIC_NAME_LENGTH = 247  # RMW_TOPIC_MAX_NAME_LENGTH = 255 - 8


def _is_name_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def validate_node_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidTopicNameError(str(name), "node name must be a non-empty string", 0)
    for i, c in enumerate(name):
        if not _is_name_char(c):
            raise InvalidTopicNameError(name, "node name may hold only letters, digits and '_'", i)
    if name[0].isdigit():
        raise InvalidTopicNameError(name, "node name must not start with a digit", 0)
    return name


def validate_namespace(namespace: str) -> str:
    if not namespace:
        return "/"
    if not namespace.startswith("/"):
        namespace = "/" + namespace
    if namespace != "/":
        validate_full_topic_name(namespace)
    return namespace


def expand_topic_name(name: str, node_name: str, namespace: str) -> str:
    """Make ``name`` absolute: ``chatter`` → ``<ns>/chatter``, ``~/x`` → ``<ns>/<node>/x``."""
    if not isinstance(name, str):
        raise TypeError(f"topic name must be a str, not {type(name).__name__}")
    if not name:
        raise InvalidTopicNameError(name, "topic name must not be empty", 0)
    base = namespace.rstrip("/")
    if name == "~":
        name = f"{base}/{node_name}"
    elif name.startswith("~/"):
        name = f"{base}/{node_name}/{name[2:]}"
    elif not name.startswith("/"):
        name = f"{base}/{name}"
    return validate_full_topic_name(name)


def validate_full_topic_name(name: str) -> str:
    """Return ``name`` if it is a valid absolute topic name, else raise :class:`InvalidTopicNameError`."""
    if not name.startswith("/"):
        raise InvalidTopicNameError(name, "topic name must be absolute (start with '/')", 0)
    if len(name) > 1 and name.endswith("/"):
        raise InvalidTopicNameError(name, "topic name must not end with '/'", len(name) - 1)
    if name == "/":
        raise InvalidTopicNameError(name, "topic name must not be just '/'", 0)
    for i, c in enumerate(name):
        if not (_is_name_char(c) or c == "/"):
            raise InvalidTopicNameError(name, f"character {c!r} is not allowed (letters, digits, '_', '/')", i)
        if c == "/" and i + 1 < len(name):
            if name[i + 1] == "/":
                raise InvalidTopicNameError(name, "topic name must not contain '//'", i + 1)
            if name[i + 1].isdigit():
                raise InvalidTopicNameError(name, "a name token must not start with a digit", i + 1)
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise InvalidTopicNameError(
            name, f"topic name is longer than {MAX_TOPIC_NAME_LENGTH} characters", MAX_TOPIC_NAME_LENGTH)
    return name
