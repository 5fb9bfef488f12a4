"""``agnoshm.Bytes``: the built-in raw type, an ordinary message type of one field.

Its definition is ``uint8[] data`` under the name ``agnoshm/msg/Bytes``, which
every :class:`~agnoshm.msg.types.TypeRegistry` knows (before rclpy, rosbags and
the user's definitions), so its C layout is what rosidl_generator_c emits for that message::

    typedef struct agnoshm__msg__Bytes {
      rosidl_runtime_c__uint8__Sequence data;  // { uint8_t *data; size_t size; size_t capacity; }
    } agnoshm__msg__Bytes;
"""

from __future__ import annotations

BYTES_TYPE_NAME = "agnoshm/msg/Bytes"
BYTES_DEFINITION = "# agnoshm's built-in raw message: bytes in the publisher's pool\nuint8[] data\n"
