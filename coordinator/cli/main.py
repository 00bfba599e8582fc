"""`vmgridctl`: the operator command line.

Sub-commands register themselves in ``COMMANDS`` through ``add_parser`` functions, so later
features add theirs without touching the others. Each handler returns an exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from vmgrid.coordinator.cli import (
    certs_cmd,
    cluster_cmd,
    cluster_ops_cmd,
    explain_cmd,
    grid_cmd,
    jobs_cmd,
    move_cmd,
    policy_cmd,
    rules_cmd,
)

# name -> function that adds the sub-command's parser (and sets args.handler)
COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {  # type: ignore[type-arg]
    "certs": certs_cmd.add_parser,
    "nodes": cluster_cmd.add_nodes_parser,
    "vms": cluster_cmd.add_vms_parser,
    "clusters topology": cluster_ops_cmd.skipping(grid_cmd.add_parsers),
    "submit job jobs checkpoints": jobs_cmd.add_parsers,
    # apply/migrate/events of the grid are reached through cluster_ops_cmd (--coordinator)
    "grid moves": cluster_ops_cmd.skipping(move_cmd.add_parsers),
    "status plan plans apply approve reject cancel migrate suspend resume snapshot drain "
    "undrain events": cluster_ops_cmd.add_parsers,
    "rules": rules_cmd.add_parsers,
    "policy": policy_cmd.add_parsers,
    "explain capacity": explain_cmd.add_parsers,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmgridctl", description="Operate a vmgrid cluster or grid."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
