"""CP-SAT large-neighbourhood search: re-place the processes of a few machines exactly.

A neighbourhood is a set of machines and the processes on them that may move among those
machines; everything else stays put and enters the model as constants (usage, held transient
usage, the locations and neighbourhoods each service already covers, the moved counts). The
submodel states every rule and the whole objective restricted to those machines, is hinted with
the current assignment, and its answer is applied and re-checked by the incremental state, so
an LNS step never makes the assignment worse or infeasible.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model
from vmgrid.solver.roadef.instance import IntArray
from vmgrid.solver.roadef.state import AssignmentState


@dataclass(frozen=True)
class Neighbourhood:
    machines: tuple[int, ...]
    processes: tuple[int, ...]
    kind: str
    capped: bool = False
    """Its machines hold more processes than it frees (a sample was taken)."""
    domains: tuple[tuple[int, ...], ...] | None = None
    """Per process (in the order of `processes`), the machines it may take, its own among them;
    None: every machine of the neighbourhood. `machines` must hold every machine named here."""


def _frozen_counts(state: AssignmentState, free: list[int]) -> dict[str, IntArray]:
    """Usage and counts without the free processes (the constants of the submodel)."""
    inst = state.inst
    f = np.array(free, dtype=np.int64)
    cur = state.x[f]
    home = state.initial[f]
    used = state.used.copy()
    np.subtract.at(used, cur, inst.requirement[f])
    held = state.held.copy()
    away = cur != home
    np.subtract.at(held, cur, inst.requirement[f])
    np.subtract.at(held, home[away], inst.requirement[f][away])
    return {"used": used, "held": held}


def solve_neighbourhood(
    state: AssignmentState, hood: Neighbourhood, time_limit: float, workers: int, seed: int
) -> tuple[int, bool]:
    """Re-place `hood.processes` on `hood.machines`; return the gain and whether CP-SAT proved
    the neighbourhood optimal (the caller grows neighbourhoods that solve to optimality)."""
    inst = state.inst
    machines = list(hood.machines)
    free = list(hood.processes)
    if not free or len(machines) < 2:
        return 0, True
    frozen = _frozen_counts(state, free)
    model = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    f_services: dict[int, list[int]] = defaultdict(list)
    for p in free:
        f_services[int(inst.service[p])].append(p)
    allowed = hood.domains or (hood.machines,) * len(free)
    for p, domain in zip(free, allowed, strict=True):
        s = int(inst.service[p])
        choices = []
        for m in domain:
            others = int(state.on_machine[s, m]) - sum(
                1 for q in f_services[s] if int(state.x[q]) == m
            )
            if others == 0:
                var = model.new_bool_var(f"x{p}_{m}")
                x[p, m] = var
                choices.append(var)
                model.add_hint(var, int(state.x[p]) == m)
        model.add_exactly_one(choices)
    for procs in f_services.values():
        if len(procs) > 1:
            for m in machines:
                vs = [x[p, m] for p in procs if (p, m) in x]
                if len(vs) > 1:
                    model.add_at_most_one(vs)
    objective: list[cp_model.LinearExprT] = []
    req = inst.requirement
    # What the free processes whose home a machine is hold there wherever they go.
    at_home = np.zeros((inst.machines, inst.resources), dtype=np.int64)
    np.add.at(at_home, state.initial[free], req[free])
    for m in machines:
        on_m = [(p, x[p, m]) for p in free if (p, m) in x]
        for r in range(inst.resources):
            use = int(frozen["used"][m, r]) + sum(int(req[p, r]) * v for p, v in on_m)
            model.add(use <= int(inst.capacity[m, r]))
            if inst.transient[r]:
                held = (
                    int(frozen["held"][m, r])
                    + int(at_home[m, r])
                    + sum(int(req[p, r]) * v for p, v in on_m if int(state.initial[p]) != m)
                )
                model.add(held <= int(inst.capacity[m, r]))
            if inst.load_weight[r]:
                over = model.new_int_var(0, int(inst.capacity[m, r]), f"over{m}_{r}")
                model.add(over >= use - int(inst.safety[m, r]))
                objective.append(int(inst.load_weight[r]) * over)
        for b in inst.balances:
            if b.weight == 0:
                continue
            free_r1 = int(inst.capacity[m, b.r1]) - (
                int(frozen["used"][m, b.r1]) + sum(int(req[p, b.r1]) * v for p, v in on_m)
            )
            free_r2 = int(inst.capacity[m, b.r2]) - (
                int(frozen["used"][m, b.r2]) + sum(int(req[p, b.r2]) * v for p, v in on_m)
            )
            bound = b.target * int(inst.capacity[m, b.r1]) + 1
            short = model.new_int_var(0, bound, f"short{m}_{b.r1}_{b.r2}")
            model.add(short >= b.target * free_r1 - free_r2)
            objective.append(b.weight * short)
    pmc, mmc = inst.process_move_cost, inst.machine_move_cost
    for (p, m), v in x.items():
        home = int(state.initial[p])
        coeff = inst.weight_machine_move * int(mmc[home, m])
        if m != home:
            coeff += inst.weight_process_move * int(pmc[p])
        if coeff:
            objective.append(coeff * v)
    _post_spread(state, model, x, f_services, machines)
    _post_dependencies(state, model, x, f_services, machines)
    if inst.weight_service_move:
        _post_service_move(state, model, x, f_services, objective)
    model.minimize(sum(objective))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    proven = status == cp_model.OPTIMAL
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return 0, False
    target = {p: m for (p, m), v in x.items() if solver.boolean_value(v)}
    return _apply(state, target, set(machines), set(f_services)), proven


def _apply(
    state: AssignmentState, target: dict[int, int], machines: set[int], services: set[int]
) -> int:
    """Move to the submodel's answer; keep it only if the exact state agrees it is better."""
    inst = state.inst
    before = state.total
    old = {p: int(state.x[p]) for p in target}
    changed = [p for p, m in target.items() if old[p] != m]
    if not changed:
        return 0
    for p in changed:
        state.move(p, target[p])
    zones = {int(inst.neighborhood[m]) for m in machines}
    if state.total < before and state.feasible_after(machines, services, zones):
        return before - state.total
    for p in changed:
        state.move(p, old[p])
    return 0


def _post_spread(
    state: AssignmentState,
    model: cp_model.CpModel,
    x: dict[tuple[int, int], cp_model.IntVar],
    f_services: dict[int, list[int]],
    machines: list[int],
) -> None:
    inst = state.inst
    for s, procs in f_services.items():
        need = int(inst.spread_min[s])
        if need <= 1:
            continue
        fixed = state.in_location[s].copy()
        for p in procs:
            fixed[inst.location[state.x[p]]] -= 1
        covered = int((fixed > 0).sum())
        if covered >= need:
            continue
        per_loc: dict[int, list[cp_model.IntVar]] = defaultdict(list)
        for p in procs:
            for m in machines:
                if (p, m) in x and fixed[inst.location[m]] == 0:
                    per_loc[int(inst.location[m])].append(x[p, m])
        present = []
        for loc, vs in per_loc.items():
            y = model.new_bool_var(f"loc{s}_{loc}")
            model.add(y <= sum(vs))
            present.append(y)
        model.add(covered + sum(present) >= need)


def _post_dependencies(
    state: AssignmentState,
    model: cp_model.CpModel,
    x: dict[tuple[int, int], cp_model.IntVar],
    f_services: dict[int, list[int]],
    machines: list[int],
) -> None:
    inst = state.inst
    zones = sorted({int(inst.neighborhood[m]) for m in machines})
    cache: dict[tuple[int, int], cp_model.IntVar | bool] = {}

    def presence(s: int, n: int) -> cp_model.IntVar | bool:
        if (s, n) in cache:
            return cache[s, n]
        procs = f_services.get(s, [])
        fixed = int(state.in_zone[s, n]) - sum(
            1 for p in procs if inst.neighborhood[state.x[p]] == n
        )
        vs = [x[p, m] for p in procs for m in machines if (p, m) in x and inst.neighborhood[m] == n]
        result: cp_model.IntVar | bool
        if fixed > 0:
            result = True
        elif not vs:
            result = False
        else:
            result = model.new_bool_var(f"zone{s}_{n}")
            model.add_max_equality(result, vs)
        cache[s, n] = result
        return result

    for s in f_services:
        pairs = [(s, s2) for s2 in inst.dependencies[s]] + [(s1, s) for s1 in state.dependents[s]]
        for a, b in pairs:
            for n in zones:
                pa, pb = presence(a, n), presence(b, n)
                if pa is False or pb is True:
                    continue
                if pb is False:
                    model.add(pa == 0)  # type: ignore[arg-type]
                elif pa is True:
                    model.add(pb == 1)  # type: ignore[arg-type]
                else:
                    model.add_implication(pa, pb)  # type: ignore[arg-type]


def _post_service_move(
    state: AssignmentState,
    model: cp_model.CpModel,
    x: dict[tuple[int, int], cp_model.IntVar],
    f_services: dict[int, list[int]],
    objective: list[cp_model.LinearExprT],
) -> None:
    inst = state.inst
    counts = state.moved_count.copy()
    for s, procs in f_services.items():
        counts[s] -= sum(1 for p in procs if state.x[p] != state.initial[p])
    others = np.delete(counts, list(f_services))
    floor = int(others.max()) if others.size else 0
    top = model.new_int_var(floor, inst.processes, "service_move")
    for s, procs in f_services.items():
        moved = [
            1 - x[p, int(state.initial[p])] if (p, int(state.initial[p])) in x else 1 for p in procs
        ]
        model.add(top >= int(counts[s]) + sum(moved))
    objective.append(inst.weight_service_move * top)
