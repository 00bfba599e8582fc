"""Solve a challenge instance: local search, then CP-SAT large-neighbourhood search to the deadline.

The search starts from the initial assignment (feasible by the challenge's rules) and only ever
accepts feasible, cheaper assignments, so whatever the deadline the answer is valid and no worse
than the original. Neighbourhoods rotate between five choices: the costliest machines paired
with random ones, a machine paying load cost with machines whose safety capacity could take its
largest process (by conflict), random machines, the machines of one service, and machines
sharing a neighbourhood; their size grows while CP-SAT proves them optimal and shrinks when it runs out of
time. Randomness comes from one seed, so a run can be replayed (up to timing).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from vmgrid.solver.roadef.instance import IntArray, RoadefInstance
from vmgrid.solver.roadef.lns import Neighbourhood, solve_neighbourhood
from vmgrid.solver.roadef.local import local_search, shift_pass
from vmgrid.solver.roadef.state import AssignmentState

KINDS = ("cost", "conflict", "random", "service", "zone")


@dataclass(frozen=True)
class RoadefOptions:
    """Search settings; the defaults suit the challenge's 300 s on two cores."""

    workers: int = 2
    """CP-SAT workers per neighbourhood."""
    seed: int = 0
    """Seed of every random choice."""
    step_seconds: float = 0.3
    """Time limit of one CP-SAT neighbourhood."""
    max_free: int = 200
    """Most processes freed in one neighbourhood (sampled when its machines hold more)."""
    local_share: float = 0.5
    """Share of the budget the first local search may use."""


@dataclass
class RoadefResult:
    assignment: IntArray
    cost: int
    original_cost: int
    stats: dict[str, int] = field(default_factory=dict)


Progress = Callable[[str], None]


def solve_roadef(
    instance: RoadefInstance,
    initial: IntArray,
    timeout: float,
    options: RoadefOptions | None = None,
    progress: Progress | None = None,
) -> RoadefResult:
    """Return the best feasible assignment found within `timeout` seconds of wall time."""
    opts = options or RoadefOptions()
    start = time.monotonic()
    deadline = start + timeout
    say = progress or (lambda _msg: None)
    rng = np.random.default_rng(opts.seed)
    state = AssignmentState(instance, initial, initial)
    original = state.total
    local_search(state, start + opts.local_share * timeout, rng)
    say(f"local search: cost {state.total:,} ({time.monotonic() - start:.1f} s)")
    stats = {f"lns_{k}": 0 for k in KINDS} | {f"gain_{k}": 0 for k in KINDS}
    size = 4 if instance.machines > 4 else instance.machines
    last_say = time.monotonic()
    step = 0
    idle = 0
    while True:
        now = time.monotonic()
        if now + 0.05 >= deadline:
            break
        kind = KINDS[step % len(KINDS)]
        step += 1
        hood = pick_neighbourhood(state, kind, size, opts.max_free, rng)
        limit = min(opts.step_seconds, deadline - now - 0.02)
        gain, proven = solve_neighbourhood(state, hood, limit, opts.workers, opts.seed + step)
        stats[f"lns_{kind}"] += 1
        stats[f"gain_{kind}"] += gain
        idle = 0 if gain else idle + 1
        if proven and size < min(instance.machines, 40):
            size += 1
        elif not proven and not gain and size > 2:
            size -= 1
        if gain and len(hood.processes) > 0:
            moved = np.flatnonzero(np.isin(state.x, hood.machines))
            shift_pass(state, rng.permutation(moved), deadline)
        if idle and idle % 50 == 0:
            local_search(state, min(deadline, time.monotonic() + 5.0), rng, max_rounds=1)
        if time.monotonic() - last_say > 10.0:
            last_say = time.monotonic()
            say(
                f"lns step {step}: cost {state.total:,}, neighbourhood {size} machines "
                f"({last_say - start:.0f} s)"
            )
    stats["lns_steps"] = step
    return RoadefResult(state.x.copy(), state.total, original, stats)


def pick_neighbourhood(
    state: AssignmentState, kind: str, size: int, max_free: int, rng: np.random.Generator
) -> Neighbourhood:
    """Choose `size` machines by `kind` and the processes on them (at most `max_free`)."""
    inst = state.inst
    n_m = inst.machines
    size = min(size, n_m)
    chosen: list[int] = []
    if kind == "cost":
        contribution = _wasted_headroom(state)
        if contribution.sum() <= 0:
            contribution = (state.machine_load + state.machine_balance).astype(np.float64)
        if contribution.sum() > 0:
            weights = contribution / contribution.sum()
            k = min(max(1, size // 2), int((contribution > 0).sum()))
            chosen = rng.choice(n_m, k, replace=False, p=weights).tolist()
            chosen += _holders_of_moved_originals(state, chosen, size - len(chosen), rng)
    elif kind == "conflict":
        chosen = _conflict(state, size, rng)
    elif kind == "service":
        s = int(inst.service[rng.integers(inst.processes)])
        hosts = np.flatnonzero(state.on_machine[s])
        chosen = rng.permutation(hosts)[:size].tolist()
    elif kind == "zone":
        seed_m = int(rng.integers(n_m))
        same = np.flatnonzero(inst.neighborhood == inst.neighborhood[seed_m])
        chosen = rng.permutation(same)[:size].tolist()
    rest = np.setdiff1d(np.arange(n_m), np.array(chosen, dtype=np.int64))
    fill = rng.permutation(rest)[: size - len(chosen)].tolist()
    machines = tuple(int(m) for m in chosen + fill)
    procs = np.flatnonzero(np.isin(state.x, machines))
    if procs.shape[0] > max_free:
        procs = rng.choice(procs, max_free, replace=False)
    return Neighbourhood(machines, tuple(int(p) for p in procs), kind)


def _conflict(state: AssignmentState, size: int, rng: np.random.Generator) -> list[int]:
    """A machine paying load cost, drawn by that cost, with machines whose safety capacity could
    take its largest process on the resource it overflows, least used first: the compound move
    (empty such a machine, then move the big process there) that shifts and swaps miss."""
    inst = state.inst
    over = np.maximum(0, state.used - inst.safety) * inst.load_weight
    paid = over.sum(axis=1).astype(np.float64)
    if paid.sum() <= 0:
        return []
    m = int(rng.choice(paid.shape[0], p=paid / paid.sum()))
    r = int(np.argmax(over[m]))
    procs = np.flatnonzero(state.x == m)
    if procs.shape[0] == 0:
        return [m]
    big = int(procs[np.argmax(inst.requirement[procs, r])])
    fits = np.flatnonzero((inst.safety >= inst.requirement[big]).all(axis=1))
    fits = fits[fits != m]
    k = max(1, size // 2)
    pool = fits[np.argsort(state.used[fits, r], kind="stable")][: 3 * k]
    return [m] + [int(s) for s in rng.permutation(pool)[:k]]


def _wasted_headroom(state: AssignmentState) -> np.ndarray:
    """Per machine, the weighted room left under safety on resources that are over safety in
    total: load cost that the pooled lower bound does not pay, so machines worth refilling."""
    inst = state.inst
    pooled_over = state.used.sum(axis=0) > inst.safety.sum(axis=0)
    room = np.maximum(0, inst.safety - state.used) * pooled_over
    waste: np.ndarray = (room @ inst.load_weight).astype(np.float64)
    return waste


def _holders_of_moved_originals(
    state: AssignmentState, machines: list[int], room: int, rng: np.random.Generator
) -> list[int]:
    """Machines now hosting processes that left `machines`: a process moving back home frees
    the transient resource it still holds there, which no other move can do."""
    left = np.flatnonzero(np.isin(state.initial, machines) & (state.x != state.initial))
    hosts = np.setdiff1d(np.unique(state.x[left]), np.array(machines, dtype=np.int64))
    return [int(m) for m in rng.permutation(hosts)[: max(0, room)]]
