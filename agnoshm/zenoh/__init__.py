"""The Zenoh bridge: agnoshm topics ⇄ Zenoh, in rmw_zenoh's wire format, with no ROS 2 here.

ROS 2 nodes on rmw_zenoh (Jazzy, Kilted, Rolling) on other machines, and other
agnoshm machines running this bridge, exchange messages with agnoshm's topics.
``agnoshm bridge zenoh --topic /chatter`` (or ``agnoshm_zenoh_bridge``) runs it;
docs/zenoh.md tells how to join an rmw_zenoh system.  Needs the ``zenoh`` extra
(``eclipse-zenoh``, ``xxhash``); importing this package does not.

One module per piece of rmw_zenoh's format or of the bridge:

- :mod:`agnoshm.zenoh.keyexpr`: a topic's data key expression and type names;
- :mod:`agnoshm.zenoh.attachment`: the 33-byte attachment of every sample;
- :mod:`agnoshm.zenoh.liveliness`: graph tokens, their QoS chunk, GIDs;
- :mod:`agnoshm.zenoh.graph`: the remote graph, and type-hash mismatches in it;
- :mod:`agnoshm.zenoh.relay`: :class:`TopicRelay`, one topic both ways, no echo;
- :mod:`agnoshm.zenoh.config`: options, ``--topic`` specs, the YAML file;
- :mod:`agnoshm.zenoh.session`: opening the Zenoh session, retrying for the router;
- :mod:`agnoshm.zenoh.demand`: on-demand bridging (which topics have peers; announcing
  the local endpoints);
- :mod:`agnoshm.zenoh.bridge`: :class:`ZenohBridge`, the relays of one bridge;
- :mod:`agnoshm.zenoh.cli`: the program;
- :mod:`agnoshm.zenoh.launching`: what ``launch/zenoh_bridge.launch.py`` starts.
"""

from agnoshm.zenoh.bridge import ZenohBridge
from agnoshm.zenoh.config import BridgeOptions, TopicConfig, load_options, parse_topic
from agnoshm.zenoh.errors import (
    MalformedSampleError,
    ZenohBridgeError,
    ZenohConfigError,
    ZenohSessionError,
    ZenohTopicNameError,
    ZenohUnavailableError,
)
from agnoshm.zenoh.relay import BRIDGE_NODE_NAME, RelayStats, TopicRelay, TopicSpec


def main(argv=None) -> int:
    """``agnoshm_zenoh_bridge`` (setup.py's console script)."""
    from agnoshm.zenoh.cli import main as cli_main

    return cli_main(argv)


__all__ = [
    "BRIDGE_NODE_NAME", "BridgeOptions", "MalformedSampleError", "RelayStats", "TopicConfig",
    "TopicRelay", "TopicSpec", "ZenohBridge", "ZenohBridgeError", "ZenohConfigError",
    "ZenohSessionError", "ZenohTopicNameError", "ZenohUnavailableError", "load_options", "main",
    "parse_topic",
]
