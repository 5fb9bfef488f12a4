"""``agnoshm`` entry point: one ``argparse`` parser, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys

from agnoshm.cli import CommandError
from agnoshm.errors import AgnoshmError

#: Subcommand modules under ``agnoshm.cli``; each provides ``register(subparsers)``.
SUBCOMMANDS: tuple[str, ...] = ("bench",)


def build_parser() -> argparse.ArgumentParser:
    """The ``agnoshm`` parser with every subcommand of :data:`SUBCOMMANDS` registered."""
    from agnoshm import __version__

    parser = argparse.ArgumentParser(
        prog="agnoshm", description="agnoshm: true zero-copy pub/sub IPC for Python ROS 2 nodes.")
    parser.add_argument("--version", action="version", version=f"agnoshm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"agnoshm.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``agnoshm`` command line; return the exit status (never raises for user errors)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    args.argv = argv
    try:
        return int(args.run(args) or 0)
    except CommandError as err:
        print(f"agnoshm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except AgnoshmError as err:  # e.g. a bad AGNOSHM_* setting
        print(f"agnoshm {args.command}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"agnoshm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
