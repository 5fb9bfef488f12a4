"""``ros2 agnoshm ...``: the ``agnoshm`` verbs as a ros2cli command extension.

With ROS 2 sourced, ``ros2 agnoshm topic list``, ``ros2 agnoshm bag record``
and every other verb run exactly as ``agnoshm ...`` does: the command builds
its sub-parsers from :data:`agnoshm.cli.main.SUBCOMMANDS`.  setup.py declares::

    entry_points={"ros2cli.command": ["agnoshm = agnoshm.cli.ros2cli:AgnoshmCommand"]}

This module imports without ROS 2: :class:`AgnoshmCommand` then derives from a
stand-in with the same interface, and ros2cli never loads it anyway.
"""

from __future__ import annotations

import sys

try:
    from ros2cli.command import CommandExtension
except ImportError:  # no ROS 2 here: keep the class importable (and testable)

    class CommandExtension:  # type: ignore[no-redef]
        """Stand-in for ``ros2cli.command.CommandExtension`` (same interface)."""

        NAME = None
        EXTENSION_POINT_VERSION = "0.1"

        def add_arguments(self, parser, cli_name, *, argv=None):
            pass

        def main(self, *, parser, args):
            raise NotImplementedError


class AgnoshmCommand(CommandExtension):
    """Zero-copy agnoshm topics, nodes and bags; checks and cleanup of this machine."""

    NAME = "agnoshm"

    def add_arguments(self, parser, cli_name, *, argv=None):
        from agnoshm.cli.main import register_subcommands

        self._cli_name = cli_name  # "ros2 agnoshm": ros2cli passes the command's own prog
        self._parser = parser
        parser.description = "agnoshm: true zero-copy pub/sub IPC for Python ROS 2 nodes."
        subparsers = parser.add_subparsers(dest="command", metavar="VERB")
        register_subcommands(subparsers)

    def main(self, *, parser, args):
        from agnoshm.cli.main import dispatch

        if getattr(args, "run", None) is None:
            getattr(self, "_parser", parser).print_help()
            return 0
        if not hasattr(args, "argv"):
            args.argv = sys.argv[2:]
        return dispatch(args, prog=getattr(self, "_cli_name", "ros2 agnoshm"))
