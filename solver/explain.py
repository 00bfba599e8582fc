"""Why: a reason for every moved VM, and a small conflicting set for an infeasible problem."""

from __future__ import annotations

from vmgrid.solver.cpsat import CpsatOptions, build_and_solve
from vmgrid.solver.model import Model, VMState
from vmgrid.solver.problem import Prepared


def move_reasons(prep: Prepared, dst: Model, known: dict[str, str]) -> dict[str, str]:
    """A sentence per VM whose host or state changes, most specific cause first."""
    src = prep.src
    over: dict[str, list[str]] = {}
    for node in src.nodes:
        hosted = [v for v in src.running_on(node) if prep.vm_state[v] is VMState.RUNNING]
        for rc in src.resources:
            need = sum(prep.demand[v].get(rc, 0) for v in hosted)
            if need > src.nodes[node].cap(rc):
                over.setdefault(node, []).append(rc)
    out = {}
    for name, vm in src.vms.items():
        new = dst.vms[name]
        if new.host == vm.host and new.state is vm.state:
            continue
        if name in prep.reasons:
            out[name] = prep.reasons[name]
        elif vm.host in over:
            out[name] = f"node {vm.host} over capacity on {', '.join(over[vm.host])}"
        elif name in known:
            out[name] = known[name]
        elif "consolidation" in prep.problem.objective:
            out[name] = f"consolidation gain: frees node {vm.host}"
        else:
            out[name] = f"objective {prep.problem.objective}: cheaper placement"
    return out


def conflicting_constraints(prep: Prepared, time_limit_s: float = 10.0) -> list[str]:
    """Labels of constraints that together admit no destination (empty if none found in time).

    Every VM is freed and each constraint gets an enforcement literal passed as an assumption;
    CP-SAT's sufficient assumptions for infeasibility are the conflicting set.
    """
    result = build_and_solve(prep, {}, CpsatOptions(time_limit_s=time_limit_s), explain=True)
    return result.core
