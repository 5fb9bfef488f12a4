"""The ``agnoshm`` command line.

:mod:`agnoshm.cli.main` builds one ``argparse`` parser; every subcommand is a
module ``agnoshm.cli.<name>`` listed in :data:`agnoshm.cli.main.SUBCOMMANDS`
that provides ``register(subparsers)``.  ``register`` adds the subcommand's
parser and sets its ``run`` default: a function ``run(args) -> int`` that
returns the exit status.  A subcommand reports a user error by raising
:class:`CommandError` (printed without a traceback, exit status 2).
"""

from __future__ import annotations

import argparse


class CommandError(Exception):
    """A user error of a subcommand: printed as ``agnoshm <command>: error: <message>``."""


def positive_int(text: str) -> int:
    """``argparse`` type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value
