"""The attachment rmw_zenoh puts on every sample: who sent it, when, and its number.

``AttachmentData::serialize_to_zbytes`` (``attachment_helpers.cpp``, rmw_zenoh ≥ 0.6.0 on
Kilted/Rolling, ≥ 0.2.4 on Jazzy) writes with ``zenoh::ext::Serializer``: an ``int64``
sequence number, an ``int64`` source timestamp, then the ``std::array<uint8_t, 16>`` GID,
which zenoh-cpp serializes as a sequence (a LEB128 length, ``0x10``, then the bytes)::

    offset  size  field
         0     8  sequence number, int64 little-endian (per publisher, from 1, no gaps)
         8     8  source timestamp, int64 little-endian, ns since the Unix epoch
        16     1  0x10 (the GID's length)
        17    16  publisher GID (see :mod:`agnoshm.zenoh.liveliness`)

Earlier releases (Jazzy 0.2.0–0.2.3) wrote each field after its name as a zenoh-ext
string (LEB128 length and bytes: ``"sequence_number"``, ``"source_timestamp"``,
``"source_gid"``); :func:`decode` reads both, :func:`encode` writes the current one.
rmw_zenoh drops a sample that has no attachment, so every sample carries one.
"""

from __future__ import annotations

import dataclasses
import struct

from agnoshm.zenoh.errors import MalformedSampleError

SIZE = 33
GID_SIZE = 16
_HEAD = struct.Struct("<qqB")
_INT64 = struct.Struct("<q")
_LABELS = (b"sequence_number", b"source_timestamp", b"source_gid")


@dataclasses.dataclass(frozen=True)
class Attachment:
    """One sample's attachment."""

    sequence_number: int
    source_timestamp: int  # ns since the Unix epoch
    gid: bytes  # 16 bytes


def encode(sequence_number: int, source_timestamp: int, gid: bytes) -> bytes:
    """The 33 attachment bytes rmw_zenoh ≥ 0.6.0 / 0.2.4 writes."""
    if len(gid) != GID_SIZE:
        raise ValueError(f"a GID has {GID_SIZE} bytes, not {len(gid)}")
    return _HEAD.pack(sequence_number, source_timestamp, GID_SIZE) + bytes(gid)


def decode(data: bytes | bytearray | memoryview | None) -> Attachment:
    """Parse an attachment from the network (untrusted input).

    :raises MalformedSampleError: if it is missing or in neither of rmw_zenoh's layouts.
    """
    if data is None:
        raise MalformedSampleError("the sample has no attachment (rmw_zenoh drops such samples)")
    data = bytes(data)
    if len(data) == SIZE and data[16] == GID_SIZE:
        sequence_number, timestamp, _ = _HEAD.unpack_from(data)
        return Attachment(sequence_number, timestamp, data[17:])
    if data[:1] == bytes([len(_LABELS[0])]) and _LABELS[0] in data[:16]:
        return _decode_labelled(data)
    raise MalformedSampleError(
        f"attachment of {len(data)} bytes is not rmw_zenoh's (33 bytes: int64 sequence number, "
        "int64 timestamp, 0x10, 16-byte GID)")


def _decode_labelled(data: bytes) -> Attachment:
    """The labelled layout of rmw_zenoh 0.2.0–0.2.3."""
    fields, offset = [], 0
    for label in _LABELS:
        offset = _expect(data, offset, bytes([len(label)]) + label)
        if label == b"source_gid":
            offset = _expect(data, offset, bytes([GID_SIZE]))
            fields.append(data[offset:offset + GID_SIZE])
            offset += GID_SIZE
        else:
            fields.append(_INT64.unpack_from(data, offset)[0] if len(data) >= offset + 8 else None)
            offset += _INT64.size
    if offset != len(data) or None in fields:
        raise MalformedSampleError(f"labelled attachment of {len(data)} bytes is truncated or "
                                   "has extra bytes")
    return Attachment(*fields)


def _expect(data: bytes, offset: int, expected: bytes) -> int:
    if data[offset:offset + len(expected)] != expected:
        raise MalformedSampleError(f"labelled attachment lacks {expected[1:]!r} at byte {offset}")
    return offset + len(expected)
