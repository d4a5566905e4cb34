"""Exit codes of the modelplane commands and the errors that map to them.

A command raises `CommandError` (exit 1), `UsageError` (exit 2) or `NotFound` (exit 3) with a
message meant for a person; `exits` turns them into `error: <message>` on stderr and the exit
code, so every command reports failures the same way. argparse itself exits 2 on a usage error.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

OK = 0
FAILED = 1
USAGE = 2
NOT_FOUND = 3

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  error (the API server or the store refused, a digest did not match, ...)
  2  usage error (bad arguments)
  3  not found (no such object, model, version or artifact)"""


class CommandError(Exception):
    """The command cannot do what was asked; the message says why, for a person."""

    exit_code = FAILED


class UsageError(CommandError):
    """The arguments parse but do not make sense together (argparse's own errors exit 2 too)."""

    exit_code = USAGE


class NotFound(CommandError):  # noqa: N818 - reads as the outcome, like kubectl's NotFound
    """What the command was asked about does not exist."""

    exit_code = NOT_FOUND


Command = Callable[[argparse.Namespace], int]


def exits(command: Command) -> Command:
    """Wraps a command so that a `CommandError` prints `error: ...` and returns its exit code."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CommandError as error:
            print(f"error: {error}", file=sys.stderr)
            return error.exit_code

    return run


def with_exit_codes(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the exit codes to the parser's `--help`, keeping the epilog's line breaks."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = f"{parser.epilog}\n\n{EXIT_CODES_HELP}" if parser.epilog else EXIT_CODES_HELP
    return parser
