"""The Zenoh bridge program: ``agnoshm bridge zenoh`` and ``agnoshm_zenoh_bridge``.

Prints one ``bridging TOPIC [TYPE] ... on Zenoh key KEY`` line per relay as it
starts, problems on stderr, and each relay's counters when it stops.  Exit status
0 after Ctrl-C or SIGTERM; 2 for bad arguments or configuration; 1 when the Zenoh
packages are missing or the session cannot be opened.
"""

from __future__ import annotations

import argparse
import logging
import sys

from agnoshm.zenoh.bridge import DEFAULT_PERIOD_SEC
from agnoshm.zenoh.config import DEFAULT_DEPTH, MODES
from agnoshm.zenoh.errors import ZenohConfigError, ZenohTopicNameError

PROG = "agnoshm_zenoh_bridge"
DESCRIPTION = ("Bridge agnoshm topics to Zenoh in rmw_zenoh's wire format, so ROS 2 nodes on "
               "rmw_zenoh (and agnoshm machines running this bridge) elsewhere exchange messages "
               "with them; no ROS 2 needed here.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="YAML file with keys topics, connect, listen, mode, domain, depth, "
                             "on_demand "
                             "(see config/zenoh_bridge.yaml)")
    parser.add_argument("--topic", metavar="NAME[:TYPE]", action="append", default=[],
                        help="bridge this topic both ways; TYPE like std_msgs/msg/String (default: "
                             "the agnoshm topic's type, else what remote endpoints announce); "
                             "repeatable")
    parser.add_argument("--on-demand", action="store_true", default=None,
                        help="also bridge, while it lasts, every agnoshm topic with a publisher "
                             "on one side of Zenoh and a subscription on the other")
    parser.add_argument("--connect", metavar="ENDPOINT", action="append", default=None,
                        help="Zenoh endpoint to connect to, e.g. tcp/192.168.1.10:7447 (repeatable; "
                             "default tcp/localhost:7447 when no --connect nor --listen is given)")
    parser.add_argument("--listen", metavar="ENDPOINT", action="append", default=None,
                        help="Zenoh endpoint to listen on, e.g. tcp/0.0.0.0:7448 (repeatable)")
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="Zenoh session mode (default peer; client needs a router or peer "
                             "to connect to)")
    parser.add_argument("--domain", type=int, default=None,
                        help="ROS domain id in the Zenoh keys (default: ROS_DOMAIN_ID, else 0)")
    parser.add_argument("--depth", type=int, default=None,
                        help=f"KEEP_LAST depth of the relays (default {DEFAULT_DEPTH})")
    parser.add_argument("--period", type=float, default=DEFAULT_PERIOD_SEC,
                        help="seconds between graph checks (default %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    add_arguments(parser)
    return parser


def _log_to_stderr(prog: str) -> None:
    logger = logging.getLogger("agnoshm.zenoh")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{prog}: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def run(args: argparse.Namespace, prog: str = PROG) -> int:
    """Run the bridge for parsed arguments until Ctrl-C or SIGTERM; return the exit status."""
    import agnoshm
    from agnoshm.config import load_config
    from agnoshm.zenoh.bridge import ZenohBridge
    from agnoshm.zenoh.config import load_options
    from agnoshm.zenoh.errors import ZenohBridgeError

    _log_to_stderr(prog)
    try:
        options = load_options(args.config, topics=args.topic, connect=args.connect,
                               listen=args.listen, mode=args.mode, domain=args.domain,
                               depth=args.depth, on_demand=args.on_demand,
                               default_domain=load_config().domain_id)
        if not 0 < args.period < 3600:
            raise ZenohConfigError(f"--period must be in (0, 3600) seconds, not {args.period}")
    except (ZenohConfigError, ZenohTopicNameError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    bridge = None
    try:
        agnoshm.init()  # SIGINT/SIGTERM stop agnoshm (and so the bridge), as in rclpy
        bridge = ZenohBridge(options, stop=_stop_on_shutdown())
        bridge.spin(args.period)
    except (KeyboardInterrupt, agnoshm.ExternalShutdownException):
        pass
    except ZenohConfigError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except ZenohBridgeError as err:
        print(f"{prog}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    finally:
        try:
            if bridge is not None:
                for name, counts in bridge.stats().items():
                    print(f"{name}: " + " ".join(f"{k}={v}" for k, v in counts.items()),
                          flush=True)
                bridge.close()
        finally:
            agnoshm.shutdown()
    return 0


def _stop_on_shutdown():
    """An event that is set when agnoshm stops (a signal), to end the router wait."""
    import threading

    import agnoshm

    stop = threading.Event()

    def watch():
        while agnoshm.ok() and not stop.wait(0.2):
            pass
        stop.set()

    threading.Thread(target=watch, name="agnoshm-zenoh-stop", daemon=True).start()
    return stop


def main(argv: list[str] | None = None) -> int:
    """``agnoshm_zenoh_bridge`` (the console script)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
