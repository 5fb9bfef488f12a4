"""Binary layout of the registry, one shared-memory object per ROS domain.

All records are ctypes ``Structure`` s at fixed offsets; every table is sized
from the capacities stored in the header, so a process always computes the
same offsets as the creator.  Zero bytes mean "free", so a fresh object
(``ftruncate`` fills with zeros) is an empty registry and unused tables cost
no memory.  References between records are ``index + 1`` (0 = none).

=========================  ==========================================
offset                     content
=========================  ==========================================
0                          :class:`Header` (4 KiB page)
``processes_offset``       ``max_processes`` x :class:`ProcessRecord`
``topics_offset``          ``max_topics`` x :class:`TopicRecord`
``publishers_offset``      ``max_publishers`` x :class:`PublisherRecord`
``subscriptions_offset``   ``max_subscriptions`` x :class:`SubscriptionRecord`
``channels_offset``        ``max_publishers`` x :class:`Channel` (the message path)
``receipts_offset``        ``max_subscriptions`` x :class:`Receipts` (the message path)
=========================  ==========================================

The first tables are the control plane: written under the global and topic
locks.  The last two are the message path (``agnoshm/transport/``), which
takes no lock: every word in them has one writer.  A publisher's
:class:`Channel` (its head, its log of sequence numbers and its entries) is
written only by the publisher; a subscription's :class:`Receipts` (how far it
read each publisher of its topic, and the messages it holds) only by the
subscribing process.  ``agnoshm/transport/ring.py`` gives the memory-ordering
argument.

A topic record ends in arrays sized by the per-topic capacities in the
header: it lists ``max_publishers_per_topic`` publishers and
``max_subscriptions_per_topic`` subscriptions.  A channel has
``max_entries`` entries; receipts have one cursor per publisher position and
``max_publishers_per_topic * max_entries`` hold counts.  :class:`Offsets`
builds those record types along with the offsets.

Byte ``LIVENESS_LOCK_BASE + i`` of the object carries an open-file-description
lock held by the live process in slot ``i`` for its whole life; the kernel
drops it when the process dies, even by SIGKILL.  Byte ``INIT_LOCK_BYTE`` is
write-locked by the creator until the header is valid.
"""

from __future__ import annotations

import ctypes
import functools
from ctypes import Structure, c_char, c_int32, c_uint8, c_uint16, c_uint32, c_uint64

from agnoshm._libc import SIZEOF_PTHREAD_MUTEX_T
from agnoshm.config import MAX_ENTRIES, MAX_PER_TOPIC

MAGIC = int.from_bytes(b"AGNOSHM1", "little")
LAYOUT_VERSION = 6  # 2: 256 subscriptions per topic (Entry.refs is four words, Entry.holders)
#                     3: ProcessRecord.sleeping (publishers ring only a process that may sleep)
#                     4: per-topic capacities in the header; endpoint lists and refs sized by them
#                     5: PublisherRecord.relayed (a new field: the record grew by 8 bytes, so
#                        an older process would read every later publisher record shifted) and
#                        SubscriptionRecord.relayed (was _pad0): a bridge's endpoint counts as
#                        the endpoints it relays
#                     6: the lock-free message path: per-publisher channels and per-subscription
#                        receipts replace entry rows with reference bits; no topic seq
WORD_MASK = (1 << 64) - 1
NAME_LEN = 256
TYPE_NAME_LEN = 256
TYPE_HASH_LEN = 80
NODE_NAME_LEN = 128
INIT_LOCK_BYTE = 0
LIVENESS_LOCK_BASE = 1 << 40
PAGE = 4096

# Header.state
REGISTRY_INITIALIZING = 0
REGISTRY_READY = 1
REGISTRY_CLOSED = 2  # unlinked by the last process; reopen a new one

# record states
FREE = 0
USED = 1
DRAINING = 2  # subscription destroyed while views still hold its messages


# durability, values of rmw's DurabilityPolicy
TRANSIENT_LOCAL = 1
VOLATILE = 2
BEST_AVAILABLE = 4  # asked for, never stored: settled when the endpoint is created

# PublisherRecord.relayed / SubscriptionRecord.relayed
NOT_RELAYED = 0  # an ordinary endpoint: it counts as itself; n + 1: a bridge's endpoint
#                  standing for n endpoints beyond the bridge (ROS 2, Zenoh), counted as n


class RobustMutex(Structure):
    """``pthread_mutex_t`` (robust, process-shared), aligned to 8 bytes."""

    _fields_ = [("raw", c_uint64 * (SIZEOF_PTHREAD_MUTEX_T // 8))]


class Header(Structure):
    """Registry header: identity, capacities and the global lock."""

    _fields_ = [
        ("magic", c_uint64),
        ("layout_version", c_uint32),
        ("state", c_uint32),
        ("domain_id", c_uint32),
        ("max_processes", c_uint32),
        ("max_topics", c_uint32),
        ("max_publishers", c_uint32),
        ("max_subscriptions", c_uint32),
        ("max_entries", c_uint32),
        ("max_publishers_per_topic", c_uint32),
        ("max_subscriptions_per_topic", c_uint32),
        ("pool_size", c_uint64),
        ("base_address", c_uint64),
        ("total_size", c_uint64),
        ("lock", RobustMutex),
        ("generation", c_uint64),  # bumped by every structural change
        ("incarnations", c_uint64),  # counter handing out ProcessRecord.incarnation
        ("repairs", c_uint64),  # times a dead lock owner was repaired
        ("reaped", c_uint64),  # dead processes reclaimed
        ("live_processes", c_uint32),
        ("_pad0", c_uint32),
    ]


class ProcessRecord(Structure):
    """One participating process; its index is also its pool slot."""

    _fields_ = [
        ("state", c_uint32),
        ("pid", c_int32),
        ("start_time", c_uint64),  # /proc/<pid>/stat field 22: detects pid reuse
        ("incarnation", c_uint64),  # unique per join: detects slot reuse
        ("backend", c_uint32),
        ("uid", c_uint32),
        ("pool_address", c_uint64),
        ("pool_size", c_uint64),
        ("left_at_ns", c_uint64),  # CLOCK_MONOTONIC when the slot was freed (reuse oldest)
        ("_pad0", c_uint64),
        ("doorbell", c_uint32),  # futex word, own cache line; publishers add 1 (FUTEX_WAKE_OP)
        ("sleeping", c_uint32),  # written by this process only: 1 while a thread may sleep
        ("_pad1", c_uint8 * 56),
        ("name", c_char * 64),
    ]


class TopicRecord(Structure):
    """A topic: name, type and its lock; :func:`topic_record_type` adds the endpoint lists."""

    _fields_ = [
        ("state", c_uint32),
        ("n_publishers", c_uint16),
        ("n_subscriptions", c_uint16),
        ("_pad0", c_uint64),
        ("generation", c_uint64),  # bumped when an endpoint comes or goes
        ("lock", RobustMutex),
        ("name", c_char * NAME_LEN),
        ("type_name", c_char * TYPE_NAME_LEN),
        ("type_hash", c_char * TYPE_HASH_LEN),
    ]


@functools.cache
def topic_record_type(publishers_per_topic: int, subscriptions_per_topic: int) -> type[TopicRecord]:
    """The :class:`TopicRecord` of a registry with these per-topic capacities.

    ``publishers[i]`` / ``subscriptions[i]`` hold a record index + 1 (0: free
    position); an endpoint's position indexes the receipts.  Records
    are padded to whole cache lines, so topic locks never share one.
    """
    fields = [("publishers", c_uint32 * publishers_per_topic),
              ("subscriptions", c_uint32 * subscriptions_per_topic)]
    pad = -(ctypes.sizeof(TopicRecord) + 4 * (publishers_per_topic + subscriptions_per_topic)) % 64
    if pad:
        fields.append(("_pad", c_uint8 * pad))
    return type("TopicRecord", (TopicRecord,), {"_fields_": fields, "__doc__": TopicRecord.__doc__})


class PublisherRecord(Structure):
    """A publisher; its messages go through its :class:`Channel` (same index)."""

    _fields_ = [
        ("state", c_uint32),
        ("topic", c_uint32),  # TopicRecord index
        ("process", c_uint32),  # ProcessRecord index
        ("depth", c_uint32),
        ("incarnation", c_uint64),  # of the owning process
        ("durability", c_uint32),
        ("position", c_uint32),  # its place in the topic's publisher list
        ("published", c_uint64),
        ("relayed", c_uint32),  # NOT_RELAYED, or 1 + the endpoints a bridge's publisher relays
        ("_pad0", c_uint32),
        ("node_name", c_char * NODE_NAME_LEN),
    ]


class SubscriptionRecord(Structure):
    """A subscription and how far it has read its topic."""

    _fields_ = [
        ("state", c_uint32),
        ("topic", c_uint32),
        ("process", c_uint32),
        ("depth", c_uint32),
        ("incarnation", c_uint64),
        ("durability", c_uint32),
        ("bit", c_uint32),  # its position in the topic's subscription list
        ("_pad1", c_uint64),
        ("received", c_uint64),
        ("held", c_uint32),  # entries it currently references
        ("relayed", c_uint32),  # NOT_RELAYED, or 1 + the endpoints a bridge's subscription relays
        ("node_name", c_char * NODE_NAME_LEN),
    ]


class Entry(Structure):
    """One published message in a :class:`Channel`; ``seq == 0`` marks a withdrawn entry."""

    _fields_ = [
        ("seq", c_uint64),  # the publisher's sequence number, written last
        ("address", c_uint64),
        ("size", c_uint64),
        ("timestamp_ns", c_uint64),
    ]


class ChannelHead(Structure):
    """The start of a :class:`Channel`: who owns it and how far it has published."""

    _fields_ = [
        ("ident", c_uint64),  # unique per publisher (from Header.incarnations); 0: none
        ("head", c_uint64),  # sequence number of the newest published message, 0: none
        ("_pad", c_uint8 * 48),
    ]


#: A log word is ``seq << LOG_SHIFT | entry index``: one aligned store says both.
LOG_SHIFT = 16
assert MAX_ENTRIES < 1 << LOG_SHIFT


@functools.cache
def channel_type(entries: int) -> type[Structure]:
    """A publisher's channel with ``entries`` entries, written only by the publisher:
    ``log[seq % entries]`` names the entry that carries ``seq``."""
    return type("Channel", (Structure,), {
        "_fields_": [("start", ChannelHead), ("log", c_uint64 * entries),
                     ("entries", Entry * entries)],
        "__doc__": "A publisher's channel, written only by the publisher (see ring.py)."})


@functools.cache
def receipts_type(publishers_per_topic: int, entries: int) -> type[Structure]:
    """A subscription's receipts, written only by the subscribing process: per publisher
    position the newest sequence number taken, and per (position, entry) how many of
    the subscription's received messages hold that entry (the publisher reuses an
    entry only while every count on it is 0)."""
    holds = publishers_per_topic * entries
    pad = -(8 * publishers_per_topic + holds) % 64
    fields = [("cursors", c_uint64 * publishers_per_topic), ("holds", c_uint8 * holds)]
    if pad:
        fields.append(("_pad", c_uint8 * pad))
    return type("Receipts", (Structure,), {"_fields_": fields, "__doc__": receipts_type.__doc__})


PER_TOPIC_CAPACITIES = ("max_publishers_per_topic", "max_subscriptions_per_topic")


def bad_per_topic_capacity(capacities) -> str | None:
    """The first per-topic capacity of a header outside 1..MAX_PER_TOPIC, or None.

    Record types are built from these numbers, so a header read from shared
    memory is checked before :class:`Offsets` trusts it.
    """
    for key in PER_TOPIC_CAPACITIES:
        if not 1 <= getattr(capacities, key) <= MAX_PER_TOPIC:
            return f"{key} is {getattr(capacities, key)}"
    if not 1 <= capacities.max_entries <= MAX_ENTRIES:
        return f"max_entries is {capacities.max_entries}"
    return None


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


class Offsets:
    """Table offsets, the sized record types and the total size for a set of capacities.

    ``capacities`` is anything with the :class:`Header`'s ``max_*`` attributes
    (a header, or the configuration that will write one).
    """

    __slots__ = ("processes", "topics", "publishers", "subscriptions", "channels", "receipts",
                 "total_size", "topic_record", "channel", "receipt")

    def __init__(self, capacities):
        c = capacities
        self.topic_record = topic_record_type(c.max_publishers_per_topic,
                                              c.max_subscriptions_per_topic)
        self.channel = channel_type(c.max_entries)
        self.receipt = receipts_type(c.max_publishers_per_topic, c.max_entries)
        max_publishers, max_subscriptions = c.max_publishers, c.max_subscriptions
        self.processes = PAGE
        self.topics = _align(self.processes + c.max_processes * ctypes.sizeof(ProcessRecord), PAGE)
        self.publishers = _align(
            self.topics + c.max_topics * ctypes.sizeof(self.topic_record), PAGE)
        self.subscriptions = _align(
            self.publishers + max_publishers * ctypes.sizeof(PublisherRecord), PAGE
        )
        self.channels = _align(
            self.subscriptions + max_subscriptions * ctypes.sizeof(SubscriptionRecord), PAGE
        )
        self.receipts = _align(
            self.channels + max_publishers * ctypes.sizeof(self.channel), PAGE)
        self.total_size = _align(
            self.receipts + max_subscriptions * ctypes.sizeof(self.receipt), PAGE)


assert ctypes.sizeof(Header) <= PAGE
assert ctypes.sizeof(ProcessRecord) % 64 == 0 and ProcessRecord.doorbell.offset % 64 == 0
assert ctypes.sizeof(ChannelHead) == 64
