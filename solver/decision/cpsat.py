"""Focused CP-SAT models for one decision cycle: relieve overloaded hosts, drain light hosts.

Each model holds only the hosts and VMs in play, takes the greedy plan as a complete hint, and
runs under a deterministic time budget with few workers, so that a cycle's answer is reproducible
and bounded. CPU is in integer millicores; costs are in migration-seconds-like units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ortools.sat.python import cp_model


@dataclass(frozen=True)
class Budget:
    """Solver limits for one model."""

    deterministic_s: float
    workers: int


def _solver(budget: Budget) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = budget.deterministic_s
    solver.parameters.num_workers = budget.workers
    solver.parameters.random_seed = 0
    return solver


def drain(
    groups: Sequence[Sequence[int]],
    group_host: Sequence[int],
    group_value: Sequence[int],
    targets: Sequence[int],
    room: dict[int, int],
    need: dict[int, int],
    fits: Mapping[int, Sequence[int]],
    cost: dict[int, int],
    hint: dict[int, int],
    budget: Budget,
) -> dict[int, int] | None:
    """Choose which candidate hosts to empty and where their VMs go.

    ``groups[i]`` are the VMs of candidate host ``group_host[i]``; emptying it is worth
    ``group_value[i]``. A candidate that is emptied receives nothing. ``room[h]`` is the CPU a
    target may still take, ``fits[v]`` the targets VM ``v`` may go to. Returns VM -> host for
    the VMs that move, or None when the solver found nothing.
    """
    m = cp_model.CpModel()
    drained = [m.new_bool_var(f"d{i}") for i in range(len(groups))]
    by_host: dict[int, int] = {h: i for i, h in enumerate(group_host)}
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    into: dict[int, list[tuple[int, cp_model.IntVar]]] = {h: [] for h in targets}
    for i, vms in enumerate(groups):
        for v in vms:
            lits = []
            for h in fits[v]:
                if h == group_host[i]:
                    continue
                lit = m.new_bool_var(f"x{v}_{h}")
                x[v, h] = lit
                lits.append(lit)
                into[h].append((v, lit))
                m.add_hint(lit, hint.get(v) == h)
            m.add(sum(lits) == drained[i])
        m.add_hint(drained[i], all(v in hint for v in vms))
    for h, items in into.items():
        if not items:
            continue
        m.add(sum(need[v] * lit for v, lit in items) <= room[h])
        if h in by_host:
            for _, lit in items:
                m.add_implication(lit, drained[by_host[h]].Not())
    m.maximize(
        sum(val * d for val, d in zip(group_value, drained, strict=True))
        - sum(cost[v] * lit for (v, _), lit in x.items())
    )
    solver = _solver(budget)
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return {v: h for (v, h), lit in x.items() if solver.boolean_value(lit)}


def relieve(
    sources: Sequence[int],
    source_vms: Mapping[int, Sequence[int]],
    excess: dict[int, int],
    must_move: set[int],
    demand: dict[int, int],
    need: dict[int, int],
    fits: Mapping[int, Sequence[int]],
    room: dict[int, int],
    wake_cost: dict[int, int],
    cost: dict[int, int],
    hint: dict[int, int],
    budget: Budget,
) -> dict[int, int] | None:
    """Move VMs off overloaded hosts at least cost: each source must shed ``excess[s]`` demand
    (softly, at a high price per millicore left), VMs in ``must_move`` (above the host's
    per-VM limit) must leave, targets keep within ``room``, sleeping targets cost
    ``wake_cost`` to use."""
    m = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    into: dict[int, list[tuple[int, cp_model.IntVar]]] = {h: [] for h in room}
    penalties = []
    for s in sources:
        shed: list[Any] = []
        for v in source_vms[s]:
            lits = []
            for h in fits[v]:
                lit = m.new_bool_var(f"x{v}_{h}")
                x[v, h] = lit
                lits.append(lit)
                into[h].append((v, lit))
                m.add_hint(lit, hint.get(v) == h)
            if lits:
                m.add(sum(lits) <= 1)
                if v in must_move:
                    m.add(sum(lits) == 1)
                shed.extend(demand[v] * lit for lit in lits)
        short = m.new_int_var(0, max(excess[s], 0), f"short{s}")
        m.add(sum(shed) + short >= excess[s])
        penalties.append(short)
    woken = []
    for h, items in into.items():
        if not items:
            continue
        m.add(sum(need[v] * lit for v, lit in items) <= room[h])
        if h in wake_cost:
            on = m.new_bool_var(f"on{h}")
            for _, lit in items:
                m.add_implication(lit, on)
            woken.append(wake_cost[h] * on)
    m.minimize(1000 * sum(penalties) + sum(woken) + sum(cost[v] * lit for (v, _), lit in x.items()))
    solver = _solver(budget)
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return {v: h for (v, h), lit in x.items() if solver.boolean_value(lit)}
