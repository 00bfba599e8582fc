"""`solve(problem, options) -> SolveResult`: the solver's single entry point.

Pipeline: prepare (derived states, demands, filters) -> heuristic (complete destination) ->
CP-SAT repair model hinted with it (time-limited, best found kept) -> cross-check every
constraint -> plan builder -> statistics. The heuristic's result stands when CP-SAT finds nothing
better in time, so a valid plan comes back whenever the heuristic finds one.

CP-SAT is skipped when the heuristic already reaches a proven lower bound of the objective (or
is within `SolveOptions.acceptable_gap` of it), and when the time left cannot hold the model.
When no model proved the answer optimal and the full model was not solved, a
large-neighbourhood search improves it with CP-SAT in the time left (`vmgrid.solver.lns`); a
valid heuristic answer whose repair model would take over half of CP-SAT's budget to build goes
to that search directly. `status` is ``optimal`` only when proven: the heuristic meets the lower bound, or CP-SAT proves
optimality; a good answer without proof is ``feasible``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from vmgrid.solver.answer import first_plan, heuristic, not_worse, power, violated
from vmgrid.solver.bounds import migrations_lower_bound
from vmgrid.solver.constraints import Constraint, NetworkAffinity
from vmgrid.solver.cpsat import CpsatOptions, CpsatResult
from vmgrid.solver.explain import conflicting_constraints, unary_conflicts
from vmgrid.solver.heuristics import (
    HeuristicResult,
    bin_packing_lower_bound,
    evict_for_overload,
)
from vmgrid.solver.lns import LnsOptions, LnsResult, first_level_floor, improve, too_large
from vmgrid.solver.model import Model, VMState
from vmgrid.solver.objectives import parse
from vmgrid.solver.plan import Plan
from vmgrid.solver.planner import PlannerOptions
from vmgrid.solver.problem import Prepared, Problem, prepare, target_model
from vmgrid.solver.repair import widening_search
from vmgrid.solver.schedule_cpsat import ScheduleOptions, improve_schedule


@dataclass(frozen=True)
class SolveOptions:
    cpsat: CpsatOptions = field(default_factory=CpsatOptions)
    planner: PlannerOptions = field(default_factory=PlannerOptions)
    use_cpsat: bool = True
    """False: heuristic only (the baseline)."""
    lns: LnsOptions = field(default_factory=LnsOptions)
    """Large-neighbourhood search over the answer when no model proved it optimal and the
    full model was not solved (`vmgrid.solver.lns`); it gets the time CP-SAT left."""
    heuristic: str = "auto"
    """``auto`` (FFD when consolidating, else greedy repair), ``ffd`` or ``greedy``."""
    explain_max_pairs: int = 200_000
    """Explain an infeasible problem only when VMs x nodes stays below this."""
    time_limit_s: float | None = None
    """Wall budget of the whole `solve` call (heuristic, CP-SAT model building and search, plan);
    CP-SAT gets what the heuristic left minus the plan reserve, and no more than its own limit."""
    plan_reserve_s: float | None = None
    """Seconds kept, under `time_limit_s`, for checking and building the plan after CP-SAT;
    None: 1 s + 150 us per VM (the plan builder's cost on a loaded 2-core machine)."""
    acceptable_gap: float = 0.0
    """Relative gap to the objective's proven lower bound (node count when consolidating,
    migrations for ``migrations``/``mttr``) at which the heuristic's answer is kept without
    running CP-SAT. 0: only a heuristic answer at the bound skips the search; the status stays
    ``feasible`` unless the bound is met."""
    schedule: ScheduleOptions = field(default_factory=ScheduleOptions)
    """How the plan's actions are timed: the planner's greedy order (default), or CP-SAT's
    interval model by ``makespan`` or ``mttr`` (`vmgrid.solver.schedule_cpsat`), kept only when
    better and valid; its limit is cut to what `time_limit_s` leaves."""


@dataclass(frozen=True)
class SolveStats:
    solve_s: float
    heuristic_s: float
    cpsat_s: float
    cpsat_status: str
    """optimal, feasible, infeasible, unknown, skipped (see `cpsat_note`)."""
    source: str
    migrations: int
    mttr_s: int
    makespan_s: int
    nodes_used: int
    nodes_lower_bound: int
    migrations_lower_bound: int
    free_vms: int
    variables: int
    cpsat_build_s: float = 0.0
    cpsat_note: str = ""
    """Why CP-SAT did not search: at the lower bound, within the accepted gap, out of time."""
    plan_note: str = ""
    """Why the plan reaches only part of the answer (`source` then ends with "-partial")."""
    lns: dict[str, object] = field(default_factory=dict)
    """The large-neighbourhood search's objective before and after (one value per level, the
    network-affinity cost last), steps, accepted steps, time and why it stopped; empty when it
    did not run."""
    schedule: dict[str, object] = field(default_factory=dict)
    """How the plan was timed (`ScheduleResult.as_dict`: used, objective, greedy and final
    makespan and MTTR, solve time, note); empty with the greedy schedule."""

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SolveResult:
    """`status`: optimal, feasible (a valid plan, maybe not optimal), infeasible or unknown."""

    status: str
    dst: Model | None
    plan: Plan | None
    stats: SolveStats
    conflicts: tuple[str, ...] = ()
    violated: tuple[str, ...] = ()


def solve(problem: Problem, options: SolveOptions | None = None) -> SolveResult:
    opts = options or SolveOptions()
    t0 = time.perf_counter()
    prep = prepare(problem)
    consolidating = any(n == "consolidation" for lv in parse(problem.objective) for _, n in lv)
    heur = heuristic(prep, opts.heuristic, consolidating)
    t1 = time.perf_counter()
    cp: CpsatResult | None = None
    hosts: dict[str, str | None] | None = None
    source = "heuristic"
    if heur.dst is not None and not heur.violated:
        hosts = heur.hosts
    mig_lb = migrations_lower_bound(prep)
    node_lb = bin_packing_lower_bound(prep)
    value, floor = _heuristic_value(prep, heur, hosts, mig_lb, node_lb)
    at_floor = value is not None and floor is not None and value <= floor
    close = value is not None and floor is not None and value <= floor * (1 + opts.acceptable_gap)
    budget = _budget(opts, t0, len(problem.model.vms))
    note = "at the lower bound" if at_floor else "within the accepted gap" if close else ""
    if not opts.use_cpsat and not note:
        note = "disabled by SolveOptions.use_cpsat"
    elif not close and budget is None:
        note = "no time left after the heuristic"
    unary = unary_conflicts(prep) if hosts is None else []
    complete = heur.dst is not None  # every VM placed, maybe breaking rules
    if complete and budget is not None and opts.lns.enabled and too_large(prep, budget):
        note, budget = "the repair model would take over half the budget: LNS instead", None
    if opts.use_cpsat and not close and budget is not None and not unary:
        hint = heur.hosts if heur.dst is not None else {}

        def check(found: dict[str, str | None]) -> list[str]:
            return violated(prep, power(problem, _apply(prep, found), consolidating))

        cp = widening_search(prep, hint, budget, check, migrations_floor=mig_lb)
        note = cp.note
        found = {**_base_hosts(prep), **cp.hosts}
        if cp.status in ("optimal", "feasible") and not_worse(prep, found, hosts):
            hosts, source = found, "cpsat"
        elif cp.status in ("optimal", "feasible"):
            note = "CP-SAT's answer (restricted model) was worse than the heuristic's"
    lns: LnsResult | None = None
    lns_floor = first_level_floor(problem.objective, node_lb, mig_lb)
    searched = cp is not None and (cp.proven or cp.full)
    start = hosts if hosts is not None else heur.hosts if complete and not unary else None
    if start is not None and opts.use_cpsat and opts.lns.enabled and not close and not searched:
        deadline = _lns_deadline(opts, t0, len(problem.model.vms))
        if deadline - time.perf_counter() >= opts.lns.min_total_s:
            lns = improve(prep, start, deadline, opts.lns, opts.cpsat.num_workers, lns_floor)
    if hosts is None and lns is not None and lns.improved and lns.valid:  # repaired
        hosts, source = {**heur.hosts, **lns.hosts}, "lns"
    t2 = time.perf_counter()
    if hosts is None:
        return _no_plan(prep, opts, cp, unary, heur, (t0, t1, t2), node_lb, mig_lb, note)
    tried = [(hosts, source)]
    if lns is not None and lns.improved and source != "lns":
        tried.insert(0, ({**hosts, **lns.hosts}, "lns"))
    plan_by = _plan_deadline(opts, t0, len(problem.model.vms))
    plan, dst, source, failure = first_plan(
        problem, prep, opts.planner, heur.reasons, tried, plan_by
    )
    if plan is None:
        stats = _stats(t0, t1, time.perf_counter(), cp, source, None, 0, node_lb, mig_lb, note)
        return SolveResult("unknown", dst, None, stats, (), (f"no plan reaches it: {failure}",))
    plan, timing = _timed(problem, opts, plan, t0)
    used = len(dst.used_nodes())
    stats = _stats(t0, t1, time.perf_counter(), cp, source, plan, used, node_lb, mig_lb, note)
    if lns is not None:
        stats = replace(stats, lns=lns.summary() | {"kept": source == "lns"})
    if source.endswith("-partial"):
        stats = replace(stats, plan_note=f"partial plan: {failure}")
        return SolveResult("feasible", dst, plan, stats)
    proven = at_floor or (source == "cpsat" and cp is not None and cp.proven)
    proven = proven or (
        source == "lns" and lns is not None and _lns_proven(problem, lns, lns_floor)
    )
    status = "optimal" if proven else "feasible"
    return SolveResult(status, dst, plan, replace(stats, schedule=timing))


def _timed(
    problem: Problem, opts: SolveOptions, plan: Plan, t0: float
) -> tuple[Plan, dict[str, object]]:
    """The plan re-timed by CP-SAT when `opts.schedule` asks, within what the budget leaves."""
    sched = opts.schedule
    if sched.objective == "greedy":
        return plan, {}
    if opts.time_limit_s is not None:
        left = opts.time_limit_s - (time.perf_counter() - t0)
        if left < 0.1:
            return plan, {"used": "greedy", "note": "no time left to schedule"}
        sched = replace(sched, time_limit_s=min(sched.time_limit_s, left))
    timed = improve_schedule(plan, problem.constraints, opts.planner, sched)
    return timed.plan, timed.as_dict()


def _no_plan(
    prep: Prepared,
    opts: SolveOptions,
    cp: CpsatResult | None,
    unary: list[str],
    heur: HeuristicResult,
    times: tuple[float, float, float],
    node_lb: int,
    mig_lb: int,
    note: str,
) -> SolveResult:
    """``infeasible`` only with a proof: a VM that fits on no node it may use, a conflict core
    of the full model, or the full model itself without solution; else ``unknown``."""
    conflicts = tuple(unary)
    proven = bool(unary) or (cp is not None and cp.full and cp.status == "infeasible")
    running = sum(1 for s in prep.vm_state.values() if s is VMState.RUNNING)
    if not unary and running * len(prep.src.nodes) <= opts.explain_max_pairs:
        conflicts = tuple(conflicting_constraints(prep))
        proven = proven or bool(conflicts)
    stats = _stats(*times, cp, "none", None, 0, node_lb, mig_lb, note)
    status = "infeasible" if proven else "unknown"
    return SolveResult(status, None, None, stats, conflicts, tuple(heur.violated))


def _lns_proven(problem: Problem, lns: LnsResult, floor: int | None) -> bool:
    """The search reached a proven bound of a one-level objective with no affinity cost."""
    one_level = len(parse(problem.objective)) == 1
    return one_level and floor is not None and lns.after[0] <= floor and lns.after[-1] == 0


def _reserve(opts: SolveOptions, vms: int) -> float:
    return opts.plan_reserve_s if opts.plan_reserve_s is not None else 1.0 + 150e-6 * vms


def _plan_deadline(opts: SolveOptions, t0: float, vms: int) -> float | None:
    """The planner's: the end of `time_limit_s`, at least the plan reserve from now."""
    if opts.time_limit_s is None:
        return None
    return max(t0 + opts.time_limit_s, time.perf_counter() + _reserve(opts, vms))


def _lns_deadline(opts: SolveOptions, t0: float, vms: int) -> float:
    """What `time_limit_s` leaves after the plan reserve, else the search's own limit."""
    if opts.time_limit_s is None:
        return time.perf_counter() + opts.lns.time_limit_s
    return t0 + opts.time_limit_s - _reserve(opts, vms)


def _budget(opts: SolveOptions, t0: float, vms: int) -> CpsatOptions | None:
    """CP-SAT's limit: its own, cut to what `time_limit_s` leaves after the plan reserve;
    None when less than CP-SAT's minimal search time is left."""
    if opts.time_limit_s is None:
        return opts.cpsat
    left = opts.time_limit_s - (time.perf_counter() - t0) - _reserve(opts, vms)
    if left < opts.cpsat.min_search_s:
        return None
    return replace(opts.cpsat, time_limit_s=min(opts.cpsat.time_limit_s, left))


def _heuristic_value(
    prep: Prepared,
    heur: HeuristicResult,
    hosts: dict[str, str | None] | None,
    mig_lb: int,
    node_lb: int,
) -> tuple[int | None, int | None]:
    """The heuristic's value of the objective and a proven lower bound of it, when the
    objective is one whose bound is known (consolidation alone: nodes used; ``migrations`` or
    ``mttr`` with unit migration weights: VMs moved)."""
    if hosts is None or heur.dst is None:
        return None, None
    if prep.problem.objective == "consolidation":
        return len(heur.dst.used_nodes()), node_lb
    if _heuristic_reaches_floor(prep, hosts, mig_lb):
        return mig_lb, mig_lb
    return None, None


def _heuristic_reaches_floor(
    prep: Prepared, hosts: dict[str, str | None] | None, floor: int
) -> bool:
    """True when the heuristic's destination is valid and already moves only `floor` VMs under
    an objective that counts migrations with unit weights: CP-SAT cannot do better."""
    if hosts is None or prep.problem.objective not in ("migrations", "mttr"):
        return False
    moved = [
        v
        for v, vm in prep.src.vms.items()
        if vm.running and prep.vm_state[v] is VMState.RUNNING and hosts.get(v) != vm.host
    ]
    if any(prep.src.vms[v].duration_s("migrate") != 1 for v in moved):
        return False
    return len(moved) <= floor and not any(
        isinstance(c, NetworkAffinity) for c in prep.problem.constraints
    )


def _base_hosts(prep: Prepared) -> dict[str, str | None]:
    return {n: vm.host for n, vm in prep.src.vms.items()}


def _apply(prep: Prepared, hosts: dict[str, str | None]) -> Model:
    return target_model(prep, {**_base_hosts(prep), **hosts})


def _stats(
    t0: float,
    t1: float,
    t2: float,
    cp: CpsatResult | None,
    source: str,
    plan: Plan | None,
    nodes_used: int,
    node_lb: int,
    mig_lb: int,
    note: str = "",
) -> SolveStats:
    return SolveStats(
        solve_s=round(t2 - t0, 3),
        heuristic_s=round(t1 - t0, 3),
        cpsat_s=round(cp.wall_s, 3) if cp else 0.0,
        cpsat_status=cp.status if cp else "skipped",
        source=source,
        migrations=plan.migrations if plan else 0,
        mttr_s=plan.mttr_s if plan else 0,
        makespan_s=plan.makespan_s if plan else 0,
        nodes_used=nodes_used,
        nodes_lower_bound=node_lb,
        migrations_lower_bound=mig_lb,
        free_vms=cp.free_vms if cp else 0,
        variables=cp.variables if cp else 0,
        cpsat_build_s=round(cp.build_s, 3) if cp else 0.0,
        cpsat_note=note,
    )


__all__ = [
    "Constraint",
    "HeuristicResult",
    "Problem",
    "SolveOptions",
    "SolveResult",
    "SolveStats",
    "evict_for_overload",
    "migrations_lower_bound",
    "solve",
]
