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
``entries_offset``         ``max_publishers * max_entries`` x :class:`Entry`
=========================  ==========================================

Two records end in arrays sized by the per-topic capacities in the header: a
topic lists ``max_publishers_per_topic`` publishers and
``max_subscriptions_per_topic`` subscriptions, and an entry carries one
reference bit per subscription position (``ref_words`` 64-bit words).
:class:`Offsets` builds those record types (:func:`topic_record_type`,
:func:`entry_type`) along with the offsets.

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
from agnoshm.config import MAX_PER_TOPIC  # TopicRecord.n_publishers / n_subscriptions: 16-bit

MAGIC = int.from_bytes(b"AGNOSHM1", "little")
LAYOUT_VERSION = 5  # 2: 256 subscriptions per topic (Entry.refs is four words, Entry.holders)
#                     3: ProcessRecord.sleeping (publishers ring only a process that may sleep)
#                     4: per-topic capacities in the header; endpoint lists and refs sized by them
#                     5: PublisherRecord.relayed (a new field: the record grew by 8 bytes, so
#                        an older process would read every later publisher record shifted) and
#                        SubscriptionRecord.relayed (was _pad0): a bridge's endpoint counts as
#                        the endpoints it relays
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
        ("doorbell", c_uint32),  # futex word, own cache line: "look at the registry"
        ("sleeping", c_uint32),  # 1: a thread of the process may sleep on the doorbell
        ("_pad1", c_uint8 * 56),
        ("name", c_char * 64),
    ]


class TopicRecord(Structure):
    """A topic: name, type and its lock; :func:`topic_record_type` adds the endpoint lists."""

    _fields_ = [
        ("state", c_uint32),
        ("n_publishers", c_uint16),
        ("n_subscriptions", c_uint16),
        ("seq", c_uint64),  # topic-wide sequence number of the newest entry
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
    position); a subscription's position is its bit in ``Entry.refs``.  Records
    are padded to whole cache lines, so topic locks never share one.
    """
    fields = [("publishers", c_uint32 * publishers_per_topic),
              ("subscriptions", c_uint32 * subscriptions_per_topic)]
    pad = -(ctypes.sizeof(TopicRecord) + 4 * (publishers_per_topic + subscriptions_per_topic)) % 64
    if pad:
        fields.append(("_pad", c_uint8 * pad))
    return type("TopicRecord", (TopicRecord,), {"_fields_": fields, "__doc__": TopicRecord.__doc__})


class PublisherRecord(Structure):
    """A publisher; its entries live in its own row of the entry table."""

    _fields_ = [
        ("state", c_uint32),
        ("topic", c_uint32),  # TopicRecord index
        ("process", c_uint32),  # ProcessRecord index
        ("depth", c_uint32),
        ("incarnation", c_uint64),  # of the owning process
        ("durability", c_uint32),
        ("newest", c_uint32),  # entry index + 1 of the newest entry, 0 = none
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
        ("bit", c_uint32),  # its bit in Entry.refs (= its position in the topic list)
        ("last_seq", c_uint64),  # topic seq of the newest entry it took
        ("received", c_uint64),
        ("held", c_uint32),  # entries it currently references
        ("relayed", c_uint32),  # NOT_RELAYED, or 1 + the endpoints a bridge's subscription relays
        ("node_name", c_char * NODE_NAME_LEN),
    ]


class Entry(Structure):
    """One published message; ``seq == 0`` marks a free entry. :func:`entry_type` adds ``refs``."""

    _fields_ = [
        ("seq", c_uint64),
        ("address", c_uint64),
        ("size", c_uint64),
        ("timestamp_ns", c_uint64),
        ("prev", c_uint32),  # entry index + 1 of the previous message of this publisher
        ("holders", c_uint32),  # bits set in refs: the owner's cheap "is it held?"
    ]


def ref_words(subscriptions_per_topic: int) -> int:
    """64-bit words of ``Entry.refs``: one bit per subscription position."""
    return (subscriptions_per_topic + 63) // 64


@functools.cache
def entry_type(words: int) -> type[Entry]:
    """The :class:`Entry` whose ``refs`` has ``words`` words (bit i: the subscription
    at position i of the topic holds the message)."""
    return type("Entry", (Entry,), {"_fields_": [("refs", c_uint64 * words)],
                                    "__doc__": Entry.__doc__})


def ref_word_and_mask(bit: int) -> tuple[int, int]:
    """Where subscription position ``bit`` lives in ``Entry.refs``: (word index, mask)."""
    return bit >> 6, 1 << (bit & 63)


def refs_value(entry: Entry) -> int:
    """``entry.refs`` as one integer: bit i set while subscription position i holds it."""
    value = 0
    for word in reversed(entry.refs):
        value = value << 64 | word
    return value


def clear_ref(entry: Entry, bit: int) -> bool:
    """Drop subscription position ``bit``'s reference; return whether it had one."""
    word, mask = ref_word_and_mask(bit)
    if entry.refs[word] & mask:
        entry.refs[word] &= ~mask & WORD_MASK
        entry.holders = max(entry.holders - 1, 0)
        return True
    return False


PER_TOPIC_CAPACITIES = ("max_publishers_per_topic", "max_subscriptions_per_topic")


def bad_per_topic_capacity(capacities) -> str | None:
    """The first per-topic capacity of a header outside 1..MAX_PER_TOPIC, or None.

    Record types are built from these numbers, so a header read from shared
    memory is checked before :class:`Offsets` trusts it.
    """
    for key in PER_TOPIC_CAPACITIES:
        if not 1 <= getattr(capacities, key) <= MAX_PER_TOPIC:
            return f"{key} is {getattr(capacities, key)}"
    return None


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


class Offsets:
    """Table offsets, the sized record types and the total size for a set of capacities.

    ``capacities`` is anything with the :class:`Header`'s ``max_*`` attributes
    (a header, or the configuration that will write one).
    """

    __slots__ = ("processes", "topics", "publishers", "subscriptions", "entries", "total_size",
                 "topic_record", "entry", "ref_words")

    def __init__(self, capacities):
        c = capacities
        self.topic_record = topic_record_type(c.max_publishers_per_topic,
                                              c.max_subscriptions_per_topic)
        self.ref_words = ref_words(c.max_subscriptions_per_topic)
        self.entry = entry_type(self.ref_words)
        max_publishers, max_subscriptions = c.max_publishers, c.max_subscriptions
        self.processes = PAGE
        self.topics = _align(self.processes + c.max_processes * ctypes.sizeof(ProcessRecord), PAGE)
        self.publishers = _align(
            self.topics + c.max_topics * ctypes.sizeof(self.topic_record), PAGE)
        self.subscriptions = _align(
            self.publishers + max_publishers * ctypes.sizeof(PublisherRecord), PAGE
        )
        self.entries = _align(
            self.subscriptions + max_subscriptions * ctypes.sizeof(SubscriptionRecord), PAGE
        )
        self.total_size = _align(
            self.entries + max_publishers * c.max_entries * ctypes.sizeof(self.entry), PAGE
        )


assert ctypes.sizeof(Header) <= PAGE
assert ctypes.sizeof(ProcessRecord) % 64 == 0 and ProcessRecord.doorbell.offset % 64 == 0
