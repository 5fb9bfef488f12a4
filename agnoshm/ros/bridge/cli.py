"""The ``agnoshm_bridge`` program: arguments, then the bridge's node spun until Ctrl-C.

Exit status 0 after Ctrl-C or shutdown; 2 for bad arguments or configuration,
or when ROS 2 is not usable (rclpy not importable, or ``rclpy.init`` failing).  Everything before :func:`_run` works
without ROS 2, so ``--help`` and argument errors never need it.
"""

from __future__ import annotations

import argparse
import logging
import sys

from agnoshm.ros.bridge.config import (
    DEFAULT_PERIOD_SEC,
    BridgeConfigError,
    BridgeOptions,
    load_options,
    split_ros_args,
)
from agnoshm.ros.bridge.graph import BRIDGE_NODE_NAME
from agnoshm.ros.bridge.relay import Bridge

NEEDS_ROS = ("agnoshm_bridge needs ROS 2 (rclpy), which is not importable here: source your "
             "ROS 2 setup (e.g. `source /opt/ros/jazzy/setup.bash`) and run it again")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agnoshm_bridge",
        description="Bridge agnoshm topics to ROS 2 and back: on demand (topics with a peer on "
                    "the other side) and/or for configured topics. ROS arguments go after "
                    "--ros-args (e.g. --ros-args -r __ns:=/robot).")
    parser.add_argument("--config", metavar="FILE",
                        help="YAML file with keys on_demand (bool), period (seconds) and topics "
                             "(names, or mappings with name, direction, type, depth)")
    parser.add_argument("--topic", metavar="NAME[:DIRECTION[:TYPE]]", action="append", default=[],
                        help="always bridge this topic; DIRECTION is to_ros, to_agnoshm or both "
                             "(default both); TYPE like std_msgs/msg/String (repeatable)")
    parser.add_argument("--no-on-demand", dest="on_demand", action="store_false", default=None,
                        help="bridge only the configured topics")
    parser.add_argument("--period", type=float, metavar="SEC",
                        help=f"seconds between graph checks (default {DEFAULT_PERIOD_SEC})")
    parser.add_argument("--node-name", default=BRIDGE_NODE_NAME,
                        help=f"name of the bridge's node; keep the {BRIDGE_NODE_NAME} prefix "
                             "(default %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the bridge until Ctrl-C or shutdown; return the exit status.

    Exit status 2: bad arguments or configuration, or ROS 2 is not available.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    own, ros_args = split_ros_args(argv)
    try:
        args = build_parser().parse_args(own)
    except SystemExit as exit_:  # --help or a usage error, already printed
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    try:
        options = load_options(args.config, args.topic, args.on_demand, args.period)
    except BridgeConfigError as err:
        print(f"agnoshm_bridge: error: {err}", file=sys.stderr)
        return 2
    if not args.node_name.startswith(BRIDGE_NODE_NAME):
        print(f"agnoshm_bridge: error: --node-name must start with {BRIDGE_NODE_NAME} so that "
              "bridges recognise each other", file=sys.stderr)
        return 2
    try:
        import rclpy
        import rclpy.executors
    except ImportError:
        print(NEEDS_ROS, file=sys.stderr)
        return 2
    return _run(rclpy, options, args.node_name, ros_args)


def _run(rclpy, options: BridgeOptions, node_name: str, ros_args: list[str]) -> int:
    import agnoshm

    logging.basicConfig(level=logging.INFO, format="[agnoshm_bridge] %(message)s")
    try:
        rclpy.init(args=[sys.argv[0] or "agnoshm_bridge", *ros_args])
    except Exception as err:  # rclpy's RCLError: bad --ros-args, or rcl cannot start here
        print(f"agnoshm_bridge: error: ROS 2 did not start: {err}", file=sys.stderr)
        return 2
    bridge = node = None
    try:
        try:
            node = rclpy.create_node(node_name)
            bridge = Bridge(node, topics=options.topics, on_demand=options.on_demand)
        except Exception as err:  # a node or topic name rclpy refuses (after remapping)
            print(f"agnoshm_bridge: error: {err}", file=sys.stderr)
            return 2
        bridge.update()
        node.create_timer(options.period_sec, bridge.safe_update)
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        if bridge is not None:
            bridge.close()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        agnoshm.shutdown()
    return 0
