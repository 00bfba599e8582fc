"""`vmgrid-bench replay`: replay a PlanetLab day through a consolidation policy.

Simulated hosts with CloudSim's semantics (see ``vmgrid.solver.replay``); no gRPC, no libvirt.
The result line has the fields issue #8 fixes: trace, policy, vms, hosts, energy_kwh, slatah,
pdm, slav, esv, migrations, replay_s; then the unmet CPU demand sampled every ``--sample-s``
seconds: sample_s, demand_cpu_s, unmet_cpu_s, unmet_share, unmet_migration_cpu_s (VM
core-seconds; see docs/replay.md).
"""

from __future__ import annotations

import argparse
import sys

from vmgrid.solver.replay import POLICY_NAMES, make_policy, replay_day


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trace", required=True, help="a PlanetLab day folder (one file per VM)")
    parser.add_argument(
        "--policy", default="vmgrid", help=f"one of: {', '.join(POLICY_NAMES)} (default vmgrid)"
    )
    parser.add_argument("--hosts", type=int, default=800, help="simulated hosts (default 800)")
    parser.add_argument("--steps", type=int, default=None, help="replay only the first N intervals")
    parser.add_argument(
        "--sample-s",
        type=float,
        default=10.0,
        help="sampling period of the unmet CPU demand, seconds (default 10)",
    )


def run(args: argparse.Namespace) -> dict[str, object]:
    policy = make_policy(args.policy)
    print(f"replaying {args.trace} with {args.policy} on {args.hosts} hosts", file=sys.stderr)
    result = replay_day(
        args.trace, policy, hosts=args.hosts, steps=args.steps, sample_s=args.sample_s
    )
    return result.as_json()
