"""Messages: type sources, the rosidl C layout, loaned (writable) and received (read-only) views.

``get_message("sensor_msgs/msg/Image")`` gives the type; ``register_msg`` and
``register_package`` add your own ``.msg`` definitions; ``agnoshm.Bytes`` is
the built-in raw type (``uint8[] data``).
"""

from agnoshm.msg.checks import MessageCorruptedError
from agnoshm.msg.definition import MessageDefinitionError, UnknownTypeError
from agnoshm.msg.layout import layout_of, numpy_dtype
from agnoshm.msg.message import (
    LoanedView, MessageType, MessageView, ReceivedView, bytes_type, get_message,
)
from agnoshm.msg.types import get_definition, register_msg, register_package, type_hash

__all__ = [
    "Bytes", "LoanedView", "MessageCorruptedError", "MessageDefinitionError", "MessageType",
    "MessageView", "ReceivedView", "UnknownTypeError", "get_definition", "get_message",
    "layout_of", "numpy_dtype", "register_msg", "register_package", "type_hash",
]


def __getattr__(name):
    if name == "Bytes":  # resolved on use, not at import
        return bytes_type()
    raise AttributeError(f"module 'agnoshm.msg' has no attribute {name!r}")
