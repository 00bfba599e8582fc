"""`vmgrid-bench grid`: inter-cluster planning on a generated grid of clusters.

Generates a seeded grid (topology and cluster summaries, not timed), times ``plan_grid`` and
re-checks the schedule with the independent ``find_oversubscriptions``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from vmgrid.solver.grid import GridError, PlannerConfig, find_oversubscriptions, plan_grid
from vmgrid.solver.grid.generate import GridShape, generate_grid


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clusters", type=int, default=100, help="clusters in the grid")
    parser.add_argument("--nodes-per-cluster", type=int, default=100, help="nodes per cluster")
    parser.add_argument("--vms-per-node", type=int, default=10, help="VMs per node")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated grid")
    parser.add_argument(
        "--max-migration-mbps", type=int, default=1000, help="bandwidth one migration may use"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    try:
        shape = GridShape(
            clusters=args.clusters,
            nodes_per_cluster=args.nodes_per_cluster,
            vms_per_node=args.vms_per_node,
        )
        config = PlannerConfig(max_migration_mbps=args.max_migration_mbps)
    except GridError as exc:
        raise ValueError(str(exc)) from exc
    began = time.perf_counter()
    grid = generate_grid(shape, seed=args.seed)
    print(f"generated {grid.vm_count} VMs in {time.perf_counter() - began:.2f} s", file=sys.stderr)
    began = time.perf_counter()
    plan = plan_grid(grid.topology, grid.summaries, config)
    plan_s = time.perf_counter() - began
    oversubscribed = find_oversubscriptions(plan.moves, grid.topology)
    stats = plan.stats
    print(
        f"overloaded {stats.overloaded}, relieved {stats.relieved}, groups gathered "
        f"{stats.groups_gathered}, consolidated {stats.consolidated}, makespan "
        f"{stats.makespan_s:.0f} s",
        file=sys.stderr,
    )
    return {
        "clusters": shape.clusters,
        "nodes": shape.clusters * shape.nodes_per_cluster,
        "vms": grid.vm_count,
        "plan_s": round(plan_s, 3),
        "moves": len(plan.moves),
        "link_oversubscribed": len({o.link for o in oversubscribed}),
    }
