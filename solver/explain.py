"""Why: a reason for every moved VM, and a small conflicting set for an infeasible problem."""

from __future__ import annotations

import numpy as np
from vmgrid.solver.constraints import Preserve
from vmgrid.solver.cpsat import CpsatOptions, build_and_solve
from vmgrid.solver.heuristics import Placer
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


def unary_conflicts(prep: Prepared) -> list[str]:
    """VMs that must run but fit on no node they may use, each a proof of infeasibility on its
    own: the labels of the rules that set the VM's demand or narrow its nodes, then a sentence
    naming the VM, the resource, what it needs and the best node's capacity."""
    placer = Placer(prep, {})
    out = []
    for name, state in prep.vm_state.items():
        if state is not VMState.RUNNING:
            continue
        host = prep.src.vms[name].host
        if name in prep.pinned and host is not None:
            usable = np.zeros(len(placer.nodes), dtype=bool)
            usable[placer.index[host]] = True
        else:
            usable = placer._allowed_mask(name) & ~placer.forbidden
            if host is not None and prep.may_host(name, host):
                usable[placer.index[host]] = True
        if not usable.any():
            out += _rules_of(prep, name)
            out.append(f"VM {name}: no online node is allowed for it{_narrowing(prep, name)}")
            continue
        vec = placer.vec(name)
        short = placer.cap[usable] < vec
        if not np.all(short.any(axis=1)):
            continue
        r = int(np.argmax(short.all(axis=0))) if short.all(axis=0).any() else int(short.argmax())
        rc = placer.res[r]
        caps = np.where(usable, placer.cap[:, r], -1)
        best = placer.nodes[int(np.argmax(caps))]
        out += _rules_of(prep, name)
        out.append(
            f"VM {name} needs {rc} {int(vec[r])}{_narrowing(prep, name)}; no node it may use "
            f"offers that (best: node {best} with {prep.src.nodes[best].cap(rc)} {rc})"
        )
    return list(dict.fromkeys(out))


def _rules_of(prep: Prepared, vm: str) -> list[str]:
    """The rules that set `vm`'s demand or narrow its nodes."""
    return [
        c.label()
        for c in prep.problem.constraints
        if vm in c.vms_in_scope()
        and (isinstance(c, Preserve) or c.allowed(prep.src) is not None or c.fixed_vms(prep.src))
    ]


def _narrowing(prep: Prepared, vm: str) -> str:
    names = _rules_of(prep, vm)
    if vm in prep.pinned:
        names.append("pinned on its host")
    return f" ({', '.join(names[:4])})" if names else ""
