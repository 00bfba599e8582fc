"""Widening repair: when the restricted CP-SAT model fails, free more VMs around the conflict.

Repair mode frees only the VMs with a reason to move, on a few candidate nodes each. That model
may have no solution although the problem has one (a VM leaving an offline node fits nowhere
until another VM is shuffled), or its answer may break a rule the cheap filters did not see.
Each round then frees the VMs hosted on the nodes nearest the conflict (the nodes the
conflicting VMs could use, most room first, and the nodes of the rules they share), offers every
free VM more candidate nodes, and solves again within the budget, until a solution checks, the
budget ends, or the model is full (every VM free on every allowed node), where ``infeasible`` is
a proof.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace

import numpy as np
from vmgrid.solver.cpsat import CpsatOptions, CpsatResult, build_and_solve
from vmgrid.solver.heuristics import Placer
from vmgrid.solver.model import VMState
from vmgrid.solver.problem import Prepared

Checker = Callable[[dict[str, str | None]], list[str]]
"""Labels of the rules a candidate answer (free VM -> node) breaks; empty when it holds."""

FIRST_NODES = 4
"""Nodes freed around the conflict in the first widening round; each round multiplies by 4."""


def widening_search(
    prep: Prepared,
    hint: dict[str, str | None],
    options: CpsatOptions,
    check: Checker,
    migrations_floor: int | None = None,
) -> CpsatResult:
    """The first checked answer of a growing sequence of repair models, or the last failure
    (``infeasible`` only from a full model; `note` says how far the search widened)."""
    deadline = time.perf_counter() + options.time_limit_s
    extra: frozenset[str] = frozenset()
    widen, nodes = 1, FIRST_NODES
    rounds = 0
    while True:
        left = deadline - time.perf_counter()
        round_opts = replace(options, time_limit_s=max(left, 0.0))
        cp = build_and_solve(
            prep, hint, round_opts, migrations_floor=migrations_floor, extra_free=extra, widen=widen
        )
        rounds += 1
        seeds: set[str] = set(cp.freed)
        if cp.status in ("optimal", "feasible"):
            broken = check(cp.hosts)
            if not broken:
                return cp
            cp.status, cp.note = "invalid", f"answer breaks {', '.join(broken[:3])}"
            seeds |= _scope_of(prep, broken)
        if cp.full or cp.status in ("skipped", "unknown"):
            return _noted(cp, rounds)
        if deadline - time.perf_counter() < options.min_search_s:
            return _noted(cp, rounds)
        grown = extra | neighbourhood(prep, seeds, nodes)
        if grown == extra and widen * options.candidates_per_vm >= len(prep.src.nodes):
            return _noted(cp, rounds)
        extra, widen, nodes = frozenset(grown), widen * 4, nodes * 4


def _noted(cp: CpsatResult, rounds: int) -> CpsatResult:
    if rounds > 1:
        scope = "full model" if cp.full else f"{cp.free_vms} VMs free"
        cp.note = "; ".join(filter(None, [cp.note, f"widened {rounds - 1} times ({scope})"]))
    return cp


def _scope_of(prep: Prepared, labels: Iterable[str]) -> set[str]:
    """VMs of the rules named by `labels`, and the VMs on the nodes those rules name."""
    wanted = set(labels)
    out: set[str] = set()
    for c in prep.problem.constraints:
        if c.label() in wanted:
            out.update(v for v in c.vms_in_scope() if v in prep.src.vms)
            for n in c.nodes_in_scope():
                out.update(prep.src.running_on(n))
    return out


def neighbourhood(prep: Prepared, seeds: set[str], count: int) -> set[str]:
    """Running, movable VMs on the `count` nodes with most room that the seeds may use, on the
    seeds' own hosts, and on the hosts of VMs that share a rule with a seed."""
    running = {
        v: prep.src.vms[v].host
        for v, s in prep.vm_state.items()
        if s is VMState.RUNNING and prep.src.vms[v].running
    }
    placer = Placer(prep, running)
    room = (placer.cap - placer.load) / np.maximum(placer.cap, 1)
    score = room.min(axis=1) if room.size else np.zeros(len(placer.nodes))
    usable = np.zeros(len(placer.nodes), dtype=bool)
    for vm in seeds:
        if vm in prep.vm_state and prep.vm_state[vm] is VMState.RUNNING:
            usable |= placer._allowed_mask(vm) & ~placer.forbidden
    idx = np.nonzero(usable)[0]
    if len(idx) > count:
        idx = idx[np.argpartition(-score[idx], count)[:count]]
    nodes = {placer.nodes[int(i)] for i in idx}
    related = set(seeds)
    for c in prep.problem.constraints:
        scope = c.vms_in_scope()
        if any(v in seeds for v in scope):
            related.update(scope)
            nodes.update(c.nodes_in_scope())
    nodes.update(str(running[v]) for v in related if running.get(v) is not None)
    return {
        v for n in nodes for v in prep.src.running_on(n) if v in running and v not in prep.pinned
    }
