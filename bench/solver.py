"""`vmgrid-bench solver`: reconfigure a BtrPlace instance and check the plan independently.

``vmgrid-bench solver INSTANCE [--timeout S] [--plan-out FILE] --json`` reads the instance,
solves it (heuristic, then CP-SAT within the time left), exports the plan with the instance's
ids, replays it through `vmgrid.solver.validate`, and runs the heuristic alone as a baseline.
``--generate nodes=N,vms=M,seed=S`` instead places M ready VMs on N empty nodes and compares the
nodes used with the bin-packing lower bound and with first-fit decreasing.

`wall_s` runs from the start of parsing to the exported plan; validation and the baseline are
timed apart so that the target (a valid plan in 15 s, parsing included) reads directly. `cpu_s`
is this process's CPU time over the same span (all threads): on a shared, loaded machine it says
how much work the run took when `wall_s` also counts the waiting.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from vmgrid.solver.api import SolveOptions, SolveResult, solve
from vmgrid.solver.btrplace.bounds import min_migrations
from vmgrid.solver.btrplace.generate import (
    consolidation_instance,
    packing_lower_bound,
    parse_spec,
)
from vmgrid.solver.btrplace.instance import BtrInstance
from vmgrid.solver.btrplace.plan_io import write_plan
from vmgrid.solver.btrplace.problem import to_problem
from vmgrid.solver.btrplace.reader import load_instance
from vmgrid.solver.cpsat import CpsatOptions
from vmgrid.solver.lns import LnsOptions
from vmgrid.solver.objectives import parse
from vmgrid.solver.validate import Violation, validate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("instance", nargs="?", help="BtrPlace instance file (.json or .json.gz)")
    parser.add_argument(
        "--generate",
        metavar="SPEC",
        help="nodes=N,vms=M,seed=S: consolidation from scratch instead of an INSTANCE",
    )
    parser.add_argument(
        "--timeout", type=float, default=25.0, help="wall budget in seconds (default 25)"
    )
    parser.add_argument("--plan-out", type=Path, help="write the plan as JSON to this file")
    parser.add_argument("--workers", type=int, default=2, help="CP-SAT workers (default 2)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the heuristic baseline")
    parser.add_argument(
        "--objective",
        help="solve for this objective instead of the instance's (e.g. consolidation>migrations)",
    )
    parser.add_argument(
        "--no-lns",
        action="store_true",
        help="no large-neighbourhood search over the heuristic's answer (the previous behaviour)",
    )
    parser.add_argument(
        "--acceptable-gap",
        type=float,
        default=0.0,
        help="keep the heuristic's answer without CP-SAT within this relative gap of the "
        "objective's lower bound (default 0: search until proven or out of time)",
    )


def _progress(message: str) -> None:
    print(f"[solver] {message}", file=sys.stderr, flush=True)


def _max_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _check(instance: BtrInstance, result: SolveResult) -> list[Violation]:
    if result.plan is None:
        return [Violation("no-plan", f"solver returned {result.status}")]
    actions = result.plan.actions
    return validate(instance.source, actions, instance.constraints, instance.demands)


def _load(args: argparse.Namespace) -> BtrInstance:
    if args.generate:
        return consolidation_instance(**parse_spec(args.generate))
    if not args.instance:
        raise ValueError("give an INSTANCE file or --generate nodes=N,vms=M,seed=S")
    return load_instance(args.instance)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.timeout <= 0:
        raise ValueError(f"--timeout {args.timeout}: must be a positive number of seconds")
    if args.acceptable_gap < 0:
        raise ValueError(f"--acceptable-gap {args.acceptable_gap}: must be a fraction >= 0")
    t0 = time.perf_counter()
    c0 = time.process_time()
    instance = _load(args)
    t_parse = time.perf_counter()
    problem = to_problem(instance)
    if args.objective:
        parse(args.objective)
        problem = replace(problem, objective=args.objective)
    t_model = time.perf_counter()
    src = instance.source
    _progress(
        f"{instance.name}: {len(src.nodes)} nodes, {len(src.vms)} VMs, read in "
        f"{t_parse - t0:.2f}s, model in {t_model - t_parse:.2f}s"
    )
    options = SolveOptions(
        cpsat=CpsatOptions(time_limit_s=args.timeout, num_workers=args.workers),
        time_limit_s=args.timeout - (t_model - t0),
        acceptable_gap=args.acceptable_gap,
        lns=LnsOptions(enabled=not args.no_lns),
    )
    result = solve(problem, options)
    t_solve = time.perf_counter()
    if args.plan_out and result.plan is not None:
        write_plan(args.plan_out, result.plan.actions)
    t_done = time.perf_counter()
    cpu_s = time.process_time() - c0
    _progress(f"{result.status} in {t_solve - t_model:.2f}s ({result.stats.source}); validating")
    violations = _check(instance, result)
    t_valid = time.perf_counter()
    for v in violations[:5]:
        _progress(f"violation: {v.message}")
    stats = result.stats
    lns_s = float(stats.lns.get("wall_s", 0.0))  # type: ignore[arg-type]
    out: dict[str, Any] = {
        "instance": instance.name,
        "nodes": len(src.nodes),
        "vms": len(src.vms),
        "status": result.status,
        "objective": problem.objective,
        "solve_s": round(t_solve - t_model, 3),
        "wall_s": round(t_done - t0, 3),
        "cpu_s": round(cpu_s, 3),
        "max_rss_mb": 0.0,
        "migrations": result.plan.migrations if result.plan else 0,
        "mttr": result.plan.mttr_s if result.plan else None,
        "valid": not violations,
    }
    if result.dst is not None:
        out["nodes_used"] = len(result.dst.used_nodes())
    if args.generate:
        out |= _consolidation_figures(instance, result)
    else:
        lower = min_migrations(instance)
        ratio = out["migrations"] / lower if lower else None
        out |= {"min_migrations": lower, "migrations_ratio": ratio and round(ratio, 4)}
    out |= {
        "violations": len(violations),
        "first_violations": [v.message for v in violations[:3]],
        "conflicts": list(result.conflicts[:10]),
        "source": stats.source,
        "cpsat_status": stats.cpsat_status,
        "cpsat_note": stats.cpsat_note,
        "plan_note": stats.plan_note,
        "lns": stats.lns,
        "makespan_s": stats.makespan_s,
        "timings": {
            "parse_s": round(t_parse - t0, 3),
            "model_s": round(t_model - t_parse, 3),
            "heuristic_s": stats.heuristic_s,
            "cpsat_s": stats.cpsat_s,
            "cpsat_build_s": stats.cpsat_build_s,
            "lns_s": lns_s,
            "plan_and_rest_s": round(
                t_solve - t_model - stats.heuristic_s - stats.cpsat_s - lns_s, 3
            ),
            "export_s": round(t_done - t_solve, 3),
            "validate_s": round(t_valid - t_done, 3),
        },
        "command": " ".join(["vmgrid-bench", "solver", *sys.argv[2:]]),
    }
    if not args.no_baseline:
        consolidating = args.generate is not None or "consolidation" in (args.objective or "")
        out["baseline"] = _baseline(instance, consolidating, args.objective)
    out["max_rss_mb"] = _max_rss_mb()
    return out


def _baseline(instance: BtrInstance, consolidating: bool, objective: str | None) -> dict[str, Any]:
    algorithm = "ffd" if consolidating else "greedy"
    _progress(f"baseline: {algorithm} heuristic alone")
    t0 = time.perf_counter()
    problem = to_problem(instance)
    if objective:
        problem = replace(problem, objective=objective)
    result = solve(problem, SolveOptions(use_cpsat=False, heuristic=algorithm))
    out: dict[str, Any] = {
        "algorithm": "first-fit-decreasing" if consolidating else "greedy-repair",
        "migrations": result.plan.migrations if result.plan else 0,
        "valid": not _check(instance, result),
        "solve_s": round(time.perf_counter() - t0, 3),
    }
    if result.dst is not None:
        out["nodes_used"] = len(result.dst.used_nodes())
    return out


def _consolidation_figures(instance: BtrInstance, result: SolveResult) -> dict[str, Any]:
    lower = packing_lower_bound(instance)
    used = len(result.dst.used_nodes()) if result.dst is not None else None
    gap = round(100 * (used - lower) / lower, 2) if used is not None and lower else None
    return {"nodes_used": used, "nodes_lower_bound": lower, "gap_pct": gap}
