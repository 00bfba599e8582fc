"""The CP-SAT reconfiguration model: repair mode, cheap filters, a complete hint, a time limit.

Only VMs with a reason to move are free (they leave an offline node, must boot, violate a
constraint, or sit on a node that is over capacity after `preserve`); every other VM is a
constant. A free VM gets a Boolean per candidate node: its current host, the heuristic's choice,
and the K nodes with most slack that pass the unary filters and can hold it alone. The
heuristic's destination is given as a complete hint, so the best plan found at the time limit
is never worse than the heuristic.

The time limit covers model building and search: a model too large for the budget is not built
(`build_s_per_variable` estimates its cost), building stops at the deadline, the search gets
what building left, and a watchdog stops a search (presolve included) that overruns it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model
from vmgrid.solver.constraints import Capacity, Constraint, Gather, MaxOnline
from vmgrid.solver.context import Lit, PostContext
from vmgrid.solver.heuristics import Placer
from vmgrid.solver.model import NodeState, VMState
from vmgrid.solver.objectives import parse, post_objective
from vmgrid.solver.problem import Prepared


@dataclass(frozen=True)
class CpsatOptions:
    time_limit_s: float = 20.0
    """Wall-clock budget of model building plus search; the best solution by then is returned."""
    num_workers: int = 2
    """CP-SAT search workers (the build machines have 2 cores)."""
    candidates_per_vm: int = 12
    """K: nodes with most slack offered to each free VM, besides its host and the hint's node."""
    full_model_max_pairs: int = 60_000
    """Below this many VM x node pairs every running VM is free on every allowed node."""
    seed: int = 0
    min_search_s: float = 1.0
    """The search is skipped when less than this is left after building the model."""
    build_s_per_variable: float = 60e-6
    """Estimated cost of building the model per placement variable: 110 us were measured at load
    average 6.5 on 2 cores (140k variables in 15.6 s), about half that on a quieter machine. The
    model is not built when the estimate exceeds the time left; a build that still overruns is
    abandoned before the search."""


@dataclass
class CpsatResult:
    """`status`: optimal, feasible, infeasible, unknown, invalid, or skipped (the budget could
    not hold the model; `note` says why)."""

    status: str
    hosts: dict[str, str | None]
    free_vms: int
    variables: int
    wall_s: float
    objective: float | None = None
    bound: float | None = None
    core: list[str] = field(default_factory=list)
    build_s: float = 0.0
    note: str = ""
    proven: bool = False
    """Optimal for the problem itself, not only for the repair model's restricted choices: the
    full model was solved to optimality, or a solution reached a proven lower bound."""
    full: bool = False
    """Every running VM that is not pinned was free on every node the cheap filters allow, so an
    ``infeasible`` status is a proof."""
    freed: frozenset[str] = frozenset()
    """The VMs that were free in this model."""


_STATUS = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.MODEL_INVALID: "invalid",
    cp_model.UNKNOWN: "unknown",
}


def free_vms(prep: Prepared, full: bool, extra: frozenset[str] = frozenset()) -> set[str]:
    """Repair mode's free VMs (or every non-pinned VM that ends running when `full`)."""
    running = {v for v, s in prep.vm_state.items() if s is VMState.RUNNING}
    unplaced = {v for v in running if prep.src.vms[v].host is None}
    if full:
        return (running - prep.pinned) | unplaced
    free = (((prep.must_move | extra) & running) - prep.pinned) | unplaced
    placer = Placer(prep, {v: prep.src.vms[v].host for v in running})
    over = np.nonzero(np.any(placer.load > placer.cap, axis=1))[0]
    for c, idx, r in placer.rcaps:
        if int(placer.load[idx, r].sum()) > c.amount:
            over = np.union1d(over, idx)
    for i in over:
        node = placer.nodes[int(i)]
        free.update(v for v in prep.src.running_on(node) if v in running and v not in prep.pinned)
    return free


def _candidates(
    prep: Prepared,
    free: set[str],
    hint: dict[str, str | None],
    k: int,
    full: bool,
    explain: bool = False,
) -> dict[str, list[str]]:
    fixed = {
        v: prep.src.vms[v].host
        for v, s in prep.vm_state.items()
        if s is VMState.RUNNING and v not in free
    }
    placer = Placer(prep, fixed)
    room = placer.cap - placer.load
    norm = np.maximum(placer.cap, 1)
    out: dict[str, list[str]] = {}
    for vm in sorted(free):
        if explain:  # no filter: the constraints themselves must say no
            out[vm] = list(placer.nodes)
            continue
        mask = placer._allowed_mask(vm) & ~placer.forbidden
        mask = mask & np.all(room >= placer.vec(vm), axis=1)
        idx = np.nonzero(mask)[0]
        if not full and len(idx) > k:
            score = ((room[idx] - placer.vec(vm)) / norm[idx]).min(axis=1)
            idx = idx[np.argpartition(-score, k)[:k]]
        chosen = {placer.nodes[int(i)] for i in idx}
        host = prep.src.vms[vm].host
        if host is not None and prep.may_host(vm, host):
            chosen.add(host)
        if hint.get(vm) is not None:
            chosen.add(str(hint[vm]))
        out[vm] = sorted(chosen)
    _common_nodes_for_groups(prep, out)
    return out


def _common_nodes_for_groups(prep: Prepared, cands: dict[str, list[str]]) -> None:
    """gather: offer every free member the nodes offered to any member (and the fixed members'
    hosts), so that a common node exists whenever one was found for some member."""
    for c in prep.problem.constraints:
        if not isinstance(c, Gather):
            continue
        free = [v for v in c.vms if v in cands]
        pool = {n for v in free for n in cands[v]}
        pool |= {str(prep.src.vms[v].host) for v in c.vms if v not in cands and v in prep.src.vms}
        for v in free:
            cands[v] = sorted(n for n in pool if prep.may_host(v, n) or n == prep.src.vms[v].host)


def build_and_solve(
    prep: Prepared,
    hint: dict[str, str | None],
    options: CpsatOptions,
    explain: bool = False,
    migrations_floor: int | None = None,
    extra_free: frozenset[str] = frozenset(),
    widen: int = 1,
    force_full: bool = False,
) -> CpsatResult:
    """Solve the reconfiguration; with `explain`, every VM is free and an infeasible result
    carries the labels of a small set of conflicting constraints in `core`.

    `migrations_floor` (a proven lower bound on the number of migrations) stops the search as
    soon as a solution reaches it, for the objectives that count migrations. `extra_free` adds
    VMs to repair mode's free set and `widen` multiplies the candidate nodes per free VM (the
    widening search, `vmgrid.solver.repair`); `force_full` frees every VM everywhere.
    """
    start = time.perf_counter()
    src = prep.src
    objective = prep.problem.objective
    consolidating = any(n == "consolidation" for lv in parse(objective) for _, n in lv)
    running = [v for v, s in prep.vm_state.items() if s is VMState.RUNNING]
    pairs = len(running) * len(src.nodes)
    full = explain or force_full or pairs <= options.full_model_max_pairs
    free = free_vms(prep, full or consolidating, extra_free)
    full = full or (
        free >= {v for v in running if v not in prep.pinned}
        and widen * (options.candidates_per_vm + 2) >= len(src.nodes)
    )
    if explain:
        free = set(running)
    deadline = start + options.time_limit_s
    per_vm = len(src.nodes) if full else min(len(src.nodes), options.candidates_per_vm * widen + 2)
    estimate = len(free) * per_vm
    if not explain and not _affordable(estimate, options, deadline):
        return _skipped(start, free, f"~{estimate} variables do not fit the time left")
    cands = _candidates(prep, free, hint, options.candidates_per_vm * widen, full, explain)
    cp = cp_model.CpModel()
    placement: dict[str, dict[str, Lit]] = {}
    for vm in running:
        if vm in free:
            placement[vm] = {n: cp.new_bool_var(f"x_{vm}_{n}") for n in cands[vm]}
        else:
            placement[vm] = {str(src.vms[vm].host): 1}
    if not explain and time.perf_counter() > deadline - options.min_search_s:
        return _skipped(start, free, "the budget ran out while building the model")
    node_on = _node_power(cp, prep, consolidating, explain)
    ctx = PostContext(cp, src, prep.vm_state, prep.demand, placement, node_on)
    constraints: list[Constraint] = [
        c for c in prep.problem.constraints if not isinstance(c, Capacity)
    ]
    every_rc = sorted(set(src.resources) | {r for d in prep.demand.values() for r in d})
    capacity = {rc: Capacity(rc=rc) for rc in every_rc} if explain else {"": Capacity()}
    if explain:
        for c in [*constraints, *capacity.values()]:
            ctx.enforcement[id(c)] = cp.new_bool_var(f"enforce_{c.label()}")
    for vm in free:
        cp.add_exactly_one(list(placement[vm].values()))
    post_capacity(ctx, prep, capacity)
    usable = {n for vm in free for n in placement[vm]}
    for c in constraints:
        if explain or touches(ctx, c, free, usable):
            c.post(ctx)
    post_objective(ctx, objective)
    for vm in free:
        target = hint.get(vm)
        for n, lit in placement[vm].items():
            cp.add_hint(lit, n == target)  # type: ignore[arg-type]
    built = time.perf_counter()
    remaining = deadline - built
    if not explain and remaining < options.min_search_s:
        return _skipped(start, free, f"{remaining:.1f}s left after building the model")
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(options.min_search_s, remaining)
    solver.parameters.num_workers = options.num_workers
    solver.parameters.random_seed = options.seed
    if explain:
        cp.add_assumptions(list(ctx.enforcement.values()))
        solver.parameters.num_workers = 1
    floor = None if explain else objective_floor(ctx, objective, migrations_floor)
    watchdog = threading.Timer(max(options.min_search_s, remaining), solver.stop_search)
    watchdog.daemon = True
    watchdog.start()
    try:
        code = solver.solve(cp, _StopAtFloor(floor) if floor is not None else None)
    finally:
        watchdog.cancel()
    status = _STATUS.get(code, "unknown")
    hosts: dict[str, str | None] = {}
    result = CpsatResult(status, hosts, len(free), len(cp.proto.variables), 0.0)
    result.full, result.freed = full, frozenset(free)
    result.build_s = built - start
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        for vm in free:
            hosts[vm] = next(n for n, lit in placement[vm].items() if solver.boolean_value(lit))
        result.objective = solver.objective_value
        result.bound = solver.best_objective_bound
        result.proven = full and code == cp_model.OPTIMAL
        if floor is not None and solver.objective_value <= floor:
            result.status = "optimal"
            result.proven = True
    elif code == cp_model.INFEASIBLE and explain:
        by_index: dict[int, Constraint] = {
            enf.index: c
            for c in [*constraints, *capacity.values()]
            if (enf := ctx.enforcement.get(id(c))) is not None
        }
        core = [i for i in solver.sufficient_assumptions_for_infeasibility() if i in by_index]
        lits = {i: ctx.enforcement[id(by_index[i])] for i in core}
        result.core = [by_index[i].label() for i in _shrink(cp, solver, lits)]
    result.wall_s = time.perf_counter() - start
    return result


def touches(ctx: PostContext, c: Constraint, free: set[str], usable: set[str]) -> bool:
    """Must `c` be posted? When one of its VMs is free, or it names a node (or one of its VMs
    sits on a node) that some free VM may use: `lonely(x)` with x fixed still keeps free VMs
    off x's node."""
    vms, nodes = c.vms_in_scope(), c.nodes_in_scope()
    if not vms and not nodes:
        return True
    if any(v in free for v in vms):
        return True
    return any(n in usable for n in nodes) or any(n in usable for n in ctx.nodes_of(vms))


def _affordable(variables: int, options: CpsatOptions, deadline: float) -> bool:
    left = deadline - time.perf_counter()
    return variables * options.build_s_per_variable + options.min_search_s <= left


def _skipped(start: float, free: set[str], why: str) -> CpsatResult:
    wall = time.perf_counter() - start
    out = CpsatResult("skipped", {}, len(free), 0, wall, build_s=wall, note=why)
    out.freed = frozenset(free)
    return out


class _StopAtFloor(cp_model.CpSolverSolutionCallback):
    """Stop the search once a solution reaches a proven lower bound of the objective."""

    def __init__(self, floor: int) -> None:
        super().__init__()
        self.floor = floor

    def on_solution_callback(self) -> None:
        if self.objective_value <= self.floor:
            self.stop_search()


def objective_floor(ctx: PostContext, spec: str, migrations: int | None) -> int | None:
    """A lower bound of the posted objective from a lower bound on migrations, when the
    objective is one term counting migrations (``migrations``, or ``mttr`` whose weights are
    migration durations) and no soft cost is added."""
    levels = parse(spec)
    if migrations is None or ctx.costs or len(levels) != 1 or len(levels[0]) != 1:
        return None
    weight, name = levels[0][0]
    if name == "migrations":
        return weight * migrations
    if name == "mttr":
        durations = [
            ctx.src.vms[vm].duration_s("migrate") for vm in ctx.placement if ctx.is_free(vm)
        ]
        return weight * migrations * min(durations, default=1)
    return None


def _shrink(
    cp: cp_model.CpModel, solver: cp_model.CpSolver, core: dict[int, cp_model.IntVar]
) -> list[int]:
    """Deletion filter: drop each assumption whose removal keeps the model infeasible."""
    kept = list(core)
    for index in list(core):
        trial = [i for i in kept if i != index]
        cp.clear_assumptions()
        cp.add_assumptions([core[i] for i in trial])
        if solver.solve(cp) == cp_model.INFEASIBLE:
            kept = trial
    return kept


def _node_power(
    cp: cp_model.CpModel, prep: Prepared, consolidating: bool, explain: bool
) -> dict[str, Lit]:
    forced = {n: s for c in prep.problem.constraints for n, s in c.node_states().items()}
    capped = {n for c in prep.problem.constraints if isinstance(c, MaxOnline) for n in c.nodes}
    out: dict[str, Lit] = {}
    for name in prep.src.nodes:
        state = prep.node_state[name]
        if explain:
            out[name] = on = cp.new_bool_var(f"on_{name}")
            if name not in forced and not consolidating:
                cp.add(on == int(prep.src.nodes[name].online))
        elif (consolidating or name in capped) and name not in forced:
            out[name] = cp.new_bool_var(f"on_{name}")
        else:
            out[name] = 1 if state is NodeState.ONLINE else 0
    return out


def post_capacity(
    ctx: PostContext,
    prep: Prepared,
    capacity: dict[str, Capacity],
    nodes: set[str] | None = None,
) -> None:
    """Per node (of `nodes`, default every node) and resource: constants folded, one linear
    constraint over free VMs. `capacity` is one rule for every resource (key "") or one per
    resource, so that a conflict names it."""
    every = capacity.get("")

    def enforce_of(rc: str) -> list[cp_model.IntVar]:
        return ctx.enforce(every if every is not None else capacity[rc])

    enforce: list[cp_model.IntVar] = []
    for name, node in prep.src.nodes.items():
        if nodes is not None and name not in nodes:
            continue
        entries = ctx.on_node(name)
        if not entries:
            continue
        on = ctx.node_on[name]
        fixed = [vm for vm, lit in entries if isinstance(lit, int)]
        free = [(vm, lit) for vm, lit in entries if not isinstance(lit, int)]
        if fixed and not isinstance(on, int):
            ctx.cp.add(on == 1)
        for _vm, lit in free:
            if isinstance(on, int):
                if on == 0:
                    ctx.cp.add(lit == 0).only_enforce_if(enforce)
            else:
                ctx.cp.add_implication(lit, on)
        resources = {r for vm, _ in entries for r in prep.demand[vm]}
        for rc in resources:
            base = sum(prep.demand[vm].get(rc, 0) for vm in fixed)
            terms = [prep.demand[vm].get(rc, 0) * lit for vm, lit in free]
            if terms:
                ctx.cp.add(sum(terms) <= node.cap(rc) - base).only_enforce_if(enforce_of(rc))
            elif base > node.cap(rc):
                ctx.cp.add(base <= node.cap(rc)).only_enforce_if(enforce_of(rc))
