"""``agnoshm.Bytes``: the built-in raw type, an ordinary message type of one field.

Its definition is ``uint8[] data`` under the name ``agnoshm/msg/Bytes``, so
its C layout is what rosidl_generator_c emits for that message::

    typedef struct agnoshm__msg__Bytes {
      rosidl_runtime_c__uint8__Sequence data;  // { uint8_t *data; size_t size; size_t capacity; }
    } agnoshm__msg__Bytes;
"""

from __future__ import annotations

BYTES_TYPE_NAME = "agnoshm/msg/Bytes"
BYTES_DEFINITION = "# agnoshm's built-in raw message: bytes in the publisher's pool\nuint8[] data\n"

_bytes = None


def bytes_type():
    """The :class:`~agnoshm.msg.message.MessageType` of ``agnoshm.Bytes`` (registered on first use)."""
    global _bytes
    if _bytes is None:
        from agnoshm.msg.message import get_message
        from agnoshm.msg.types import register_msg

        register_msg(BYTES_DEFINITION, BYTES_TYPE_NAME)
        _bytes = get_message(BYTES_TYPE_NAME)
    return _bytes
