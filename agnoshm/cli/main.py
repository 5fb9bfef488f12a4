"""``agnoshm`` entry point: one ``argparse`` parser, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from agnoshm.cli import CommandError
from agnoshm.errors import AgnoshmError

#: Subcommand modules under ``agnoshm.cli``; each provides ``register(subparsers)``.
SUBCOMMANDS: tuple[str, ...] = ("bench", "topic", "service", "node", "bag", "bridge", "doctor", "clean")


def build_parser() -> argparse.ArgumentParser:
    """The ``agnoshm`` parser with every subcommand of :data:`SUBCOMMANDS` registered."""
    from agnoshm import __version__

    parser = argparse.ArgumentParser(
        prog="agnoshm", description="agnoshm: true zero-copy pub/sub IPC for Python ROS 2 nodes.")
    parser.add_argument("--version", action="version", version=f"agnoshm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_subcommands(subparsers)
    return parser


def register_subcommands(subparsers) -> None:
    """Add every subcommand of :data:`SUBCOMMANDS` (also used by ``ros2 agnoshm``)."""
    for name in SUBCOMMANDS:
        importlib.import_module(f"agnoshm.cli.{name}").register(subparsers)


def main(argv: list[str] | None = None) -> int:
    """Run the ``agnoshm`` command line; return the exit status (never raises for user errors)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    args.argv = argv
    return dispatch(args)


def dispatch(args: argparse.Namespace, prog: str = "agnoshm") -> int:
    """Run a parsed subcommand; user errors become a message on stderr and an exit status."""
    try:
        return int(args.run(args) or 0)
    except CommandError as err:
        print(f"{prog} {args.command}: error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except AgnoshmError as err:  # e.g. a bad AGNOSHM_* setting
        print(f"{prog} {args.command}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output left (`agnoshm topic echo /x | head`)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
