"""The `modelplane` command (also `kubectl modelplane`): one sub-command group per module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modelplane.cli import (
    approval_commands,
    cluster_commands,
    fetch_commands,
    operator_commands,
    promotion_commands,
    registry_commands,
    tracking_commands,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelplane",
        description="Machine-learning model lifecycle on Kubernetes.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cluster_commands.register(commands)
    promotion_commands.register(commands)
    tracking_commands.register(commands)
    registry_commands.register(commands)
    approval_commands.register(commands)
    fetch_commands.register(commands)
    operator_commands.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence: one clear line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
