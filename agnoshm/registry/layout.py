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

Byte ``LIVENESS_LOCK_BASE + i`` of the object carries an open-file-description
lock held by the live process in slot ``i`` for its whole life; the kernel
drops it when the process dies, even by SIGKILL.  Byte ``INIT_LOCK_BYTE`` is
write-locked by the creator until the header is valid.
"""

from __future__ import annotations

import ctypes
from ctypes import Structure, c_char, c_int32, c_uint8, c_uint16, c_uint32, c_uint64

from agnoshm._libc import SIZEOF_PTHREAD_MUTEX_T

MAGIC = int.from_bytes(b"AGNOSHM1", "little")
LAYOUT_VERSION = 3  # 2: 256 subscriptions per topic (Entry.refs is four words, Entry.holders)
#                     3: ProcessRecord.sleeping (publishers ring only a process that may sleep)
MAX_PUBLISHERS_PER_TOPIC = 64
MAX_SUBSCRIPTIONS_PER_TOPIC = 256  # one bit each in Entry.refs
REF_WORDS = MAX_SUBSCRIPTIONS_PER_TOPIC // 64
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

# ProcessRecord.backend
BACKEND_SHM = 0
BACKEND_MEMFD = 1
BACKENDS = {"shm": BACKEND_SHM, "memfd": BACKEND_MEMFD}

# durability, values of rmw's DurabilityPolicy
TRANSIENT_LOCAL = 1
VOLATILE = 2
BEST_AVAILABLE = 4  # asked for, never stored: settled when the endpoint is created


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
    """A topic: name, type, its lock and its endpoint lists."""

    _fields_ = [
        ("state", c_uint32),
        ("n_publishers", c_uint16),
        ("n_subscriptions", c_uint16),
        ("seq", c_uint64),  # topic-wide sequence number of the newest entry
        ("generation", c_uint64),  # bumped when an endpoint comes or goes
        ("lock", RobustMutex),
        ("publishers", c_uint32 * MAX_PUBLISHERS_PER_TOPIC),  # PublisherRecord index + 1
        ("subscriptions", c_uint32 * MAX_SUBSCRIPTIONS_PER_TOPIC),  # SubscriptionRecord index + 1
        ("name", c_char * NAME_LEN),
        ("type_name", c_char * TYPE_NAME_LEN),
        ("type_hash", c_char * TYPE_HASH_LEN),
    ]


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
        ("_pad0", c_uint32),
        ("node_name", c_char * NODE_NAME_LEN),
    ]


class Entry(Structure):
    """One published message; ``seq == 0`` marks a free entry."""

    _fields_ = [
        ("seq", c_uint64),
        ("address", c_uint64),
        ("size", c_uint64),
        ("timestamp_ns", c_uint64),
        ("refs", c_uint64 * REF_WORDS),  # bit i: the subscription with bit i holds it
        ("prev", c_uint32),  # entry index + 1 of the previous message of this publisher
        ("holders", c_uint32),  # bits set in refs: the owner's cheap "is it held?"
    ]


NO_REFS = (c_uint64 * REF_WORDS)()


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


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


class Offsets:
    """Table offsets and the total size for a set of capacities."""

    __slots__ = ("processes", "topics", "publishers", "subscriptions", "entries", "total_size")

    def __init__(self, max_processes: int, max_topics: int, max_publishers: int,
                 max_subscriptions: int, max_entries: int):
        self.processes = PAGE
        self.topics = _align(self.processes + max_processes * ctypes.sizeof(ProcessRecord), PAGE)
        self.publishers = _align(self.topics + max_topics * ctypes.sizeof(TopicRecord), PAGE)
        self.subscriptions = _align(
            self.publishers + max_publishers * ctypes.sizeof(PublisherRecord), PAGE
        )
        self.entries = _align(
            self.subscriptions + max_subscriptions * ctypes.sizeof(SubscriptionRecord), PAGE
        )
        self.total_size = _align(
            self.entries + max_publishers * max_entries * ctypes.sizeof(Entry), PAGE
        )


assert ctypes.sizeof(Header) <= PAGE
assert ctypes.sizeof(ProcessRecord) % 64 == 0 and ProcessRecord.doorbell.offset % 64 == 0
