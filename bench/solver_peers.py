"""`vmgrid-bench solver-peers`: vmgrid's solver and its peers on the same instances, in one run.

``vmgrid-bench solver-peers INSTANCE... [--slice-nodes N] [--timeout S] --json`` solves each
BtrPlace instance (cut to about N nodes with `--slice-nodes`, since the peers' dense models do
not reach 5,000 nodes) with:

- ``vmgrid``: `vmgrid.solver.api.solve` (heuristic, repair, CP-SAT within the budget);
- ``proxlb``: ProxLB's CP-SAT solver (`proxlb-solver` from PyPI), run in its own environment
  under build/peers through `peer_drivers/proxlb_driver.py`;
- ``watcher``: OpenStack Watcher's own strategy code (`python-watcher` from PyPI), run in its
  own environment through `peer_drivers/watcher_driver.py`;
- ``watcher-like``: vmgrid's re-implementation of Watcher's greedy (evict from overloaded or
  leaving nodes, re-place where most room is), `heuristic="greedy"` without CP-SAT.

Every answer is replayed by vmgrid's independent validator (`vmgrid.solver.validate`) and costed
the same way: nodes used at the end, migrations, wall time (the peers' include their process
start and import, reported apart). A peer that cannot be installed or driven is reported with
the reason instead of figures. The last line is one JSON object: per instance, per solver.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from vmgrid.bench.peers_env import DRIVERS, PEERS, Peer, PeerUnavailable, ensure
from vmgrid.bench.peers_io import actions_from_steps, final_hosts, peer_input
from vmgrid.bench.peers_slice import slice_instance
from vmgrid.solver.api import SolveOptions, SolveResult, solve
from vmgrid.solver.btrplace.instance import BtrInstance, Online
from vmgrid.solver.btrplace.problem import to_problem
from vmgrid.solver.btrplace.reader import load_instance
from vmgrid.solver.cpsat import CpsatOptions
from vmgrid.solver.plan import Action, ActionKind
from vmgrid.solver.validate import validate

SOLVERS = ("vmgrid", "proxlb", "watcher", "watcher-like")
CONSOLIDATE = "consolidation>migrations"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("instances", nargs="+", help="BtrPlace instance files (.json[.gz])")
    parser.add_argument(
        "--slice-nodes",
        type=int,
        default=0,
        help="cut each instance to about N nodes spread over its ids (default 0: whole)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="budget per solver and instance (default 30)"
    )
    parser.add_argument(
        "--consolidate",
        action="store_true",
        help="compare on consolidation: drop the instance's rules that keep online nodes online "
        "(for every solver and the validator) and give vmgrid the objective "
        f"{CONSOLIDATE!r} instead of the instance's (BtrPlace's minimizeMTTR)",
    )
    parser.add_argument(
        "--solvers",
        default=",".join(SOLVERS),
        help=f"comma-separated subset of {','.join(SOLVERS)} (default all)",
    )


def _progress(message: str) -> None:
    print(f"[solver-peers] {message}", file=sys.stderr, flush=True)


def _cost(instance: BtrInstance, actions: list[Action], hosts: dict[str, str]) -> dict[str, Any]:
    violations = validate(instance.source, actions, instance.constraints, instance.demands)
    migrations = sum(1 for a in actions if a.kind is ActionKind.MIGRATE)
    return {
        "valid": not violations,
        "violations": len(violations),
        "first_violations": [v.message for v in violations[:3]],
        "nodes_used": len(set(hosts.values())),
        "migrations": migrations,
    }


def _vmgrid(
    instance: BtrInstance, timeout: float, greedy_only: bool, objective: str | None
) -> dict[str, Any]:
    t0 = time.perf_counter()
    if greedy_only:
        options = SolveOptions(use_cpsat=False, heuristic="greedy")
    else:
        cp = CpsatOptions(time_limit_s=timeout, num_workers=2)
        options = SolveOptions(cpsat=cp, time_limit_s=timeout)
    problem = to_problem(instance)
    if objective:
        problem = replace(problem, objective=objective)
    result: SolveResult = solve(problem, options)
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"status": result.status, "wall_s": round(wall, 3)}
    if result.plan is None or result.dst is None:
        return out | {"valid": False, "note": f"no plan ({result.status})"}
    dst = result.dst
    hosts = {v: vm.host for v, vm in dst.vms.items() if vm.running and vm.host is not None}
    return out | _cost(instance, list(result.plan.actions), hosts)


def _peer(peer: Peer, instance: BtrInstance, timeout: float) -> dict[str, Any]:
    try:
        python = ensure(peer)
    except PeerUnavailable as exc:
        return {"status": "unavailable", "valid": False, "note": str(exc)}
    problem = peer_input(instance, timeout)
    t0 = time.perf_counter()
    try:
        done = subprocess.run(
            [str(python), str(DRIVERS / peer.driver)],
            input=json.dumps(problem),
            capture_output=True,
            text=True,
            timeout=timeout * 3 + 60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "valid": False, "note": f"no answer in {timeout * 3 + 60}s"}
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {
            "status": "error",
            "valid": False,
            "wall_s": round(wall, 3),
            "note": lines[-1] if lines else f"exit status {done.returncode}",
        }
    answer = json.loads(done.stdout)
    out: dict[str, Any] = {
        "status": answer["status"],
        "wall_s": round(wall, 3),
        "peer_timings": answer.get("timings", {}),
        "version": answer.get("version"),
    }
    if answer.get("note"):
        out["note"] = answer["note"]
    if not answer.get("feasible"):
        return out | {"valid": False, "note": answer.get("note") or "no placement"}
    actions = actions_from_steps(instance, answer["steps"])
    hosts = final_hosts(instance, answer["placements"])
    running = {v for v in hosts if instance.source.vms[v].running or v in answer["placements"]}
    return out | _cost(instance, actions, {v: h for v, h in hosts.items() if v in running})


def _without_keep_online(instance: BtrInstance) -> BtrInstance:
    """`instance` without its `online` rules on nodes that are online already."""
    src = instance.source
    kept = tuple(
        c for c in instance.constraints if not (isinstance(c, Online) and src.nodes[c.node].online)
    )
    return replace(instance, name=f"{instance.name}/consolidate", constraints=kept)


def _ratios(row: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    def ratio(key: str) -> float | None:
        mine, theirs = row.get(key), base.get(key)
        if mine is None or theirs is None or not row.get("valid") or not base.get("valid"):
            return None
        return round(mine / theirs, 3) if theirs else (1.0 if mine == theirs else None)

    return {f"{k}_ratio": ratio(k) for k in ("nodes_used", "migrations", "wall_s")}


def _line(name: str, row: dict[str, Any]) -> str:
    if "nodes_used" not in row:
        return f"  {name:<13} {row['status']}: {row.get('note', '')}"
    return (
        f"  {name:<13} valid={row['valid']} nodes={row['nodes_used']} "
        f"migrations={row['migrations']} wall={row['wall_s']}s {row.get('note', '')}"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.timeout <= 0:
        raise ValueError(f"--timeout {args.timeout}: must be a positive number of seconds")
    if args.slice_nodes < 0:
        raise ValueError(f"--slice-nodes {args.slice_nodes}: must be >= 0")
    chosen = [s.strip() for s in args.solvers.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SOLVERS]
    if unknown or not chosen:
        raise ValueError(f"--solvers {args.solvers!r}: choose among {', '.join(SOLVERS)}")
    results = []
    for path in args.instances:
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: no such instance file")
        instance = load_instance(path)
        if args.slice_nodes:
            instance = slice_instance(instance, args.slice_nodes)
        if args.consolidate:
            instance = _without_keep_online(instance)
        src = instance.source
        _progress(f"{instance.name}: {len(src.nodes)} nodes, {len(src.vms)} VMs")
        rows: dict[str, dict[str, Any]] = {}
        for name in chosen:
            if name in ("vmgrid", "watcher-like"):
                greedy = name == "watcher-like"
                objective = CONSOLIDATE if args.consolidate else None
                rows[name] = _vmgrid(instance, args.timeout, greedy, objective)
                if name == "watcher-like":
                    rows[name]["note"] = "vmgrid's re-implementation of Watcher's greedy"
            else:
                rows[name] = _peer(PEERS[name], instance, args.timeout)
            _progress(_line(name, rows[name]))
        base = rows.get("vmgrid", {})
        for name, row in rows.items():
            if name != "vmgrid" and base:
                row |= _ratios(row, base)
        results.append(
            {"instance": instance.name, "nodes": len(src.nodes), "vms": len(src.vms), **rows}
        )
    return {
        "benchmark": "solver-peers",
        "timeout_s": args.timeout,
        "slice_nodes": args.slice_nodes,
        "solvers": chosen,
        "consolidate": args.consolidate,
        "peers": {p.name: {"requirement": p.requirement, "what": p.what} for p in PEERS.values()},
        "instances": results,
        "command": " ".join(["vmgrid-bench", "solver-peers", *sys.argv[2:]]),
    }
