"""One topic relayed both ways between agnoshm and Zenoh, in rmw_zenoh's format.

* **agnoshm → Zenoh**: an agnoshm subscription serializes each message to CDR
  (``view.to_rosbags()`` then rosbags' ``serialize_cdr``: the one copy that leaving
  the machine costs) and puts it on the topic's key with the 33-byte attachment
  (:mod:`agnoshm.zenoh.attachment`): a sequence number per publisher from 1 with no
  gaps (it advances only when a put succeeds), the message's publish time on the wall
  clock, and the GID of the relay's publisher token.
* **Zenoh → agnoshm**: a Zenoh subscriber (remote samples only) checks the attachment
  and the CDR, deserializes with rosbags and publishes into a loan (one copy into
  the pool).  Anything malformed is dropped and counted, never published: a failed
  copy discards its loan, so the pool is never left with half a message.

No echo: a message that a Zenoh bridge published into agnoshm (its publisher's node
is a bridge node, :data:`BRIDGE_NODE_NAME`) never goes back to Zenoh, and a sample
whose GID is one of this bridge's publishers never comes back into agnoshm.

TRANSIENT_LOCAL is done as rmw_zenoh does (``rmw_publisher_data.cpp``,
``rmw_subscription_data.cpp``): an ``AdvancedPublisher`` with a cache of ``depth``
samples, publisher detection and sporadic heartbeats (500 ms) for miss detection, and
an ``AdvancedSubscriber`` that asks late-joined publishers for ``depth`` samples of
history and recovers misses from heartbeats.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from agnoshm.msg import get_message
from agnoshm.qos import DurabilityPolicy, QoSProfile
from agnoshm.zenoh import attachment, liveliness
from agnoshm.zenoh._deps import require
from agnoshm.zenoh.errors import MalformedSampleError
from agnoshm.zenoh.keyexpr import data_key, dds_type_name

_logger = logging.getLogger("agnoshm.zenoh")

#: Name (and prefix) of a Zenoh bridge's agnoshm node: messages its publishers put into
#: agnoshm came from Zenoh and are never sent back.
BRIDGE_NODE_NAME = "agnoshm_zenoh_bridge"
#: rmw_zenoh's SAMPLE_MISS_DETECTION_HEARTBEAT_PERIOD (ms) for RELIABLE + TRANSIENT_LOCAL
HEARTBEAT_SEC = 0.5
_CDR_LE = b"\x00\x01"  # encapsulation kind CDR_LE; the options bytes may be anything


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    """A topic to relay: absolute name, ``pkg/msg/Name``, KEEP_LAST depth, durability."""

    name: str
    type_name: str
    depth: int = 10
    transient_local: bool = False


@dataclasses.dataclass
class RelayStats:
    """What a relay did, per direction (read them any time; they only grow)."""

    to_zenoh: int = 0  # messages put on Zenoh
    from_zenoh: int = 0  # samples published into agnoshm
    echoes: int = 0  # own messages not sent back (either direction)
    malformed: int = 0  # samples dropped: attachment or CDR broken
    undeliverable: int = 0  # well-formed samples agnoshm could not take (pool full, bad value)
    send_failures: int = 0  # puts Zenoh refused (session closed)
    gaps: int = 0  # sequence numbers skipped by remote publishers (lost or dropped samples)


class BridgeContext:
    """What all relays of one bridge share: the Zenoh session, the agnoshm node, the
    domain, the ids of graph entities and the GIDs of the bridge's own publishers."""

    def __init__(self, session, node, domain: int, *, node_token: liveliness.Entity):
        self.session = session
        self.node = node
        self.domain = domain
        self.zid = node_token.zid
        self.node_entity = node_token
        self.own_gids: set[bytes] = set()
        self._next_id = node_token.entity_id + 1
        self._lock = threading.Lock()

    def next_id(self) -> int:
        """A node or entity id not used yet in this session."""
        with self._lock:
            entity_id, self._next_id = self._next_id, self._next_id + 1
        return entity_id

    def entity(self, kind: str, spec: TopicSpec, type_hash: str) -> liveliness.Entity:
        """A new publisher or subscription entity of the bridge's node for ``spec``."""
        entity_id = self.next_id()
        node = self.node_entity
        return liveliness.Entity(
            node.domain, node.zid, node.node_id, entity_id, kind, node.node_name, node.namespace,
            node.enclave, spec.name, dds_type_name(spec.type_name), type_hash,
            liveliness.QoS(depth=spec.depth, transient_local=spec.transient_local))


def is_bridge_message(view) -> bool:
    """Whether an agnoshm message was published by a Zenoh bridge (so it came from Zenoh).

    agnoshm views carry no publisher identity in their public API; the publisher's
    registry record (the lease's publisher index) names its node.
    """
    from agnoshm import context

    node_name = context.get_runtime().registry.publisher_node_name(view._owner.publisher)
    return node_name.rpartition("/")[2].startswith(BRIDGE_NODE_NAME)


def _zbytes_source(data: memoryview):
    """What ``put`` accepts without another copy (zenoh takes bytes or bytearray)."""
    owner = getattr(data, "obj", None)
    if isinstance(owner, (bytes, bytearray)) and len(owner) == data.nbytes:
        return owner
    return bytes(data)


#: Remote writers whose sequence numbers a relay remembers (gap counting); past this the
#: oldest is forgotten, so a peer inventing GIDs cannot grow the bridge's memory.
MAX_REMOTE_WRITERS = 1024


class TopicRelay:
    """Relays one topic both ways; :meth:`close` undoes everything it declared.

    .. warning:: Created by :class:`agnoshm.zenoh.bridge.ZenohBridge`, not directly.
    """

    def __init__(self, context: BridgeContext, spec: TopicSpec):
        from agnoshm.msg.types import default_registry

        zenoh = require("zenoh")
        self.spec = spec
        self.stats = RelayStats()
        self._context = context
        self._msg_type = get_message(spec.type_name)
        self.type_hash = self._msg_type.type_hash
        self.key = data_key(context.domain, spec.name, spec.type_name, self.type_hash)
        self._typestore = default_registry().rosbags.typestore
        if spec.type_name not in self._typestore.fielddefs:
            # a type rosbags' store lacks (agnoshm/msg/Bytes, register_msg ones): add it with
            # its nested types, so that samples from Zenoh deserialize
            from agnoshm.msg.convert import _register_in_typestore

            _register_in_typestore(self._typestore, spec.type_name)
        self._send_lock = threading.Lock()
        self._receive_lock = threading.Lock()
        self._closed = False
        self._sequence = 1  # the next sequence number (rmw_zenoh's sequence_number_(1))
        self._last_seen: dict[bytes, int] = {}  # remote GID -> last sequence number
        self.publisher_entity = context.entity(liveliness.PUBLISHER, spec, self.type_hash)
        self.subscription_entity = context.entity(liveliness.SUBSCRIPTION, spec, self.type_hash)
        self._gid = self.publisher_entity.gid
        self._declared: list = []  # Zenoh objects, undeclared in reverse order
        self._agnoshm_pub = self._agnoshm_sub = None
        qos = QoSProfile(depth=spec.depth, durability=DurabilityPolicy.TRANSIENT_LOCAL
                         if spec.transient_local else DurabilityPolicy.VOLATILE)
        try:
            session = context.session
            self._zenoh_pub = self._declare_publisher(zenoh, session)
            self._declared.append(self._zenoh_pub)
            context.own_gids.add(self._gid)
            self._agnoshm_pub = context.node.create_publisher(self._msg_type, spec.name, qos)
            self._declared.append(self._declare_subscriber(zenoh, session))
            self._agnoshm_sub = context.node.create_subscription(
                self._msg_type, spec.name, self._from_agnoshm, qos)
            for entity in (self.publisher_entity, self.subscription_entity):
                self._declared.append(session.liveliness().declare_token(entity.key))
        except BaseException:
            self.close()
            raise

    def _declare_publisher(self, zenoh, session):
        # rmw_zenoh uses DROP for KEEP_LAST; under DROP Zenoh loses whole large samples (a 6 MB
        # one) when its queue is full, so the bridge blocks instead: reliable means delivered
        reliable = dict(reliability=zenoh.Reliability.RELIABLE,
                        congestion_control=zenoh.CongestionControl.BLOCK)
        if not self.spec.transient_local:
            return session.declare_publisher(self.key, **reliable)
        ext = require("zenoh.ext")
        return ext.declare_advanced_publisher(
            session, self.key, **reliable, cache=ext.CacheConfig(self.spec.depth),
            publisher_detection=True,
            sample_miss_detection=ext.MissDetectionConfig(sporadic_heartbeat=HEARTBEAT_SEC))

    def _declare_subscriber(self, zenoh, session):
        remote = zenoh.Locality.REMOTE  # this session's own puts never come back
        if not self.spec.transient_local:
            return session.declare_subscriber(self.key, self._from_zenoh, allowed_origin=remote)
        ext = require("zenoh.ext")
        return ext.declare_advanced_subscriber(
            session, self.key, self._from_zenoh, allowed_origin=remote, subscriber_detection=True,
            history=ext.HistoryConfig(detect_late_publishers=True, max_samples=self.spec.depth),
            recovery=ext.RecoveryConfig(heartbeat=True))

    def count_relayed(self, publishers: int, subscriptions: int) -> None:
        """Make the relay's agnoshm endpoints count as the remote endpoints they stand for
        (``get_subscription_count()``, ``get_publisher_count()``), not as themselves."""
        for endpoint, count in ((self._agnoshm_pub, publishers), (self._agnoshm_sub, subscriptions)):
            if endpoint is not None:
                endpoint._set_relayed(count)

    # -- agnoshm → Zenoh (an executor thread) ----------------------------------------------------
    def _from_agnoshm(self, view) -> None:
        if is_bridge_message(view):
            self.stats.echoes += 1
            return
        payload = self._typestore.serialize_cdr(view.to_rosbags(self._typestore),
                                                self.spec.type_name)
        # the publish time on the wall clock (views carry CLOCK_MONOTONIC)
        stamp = time.time_ns() - max(0, time.monotonic_ns() - view.timestamp_ns)
        del view  # release the message before the network send
        with self._send_lock:
            if self._closed:
                return
            extra = attachment.encode(self._sequence, stamp, self._gid)
            try:
                self._zenoh_pub.put(_zbytes_source(payload), attachment=extra)
            except Exception as err:  # zenoh.ZError: the session is closing
                self.stats.send_failures += 1
                _logger.debug("put on %s failed: %s", self.key, err)
                return
            self._sequence += 1
            self.stats.to_zenoh += 1

    # -- Zenoh → agnoshm (a Zenoh thread) ----------------------------------------------------------
    def _from_zenoh(self, sample) -> None:
        try:
            meta = attachment.decode(sample.attachment.to_bytes()
                                     if sample.attachment is not None else None)
            if meta.gid in self._context.own_gids:
                self.stats.echoes += 1
                return
            message = self._deserialize(sample.payload.to_bytes())
        except MalformedSampleError as err:
            self._drop("malformed", err)
            return
        with self._receive_lock:
            if self._closed:
                return
            self._note_sequence(meta)
            try:
                self._agnoshm_pub.publish(message)
            except Exception as err:  # noqa: BLE001  network input: whatever it causes, drop it
                self._drop("undeliverable", err)
                return
            self.stats.from_zenoh += 1

    def _deserialize(self, payload: bytes):
        if payload[:2] != _CDR_LE or len(payload) < 4:
            raise MalformedSampleError(
                f"payload of {len(payload)} bytes does not start with the CDR little-endian "
                f"header 00 01 (got {payload[:4].hex(' ') or 'nothing'})")
        try:
            return self._typestore.deserialize_cdr(payload, self.spec.type_name)
        except Exception as err:  # rosbags' SerdeError, or whatever a hostile payload causes
            raise MalformedSampleError(f"not a CDR {self.spec.type_name}: {err}") from None

    def _note_sequence(self, meta: attachment.Attachment) -> None:
        last = self._last_seen.get(meta.gid)
        if last is None and len(self._last_seen) >= MAX_REMOTE_WRITERS:
            self._last_seen.pop(next(iter(self._last_seen)))  # the oldest: a flood of GIDs
        if last is not None and meta.sequence_number > last + 1:
            self.stats.gaps += meta.sequence_number - last - 1
        self._last_seen[meta.gid] = max(meta.sequence_number, last or 0)

    def _drop(self, what: str, err: Exception) -> None:
        """Count a dropped sample; say why the first time and at every power of ten."""
        setattr(self.stats, what, getattr(self.stats, what) + 1)
        count = getattr(self.stats, what)
        if str(count).rstrip("0") == "1":
            _logger.warning("dropped a %s sample on %s (%d so far): %s", what, self.spec.name,
                            count, err)

    def close(self) -> None:
        """Undeclare the Zenoh side and destroy the agnoshm endpoints (idempotent)."""
        with self._send_lock, self._receive_lock:
            self._closed = True
        for declared in reversed(self._declared):
            try:
                declared.undeclare()
            except Exception as err:  # the session is already closed
                _logger.debug("undeclare on %s: %s", self.key, err)
        self._declared.clear()
        for endpoint in (self._agnoshm_sub, self._agnoshm_pub):
            if endpoint is not None:
                endpoint.destroy()
        self._agnoshm_sub = self._agnoshm_pub = None
        self._context.own_gids.discard(self._gid)
