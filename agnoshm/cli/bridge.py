"""``agnoshm bridge zenoh``: the Zenoh bridge (:mod:`agnoshm.zenoh`) as a subcommand.

The ROS 2 bridge stays its own program (``agnoshm_bridge``: it needs rclpy and
ROS arguments); this subcommand needs neither.
"""

from __future__ import annotations


def register(subparsers) -> None:
    from agnoshm.zenoh import cli as zenoh_cli

    parser = subparsers.add_parser("bridge", help="bridge agnoshm topics to another middleware",
                                   description="Bridge agnoshm topics to another middleware.")
    kinds = parser.add_subparsers(dest="bridge", metavar="KIND", required=True)
    zenoh = kinds.add_parser("zenoh", help="to Zenoh, in rmw_zenoh's wire format",
                             description=zenoh_cli.DESCRIPTION)
    zenoh_cli.add_arguments(zenoh)
    zenoh.set_defaults(run=lambda args: zenoh_cli.run(args, prog="agnoshm bridge zenoh"))
