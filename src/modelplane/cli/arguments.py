"""Argument types shared by the CLI's commands."""

from __future__ import annotations

import argparse


def version_number(text: str) -> int:
    """A model version on the command line: a whole number from 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a version number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("versions start at 1")
    return value
