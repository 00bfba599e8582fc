"""Drive ProxLB's CP-SAT solver (`proxlb-solver` from PyPI) on a neutral problem description.

Run by the interpreter of the peer's own environment (build/peers/proxlb), never imported by
vmgrid: ``python proxlb_driver.py < problem.json > answer.json``. It maps the neutral form of
`vmgrid.bench.peers_io` onto proxlb_solver's models (memory in MiB as bytes, CPU as whole
units with no overcommit, every other resource as a storage pool, spread as hard native
anti-affinity, whitelists as pins, nodes to empty as maintenance, a VM to boot as a guest on a
host that is not in the cluster), calls `solve_reachable` with balanciness 1 ("move only for
maintenance or hard rules", the reconfiguration these instances ask for) and prints the
placements, the migration steps of its planner and its own timings.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

MIB = 1024 * 1024


def main() -> int:
    problem: dict[str, Any] = json.load(sys.stdin)
    t0 = time.perf_counter()
    import proxlb_solver as px  # type: ignore[import-not-found]  # the peer's environment only

    t_import = time.perf_counter()
    rcs = problem["resources"]
    memory, cpu, other = rcs["memory"], rcs["cpu"], rcs["other"]
    nodes = [
        px.Node(
            name=n["name"],
            cpu_total=n["capacity"].get(cpu, 0) if cpu else 1,
            memory_total=n["capacity"].get(memory, 0) * MIB if memory else 1 << 50,
            storage_free={rc: n["capacity"].get(rc, 0) * MIB for rc in other},
            maintenance=n["leaving"],
        )
        for n in problem["nodes"]
    ]
    vms = [
        px.VM(
            name=v["name"],
            node=v["host"],
            cpu=v["demand"].get(cpu, 0) if cpu else 0,
            memory=v["demand"].get(memory, 0) * MIB if memory else 0,
            cpu_usage=float(v["demand"].get(cpu, 0)) if cpu else 0.0,
            disks={rc: v["demand"].get(rc, 0) * MIB for rc in other if v["demand"].get(rc, 0)},
        )
        for v in problem["vms"]
    ]
    constraints = px.Constraints(
        anti_affinity=[
            {"name": f"spread{i}", "vms": members, "hard": True, "origin": "pve"}
            for i, members in enumerate(problem["spread"])
        ],
        pin=[{"vm": vm, "nodes": allowed} for vm, allowed in problem["allowed"].items()],
    )
    from proxlb_solver.models import Expect  # type: ignore[import-not-found]

    cluster = px.Cluster(
        name="vmgrid-instance",
        description="converted by vmgrid's solver-peers benchmark",
        balancing=px.Balancing(balanciness=1, cpu_overcommit=1.0),
        nodes=nodes,
        vms=vms,
        constraints=constraints,
        expect=Expect(),
    )
    t_built = time.perf_counter()
    solution, plan = px.solve_reachable(cluster, total_time_limit_s=problem["timeout_s"])
    t_solved = time.perf_counter()
    steps = [[[m.vm, m.source, m.target] for m in step.migrations] for step in plan.steps]
    answer = {
        "status": solution.stats.status,
        "feasible": solution.feasible,
        "path_feasible": solution.path_feasible and plan.path_feasible,
        "placements": solution.placements,
        "steps": steps,
        "temp_moves": len(plan.temp_moves),
        "timings": {
            "import_s": round(t_import - t0, 3),
            "build_s": round(t_built - t_import, 3),
            "solve_s": round(t_solved - t_built, 3),
        },
        "version": px.__version__,
    }
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
