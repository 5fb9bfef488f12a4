"""Service types: ``pkg/srv/Name`` as its request and response messages, its RIHS01 hash,
and the two envelopes that carry a call and its reply on agnoshm topics.

A service type resolves, in this order, from:

1. **rclpy** service classes (``pkg.srv.Name`` with ``Request``/``Response``), when ROS 2
   is importable;
2. the ``.srv`` files agnoshm ships (package data in ``agnoshm/msg/interfaces/``):
   ``std_srvs`` (Empty, SetBool, Trigger) and ``example_interfaces`` (AddTwoInts,
   SetBool, Trigger), so these work without ROS (rosbags' stores carry no services);
3. your ``.srv`` text, files and package folders: :func:`register_srv`.

The request and response are ordinary message types named ``pkg/srv/Name_Request`` and
``pkg/srv/Name_Response`` (as rosidl names them), so loaned and received views, dicts,
rclpy messages and ``to_dict()`` work on them as on any message.

The service's RIHS01 hash is computed as ``rosidl_generator_type_description`` does for a
service: the description of ``pkg/srv/Name`` (fields ``request_message``,
``response_message``, ``event_message``) with every referenced type, among them
``pkg/srv/Name_Event`` (``service_msgs/ServiceEventInfo info``, ``Request[<=1] request``,
``Response[<=1] response``).

The envelopes (agnoshm's own, never seen by ROS):

* ``pkg/srv/Name_Call`` on the request topic: the caller's ``client_id``, the call's
  ``sequence_number`` and the ``request`` inline;
* ``pkg/srv/Name_Reply`` on the reply topic: the same id and number, a ``status``, an
  ``error`` text, and the ``response`` inline.

Both topics are registered with the *service's* hash, so a client and a server of
different service types (or of one name defined differently) meet a type mismatch.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import threading
from pathlib import Path

from agnoshm.errors import TypeMismatchError
from agnoshm.msg.definition import (
    Field, FieldType, MessageDefinition, MessageDefinitionError, UnknownTypeError,
    normalize_type_name,
)
from agnoshm.msg.layout import layout_of
from agnoshm.msg.message import MessageType, get_message
from agnoshm.msg.rihs01 import rihs01
from agnoshm.msg.types import default_registry

__all__ = ["CALL_SUFFIX", "REPLY_SUFFIX", "SERVICE_EVENT_INFO", "ServiceType", "get_service",
           "register_srv", "request_topic", "reply_topic", "service_of_topic", "STATUS_OK",
           "STATUS_CALLBACK_RAISED", "STATUS_BAD_RESPONSE"]

#: Where the shipped ``.srv`` (and ``service_msgs``) definitions live.
INTERFACES = Path(__file__).resolve().parent / "interfaces"
SERVICE_EVENT_INFO = "service_msgs/msg/ServiceEventInfo"
CALL_SUFFIX, REPLY_SUFFIX = "_Call", "_Reply"
REQUEST_PREFIX, REPLY_PREFIX = "/rq", "/rr"  # rmw's: rq/<service>Request, rr/<service>Reply

#: ``status`` of a reply.
STATUS_OK = 0
STATUS_CALLBACK_RAISED = 1  # ``error`` names the exception
STATUS_BAD_RESPONSE = 2  # the callback returned None or a value of another type

_CALL_FIELDS = "uint64 client_id\nint64 sequence_number\n"
_REPLY_FIELDS = "uint64 client_id\nint64 sequence_number\nuint8 status\nstring error\n"


@dataclasses.dataclass(frozen=True)
class ServiceType:
    """One ROS 2 service type as agnoshm carries it.

    ``Request``/``Response`` are the message types (rclpy's attribute names), ``call`` and
    ``reply`` the envelopes' message types (their ``type_hash`` is the service's).
    """

    type_name: str
    type_hash: str
    Request: MessageType
    Response: MessageType
    call: MessageType
    reply: MessageType
    source: str = ""

    def __repr__(self) -> str:
        return f"<agnoshm service type {self.type_name} {self.type_hash[:15]}...>"


_lock = threading.RLock()
_services: dict[str, ServiceType] = {}
_user_texts: dict[str, tuple[str, str]] = {}  # type name -> (.srv text, source)


def normalize_service_name(name: str) -> str:
    """``"pkg/Name"`` or ``"pkg/srv/Name"`` → ``"pkg/srv/Name"``; anything else raises ValueError."""
    parts = name.split("/") if isinstance(name, str) else []
    if len(parts) == 2:
        parts = [parts[0], "srv", parts[1]]
    if len(parts) != 3 or parts[1] != "srv":
        raise ValueError(f"invalid service type name {name!r}: expected 'pkg/srv/Name'")
    normalize_type_name(f"{parts[0]}/msg/{parts[2]}")  # the same rules as a message's name
    return "/".join(parts)


def is_service_class(obj) -> bool:
    """An rclpy (rosidl_generator_py) service class: ``Request``, ``Response`` and ``Event``."""
    return isinstance(obj, type) and all(
        isinstance(getattr(obj, a, None), type) for a in ("Request", "Response")) \
        and hasattr(obj, "_TYPE_SUPPORT")


def get_service(srv_type) -> ServiceType:
    """The :class:`ServiceType` of ``srv_type``: ``"pkg/srv/Name"`` (or ``"pkg/Name"``), an
    rclpy service class, or a :class:`ServiceType`.

    :raises TypeMismatchError: if no source knows the service (the message says how to fix it).
    """
    if isinstance(srv_type, ServiceType):
        return srv_type
    if is_service_class(srv_type):
        package, namespace = srv_type.__module__.split(".")[:2]
        name = f"{package}/{namespace}/{srv_type.__name__}"
    else:
        try:
            name = normalize_service_name(srv_type)
        except ValueError as err:
            raise TypeMismatchError(f"{err} (or an rclpy service class, e.g. "
                                    f"example_interfaces.srv.AddTwoInts)") from None
    with _lock:
        found = _services.get(name)
        if found is None:
            found = _services[name] = _build(name)
        return found


def register_srv(text_or_path: str | os.PathLike, type_name: str | None = None) -> list[str]:
    """Register ``.srv`` definitions; return the service type names.

    :param text_or_path: ``.srv`` text (request, a line ``---``, response), the path of a
        ``.srv`` file, or a package folder: its ``msg/*.msg`` are registered
        (``register_package``) and then every ``srv/*.srv``.
    :param type_name: ``"pkg/srv/Name"`` for text; for a file in ``<pkg>/srv/`` it
        defaults to ``<pkg>/srv/<file stem>``.
    :raises MessageDefinitionError: bad syntax, no type name, or another definition under
        that name.
    """
    path = Path(text_or_path) if isinstance(text_or_path, os.PathLike) or (
        isinstance(text_or_path, str) and "\n" not in text_or_path
        and (text_or_path.endswith(".srv") or Path(text_or_path).is_dir())
        and Path(text_or_path).exists()) else None
    if path is not None and path.is_dir():
        if (path / "msg").is_dir():
            default_registry().register_package(path)
        package = _package_name(path)
        files = sorted((path / "srv").glob("*.srv"))
        if not files:
            raise MessageDefinitionError(f"{path} has no srv/*.srv files")
        return [_register_text(f.read_text(encoding="utf-8"), f"{package}/srv/{f.stem}", str(f))
                for f in files]
    if path is not None:
        if type_name is None:
            if path.parent.name != "srv":
                raise MessageDefinitionError(
                    f"cannot tell the type name of {path}: pass type_name='pkg/srv/Name' "
                    f"or put the file in <pkg>/srv/")
            type_name = f"{path.parent.parent.name}/srv/{path.stem}"
        return [_register_text(path.read_text(encoding="utf-8"), type_name, str(path))]
    if type_name is None:
        raise MessageDefinitionError("register_srv(text) needs type_name='pkg/srv/Name'")
    return [_register_text(str(text_or_path), type_name, "<text>")]


def _package_name(folder: Path) -> str:
    manifest = folder / "package.xml"
    if manifest.exists():
        match = re.search(r"<name>\s*([^<\s]+)\s*</name>", manifest.read_text(encoding="utf-8"))
        if match:
            return match.group(1)
    return folder.resolve().name


def _register_text(text: str, type_name: str, source: str) -> str:
    try:
        name = normalize_service_name(type_name)
    except ValueError as err:
        raise MessageDefinitionError(str(err)) from None
    request, response = _split(text, source)
    with _lock:
        known = _user_texts.get(name)
        if known is not None and _strip(known[0]) != _strip(text):
            raise MessageDefinitionError(f"{name} is already registered differently (by "
                                         f"{known[1]}); choose another type name")
        _user_texts[name] = (text, source)
        _services.pop(name, None)
    _add_messages(name, request, response, source)  # checks the syntax now
    return name


def _strip(text: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in text.splitlines()
            if line.split("#", 1)[0].strip()]


def _split(text: str, source: str) -> tuple[str, str]:
    lines = text.splitlines()
    separators = [i for i, line in enumerate(lines) if line.split("#", 1)[0].strip() == "---"]
    if len(separators) != 1:
        raise MessageDefinitionError(
            f"{source}: a .srv holds the request, one line '---', then the response "
            f"(found {len(separators)} separator lines)")
    cut = separators[0]
    return "\n".join(lines[:cut]) + "\n", "\n".join(lines[cut + 1:]) + "\n"


def _add_messages(name: str, request: str, response: str, source: str) -> None:
    registry = default_registry()
    registry.register_msg(request, name + "_Request")
    registry.register_msg(response, name + "_Response")


def _shipped(name: str) -> Path | None:
    package, _, service = name.split("/")
    path = INTERFACES / package / "srv" / f"{service}.srv"
    return path if path.is_file() else None


def _rclpy_class(name: str):
    """The rclpy service class of ``name``, or None (no ROS 2, or it does not define it)."""
    package, _, service = name.split("/")
    try:
        importlib.import_module("rclpy")
        cls = getattr(importlib.import_module(f"{package}.srv"), service, None)
    except Exception:  # noqa: BLE001  (no ROS 2 or no such package: the next sources serve)
        return None
    return cls if is_service_class(cls) else None


def _build(name: str) -> ServiceType:
    """Resolve ``name`` from the sources and make its message types and hash."""
    cls = _rclpy_class(name)
    if cls is not None:
        request, response = get_message(cls.Request), get_message(cls.Response)
        source = "rclpy"
    else:
        user = _user_texts.get(name)
        shipped = _shipped(name)
        if user is not None:
            text, source = user
        elif shipped is not None:
            text, source = shipped.read_text(encoding="utf-8"), "agnoshm (built in)"
        else:
            raise TypeMismatchError(
                f"unknown service type {name!r}; looked in: "
                + ("rclpy, " if _rclpy_importable() else "")
                + "agnoshm's built-in std_srvs and example_interfaces, "
                f"{len(_user_texts)} registered service(s). To fix: check the spelling "
                "('pkg/srv/Name'), register its definition with agnoshm.register_srv("
                "text_or_path, type_name) or a package folder, or source ROS 2 so rclpy "
                "provides it.")
        request_text, response_text = _split(text, source)
        _add_messages(name, request_text, response_text, source)
        request, response = get_message(name + "_Request"), get_message(name + "_Response")
    _ensure_event_info()
    try:
        service_hash = _service_hash(name, request.definition, response.definition)
    except UnknownTypeError as err:
        raise TypeMismatchError(str(err)) from err
    call = _envelope(name + CALL_SUFFIX, _CALL_FIELDS + f"{name}_Request request\n", service_hash)
    reply = _envelope(name + REPLY_SUFFIX, _REPLY_FIELDS + f"{name}_Response response\n",
                      service_hash)
    return ServiceType(name, service_hash, request, response, call, reply, source)


def _rclpy_importable() -> bool:
    try:
        importlib.import_module("rclpy")
    except Exception:  # noqa: BLE001
        return False
    return True


def _ensure_event_info() -> None:
    """``service_msgs/msg/ServiceEventInfo`` (the service hash needs it): rclpy's or the
    rosbags store's, else the copy agnoshm ships (rosbags' Humble store predates it)."""
    registry = default_registry()
    if SERVICE_EVENT_INFO not in registry:
        registry.register_msg(INTERFACES / "service_msgs" / "msg" / "ServiceEventInfo.msg")


def _service_hash(name: str, request: MessageDefinition, response: MessageDefinition) -> str:
    """The service's RIHS01, as ``rosidl_generator_type_description`` computes it."""
    req, res, event = name + "_Request", name + "_Response", name + "_Event"
    local = {
        req: request, res: response,
        event: MessageDefinition(event, (
            Field("info", FieldType(SERVICE_EVENT_INFO)),
            Field("request", FieldType(req, sequence=True, sequence_bound=1)),
            Field("response", FieldType(res, sequence=True, sequence_bound=1)))),
    }
    service = MessageDefinition(name, (
        Field("request_message", FieldType(req)), Field("response_message", FieldType(res)),
        Field("event_message", FieldType(event))))
    registry = default_registry()
    return rihs01(service, lambda nested, _by: local.get(nested) or registry.get(nested))


def _envelope(type_name: str, text: str, service_hash: str) -> MessageType:
    """An envelope's message type, registered so views resolve it, carrying the service hash."""
    registry = default_registry()
    registry.register_msg(text, type_name)
    definition = registry.get(type_name)
    return MessageType(dataclasses.replace(definition, type_hash=service_hash),
                       layout_of(definition, registry=registry))


# --------------------------------------------------------------------------- topic names


def request_topic(service_name: str) -> str:
    """The request topic of a (fully qualified) service: ``/rq/add_two_intsRequest``."""
    return f"{REQUEST_PREFIX}{service_name}Request"


def reply_topic(service_name: str) -> str:
    """The reply topic of a (fully qualified) service: ``/rr/add_two_intsReply``."""
    return f"{REPLY_PREFIX}{service_name}Reply"


def service_of_topic(topic_name: str, type_name: str) -> tuple[str, str, str] | None:
    """``(service name, service type, "request" or "reply")`` if the topic is a service's
    (name and envelope type both say so), else None."""
    for prefix, suffix, envelope, role in ((REQUEST_PREFIX, "Request", CALL_SUFFIX, "request"),
                                           (REPLY_PREFIX, "Reply", REPLY_SUFFIX, "reply")):
        if topic_name.startswith(prefix + "/") and topic_name.endswith(suffix) \
                and "/srv/" in type_name and type_name.endswith(envelope):
            return topic_name[len(prefix):-len(suffix)], type_name[:-len(envelope)], role
    return None
