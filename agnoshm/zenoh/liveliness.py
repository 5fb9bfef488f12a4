"""rmw_zenoh's graph: liveliness tokens for nodes, publishers and subscriptions, and GIDs.

Every rmw_zenoh entity declares a Zenoh liveliness token whose key describes it
(``Entity::Entity`` in ``liveliness_utils.cpp``); ``ros2 node list`` and ``ros2 topic
list`` on an rmw_zenoh machine are built from these tokens::

    @ros2_lv/<domain>/<zid>/<node id>/<entity id>/<kind>/<enclave>/<namespace>/<node name>
            [/<topic>/<type>/<type hash>/<qos>]                       (publishers, subscriptions)

``kind`` is ``NN`` (node; its entity id is its node id), ``MP`` (publisher), ``MS``
(subscription), ``SS``/``SC`` (service server/client).  ``zid`` is the Zenoh session's
id; the ids are numbers unique within the session.  Names have every ``/`` replaced by
``%`` (``mangle_name``), so ``/`` → ``%`` and ``/chatter`` → ``%chatter``; the type is
``pkg::msg::dds_::Name_``.  The QoS chunk (``qos_to_keyexpr``) is six ``:``-separated
fields, each empty when equal to rmw_zenoh's default (``qos.cpp``: RELIABLE, VOLATILE,
KEEP_LAST, depth 42, infinite deadline/lifespan/lease, AUTOMATIC liveliness)::

    <reliability>:<durability>:<history>,<depth>:<deadline s>,<ns>:<lifespan s>,<ns>:<liveliness>,<lease s>,<ns>

with rmw's enum values (reliability RELIABLE 1 / BEST_EFFORT 2, durability
TRANSIENT_LOCAL 1 / VOLATILE 2, history KEEP_LAST 1 / KEEP_ALL 2).  A reliable,
volatile, depth-10 publisher is ``::,10:,:,:,,``.

An entity's GID (in every sample's attachment, and in ``ros2 topic info -v``) is
XXH3-128 of its token's key, low 64 bits then high 64 bits, little-endian
(``simplified_XXH3_128bits``, which is stock XXH3-128 with seed 0).
"""

from __future__ import annotations

import dataclasses

from agnoshm.zenoh._deps import require
from agnoshm.zenoh.keyexpr import ros_type_name

ADMIN_SPACE = "@ros2_lv"
NODE, PUBLISHER, SUBSCRIPTION, SERVICE, CLIENT = "NN", "MP", "MS", "SS", "SC"
KINDS = (NODE, PUBLISHER, SUBSCRIPTION, SERVICE, CLIENT)
DEFAULT_DEPTH = 42  # rmw_zenoh's default depth, left out of the QoS chunk
_RELIABLE, _BEST_EFFORT = 1, 2
_TRANSIENT_LOCAL, _VOLATILE = 1, 2
_KEEP_LAST, _KEEP_ALL = 1, 2
_NODE_PARTS, _TOPIC_PARTS = 9, 13


@dataclasses.dataclass(frozen=True)
class QoS:
    """The QoS an rmw_zenoh endpoint announces (what the bridge needs of it)."""

    depth: int = DEFAULT_DEPTH
    reliable: bool = True
    transient_local: bool = False
    keep_all: bool = False

    def to_keyexpr(self) -> str:
        """The QoS chunk of a liveliness token."""
        reliability = "" if self.reliable else str(_BEST_EFFORT)
        durability = str(_TRANSIENT_LOCAL) if self.transient_local else ""
        history = str(_KEEP_ALL) if self.keep_all else ""
        depth = "" if self.depth == DEFAULT_DEPTH else str(self.depth)
        return f"{reliability}:{durability}:{history},{depth}:,:,:,,"

    @classmethod
    def from_keyexpr(cls, text: str) -> "QoS | None":
        """Parse a QoS chunk; None if it is not one."""
        parts = text.split(":")
        if len(parts) != 6 or parts[2].count(",") != 1:
            return None
        history, _, depth = parts[2].partition(",")
        try:
            values = [int(v) if v else None for v in (parts[0], parts[1], history, depth)]
        except ValueError:
            return None
        reliability, durability, history_kind, depth_value = values
        return cls(depth=DEFAULT_DEPTH if depth_value is None else depth_value,
                   reliable=reliability in (None, _RELIABLE, 0),
                   transient_local=durability == _TRANSIENT_LOCAL,
                   keep_all=history_kind == _KEEP_ALL)


def mangle(name: str) -> str:
    """rmw_zenoh's ``mangle_name``: every ``/`` becomes ``%``."""
    return name.replace("/", "%")


def demangle(name: str) -> str:
    return name.replace("%", "/")


def gid_of(key: str) -> bytes:
    """The 16-byte GID rmw_zenoh gives the entity whose liveliness token is ``key``."""
    xxhash = require("xxhash")
    return xxhash.xxh3_128_intdigest(key.encode()).to_bytes(16, "little")


@dataclasses.dataclass(frozen=True)
class Entity:
    """One node, publisher or subscription of the ROS graph, as its token describes it.

    ``topic`` (absolute), ``type_name`` (``pkg::msg::dds_::Name_``), ``type_hash`` and
    ``qos`` are set for publishers and subscriptions only.
    """

    domain: int
    zid: str
    node_id: int
    entity_id: int
    kind: str
    node_name: str
    namespace: str = "/"
    enclave: str = "/"
    topic: str | None = None
    type_name: str | None = None
    type_hash: str | None = None
    qos: QoS | None = None
    qos_text: str | None = None  # the chunk as received (kept for the key and the GID)

    @property
    def key(self) -> str:
        """The liveliness token's key expression."""
        parts = [ADMIN_SPACE, str(self.domain), self.zid, str(self.node_id), str(self.entity_id),
                 self.kind, mangle(self.enclave), mangle(self.namespace), mangle(self.node_name)]
        if self.topic is not None:
            qos = self.qos_text if self.qos_text is not None else (self.qos or QoS()).to_keyexpr()
            parts += [mangle(self.topic), mangle(self.type_name), mangle(self.type_hash), qos]
        return "/".join(parts)

    @property
    def gid(self) -> bytes:
        return gid_of(self.key)

    @property
    def ros_type_name(self) -> str | None:
        """``pkg/msg/Name``, or None if the token's type is not in that form."""
        return ros_type_name(self.type_name) if self.type_name else None


def parse(key: str) -> Entity | None:
    """The entity a liveliness token's key describes; None for a key that is not one
    (``Entity::make(keyexpr)``'s checks: admin space, kind, no empty part, numbers)."""
    parts = str(key).split("/")
    if len(parts) < _NODE_PARTS or parts[0] != ADMIN_SPACE or "" in parts:
        return None
    kind = parts[5]
    if kind not in KINDS or (kind == NODE) != (len(parts) == _NODE_PARTS):
        return None
    if kind != NODE and len(parts) != _TOPIC_PARTS:
        return None
    try:
        domain, node_id, entity_id = int(parts[1]), int(parts[3]), int(parts[4])
    except ValueError:
        return None
    fields = dict(domain=domain, zid=parts[2], node_id=node_id, entity_id=entity_id, kind=kind,
                  enclave=demangle(parts[6]), namespace=demangle(parts[7]),
                  node_name=demangle(parts[8]))
    if kind != NODE:
        qos = QoS.from_keyexpr(parts[12])
        if qos is None:
            return None
        fields.update(topic=demangle(parts[9]), type_name=demangle(parts[10]),
                      type_hash=demangle(parts[11]), qos=qos, qos_text=parts[12])
    return Entity(**fields)


def subscription_key(domain: int) -> str:
    """The key expression that matches every token of ``domain``."""
    return f"{ADMIN_SPACE}/{int(domain)}/**"
