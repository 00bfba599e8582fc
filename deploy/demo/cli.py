"""`vmgrid-demo`'s command line: its options, with the checks that name a bad value."""

from __future__ import annotations

import argparse
from pathlib import Path

from vmgrid.agents.cluster.decide.control import AutomationLevel

HA_DELAY_S = 5.0
EPILOG = """\
examples:
  vmgrid-demo                          # run until Ctrl-C
  vmgrid-demo --duration 60 --state-file /tmp/demo.json
  vmgrid-demo --nodes 6 --vms-per-node 8 --automation manual
  vmgrid-demo --no-ha-scenario         # skip the group submission and node failure act
  vmgrid-demo --policy cpu_high=0.9 --policy aggressiveness=aggressive
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmgrid-demo",
        description="Run a demo vmgrid grid (clusters c1 and c2 under one coordinator) on the "
        "libvirt test driver and show it live.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nodes", type=_positive_int, default=4, help="simulated nodes in c1 (4)")
    parser.add_argument(
        "--vms-per-node", type=_positive_int, default=5, help="VMs per node at start (5)"
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="stop cleanly after this long (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="once everything is up, write the endpoints as JSON to FILE",
    )
    parser.add_argument(
        "--automation",
        choices=[level.value for level in AutomationLevel],
        default="automatic",
        help="automation level of the cluster (automatic)",
    )
    parser.add_argument(
        "--step",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="demo seconds per 5-minute trace sample (5)",
    )
    parser.add_argument(
        "--web-listen",
        default="127.0.0.1:0",
        metavar="HOST:PORT",
        help="address of the web dashboard (127.0.0.1:0 picks a free port)",
    )
    parser.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="operator policy of c1 on top of the demo's (cpu_high=0.75, memory_high=0.75, "
        "min_move_interval_s=600; see docs/control.md); repeatable",
    )
    parser.add_argument(
        "--refresh", type=_positive_float, default=5.0, help="seconds between status tables (5)"
    )
    parser.add_argument(
        "--ha-scenario",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="submit a group, checkpoint it, kill one simulated agent, show the restart and "
        "bring the node back (default: on)",
    )
    parser.add_argument(
        "--ha-delay",
        type=_positive_float,
        default=HA_DELAY_S,
        metavar="SECONDS",
        help=f"start the HA act this long after everything is up ({HA_DELAY_S:g})",
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value
