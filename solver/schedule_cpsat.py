"""Re-time a plan's actions with CP-SAT to lower its makespan or its MTTR.

`improve_schedule(plan, constraints, planner, options)` takes the planner's greedy plan (its
actions' kinds, durations and nodes stay as they are, but for the VMs of migration cycles, which
may change route: optional pivots, below) and gives each action a new start:

- one interval per action, of the greedy plan's duration (a migration's comes from its NIC
  share, as the planner computed it);
- the order the plan needs (`schedule_model.precedences`: a VM's actions in turn, so a pivot's
  second hop after its first and a resume after its suspend; node boots before arrivals; node
  shutdowns after departures; the greedy order inside every continuous rule's scope);
- per node and resource, a cumulative of every presence (`schedule_model.stays`: a leaving VM
  from 0 to its action's end, an arriving one from its action's start to the horizon, a pivot
  between its two hops); staying VMs reduce the capacity as a fixed base;
- per NIC direction under the planner's NIC model, a cumulative of the migrations' shares over
  their intervals; per node under `max_inbound_per_node`, a cumulative of inbound migrations;
- objective `makespan` (then the sum of end times) or `mttr` (the sum of end times, BtrPlace's
  MinMTTR, within twice the greedy makespan), with the greedy starts as a complete hint and a
  short limit.

Optional pivots (`schedule_routes`, `schedule_intervals`): for up to `pivot_vms` VMs the planner
pivoted or suspended, or whose migration lies on a cycle between nodes, the model may choose the
direct move or a hop through one of up to `pivots` pivot nodes the planner's own checks admit,
instead of the planner's route: each route has a presence literal (exactly one per VM), its hops
and presences are optional intervals in the same cumulatives, so capacity holds over time at
every node, the pivot included. The planner's routes are re-timed first; that schedule hints the
search over every route; a re-routed schedule the validator refuses is cut off and the search
runs again (`REROUTE_TRIES`).

Sound by construction and by check: the re-timed plan is kept only when CP-SAT found a strictly
better one by the chosen objective AND the independent validator (`vmgrid.solver.validate`,
continuous rules over time included) finds nothing wrong; otherwise the greedy plan comes back
unchanged. `ScheduleResult.used` says which one did, and `note` why.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ortools.sat.python import cp_model
from vmgrid.solver.model import ModelError
from vmgrid.solver.plan import Plan
from vmgrid.solver.plan_scheduler import nics
from vmgrid.solver.planner import PlannerOptions
from vmgrid.solver.schedule_intervals import Found, IntervalModel, Nic
from vmgrid.solver.schedule_model import dependencies, nic_shares, precedences
from vmgrid.solver.schedule_routes import Routes, plan_routes, route_pairs
from vmgrid.solver.validate import validate_plan
from vmgrid.solver.validate_rules import as_rules

SCHEDULES = ("greedy", "makespan", "mttr")
REROUTE_TRIES = 3
"""Re-routed schedules refused by the validator before the plan's own routes are re-timed."""


@dataclass(frozen=True)
class ScheduleOptions:
    """How a plan's actions are timed once the planner has chosen them."""

    objective: str = "greedy"
    """``greedy``: the planner's own timing; ``makespan``: CP-SAT minimises the last end, then
    the sum of end times; ``mttr``: CP-SAT minimises the sum of end times, then the last end."""
    time_limit_s: float = 2.0
    """CP-SAT's search budget in seconds; the best schedule found by then is considered."""
    num_workers: int = 2
    """CP-SAT search workers (the build machines have 2 cores)."""
    seed: int = 0
    pivots: int = 3
    """Per VM of a migration cycle (pivoted or suspended by the planner, or moving along a cycle
    between nodes), how many candidate pivot nodes the model may route it through instead of
    the planner's route (the direct move is offered too); 0: the planner's routes are kept."""
    pivot_vms: int = 16
    """How many such VMs may change route (pivoted or suspended ones first)."""
    max_precedences: int = 200_000
    """Above this many precedence pairs (continuous rules over many actions), the greedy plan is
    kept without building a model."""

    def __post_init__(self) -> None:
        if self.objective not in SCHEDULES:
            raise ModelError(
                f"ScheduleOptions.objective = {self.objective!r}: expected one of "
                + ", ".join(SCHEDULES)
            )
        if not self.time_limit_s > 0:
            raise ModelError(
                f"ScheduleOptions.time_limit_s = {self.time_limit_s}: must be positive seconds"
            )
        for name in ("pivots", "pivot_vms"):
            if getattr(self, name) < 0:
                raise ModelError(
                    f"ScheduleOptions.{name} = {getattr(self, name)}: must be >= 0 (0: off)"
                )
        if self.num_workers < 1:
            raise ModelError(f"ScheduleOptions.num_workers = {self.num_workers}: must be >= 1")


@dataclass(frozen=True)
class ScheduleResult:
    """The plan to run and how it was timed: `used` is ``cpsat`` or ``greedy``."""

    plan: Plan
    used: str
    objective: str
    status: str
    """CP-SAT's status (optimal, feasible, infeasible, unknown), or ``skipped``."""
    greedy_makespan_s: int
    greedy_mttr_s: int
    solve_s: float
    note: str = ""
    violations: tuple[str, ...] = ()
    """What the validator found wrong with CP-SAT's schedule (then the greedy one was used, or
    the plan's own routes re-timed when the re-routed schedule was the one refused)."""
    rerouted: tuple[str, ...] = ()
    """VMs of migration cycles that take another route than the planner's, e.g.
    ``b: via n3 instead of direct``."""

    def as_dict(self) -> dict[str, object]:
        return {
            "used": self.used,
            "objective": self.objective,
            "status": self.status,
            "makespan_s": self.plan.makespan_s,
            "mttr_s": self.plan.mttr_s,
            "greedy_makespan_s": self.greedy_makespan_s,
            "greedy_mttr_s": self.greedy_mttr_s,
            "solve_s": round(self.solve_s, 3),
            "note": self.note,
            "violations": len(self.violations),
            "rerouted": list(self.rerouted),
        }


def improve_schedule(
    plan: Plan,
    constraints: Iterable[Any] = (),
    planner: PlannerOptions | None = None,
    options: ScheduleOptions | None = None,
) -> ScheduleResult:
    """Re-time `plan` (built with `planner`) by `options.objective`; the greedy plan comes back
    unchanged unless CP-SAT's schedule is strictly better and validates."""
    opts = options or ScheduleOptions()
    popts = planner or PlannerOptions()
    t0 = time.perf_counter()
    rules = as_rules(constraints)

    def keep(status: str, note: str, bad: tuple[str, ...] = ()) -> ScheduleResult:
        spent = time.perf_counter() - t0
        return ScheduleResult(
            plan, "greedy", opts.objective, status, plan.makespan_s, plan.mttr_s, spent, note, bad
        )

    if opts.objective == "greedy":
        return keep("skipped", "greedy schedule asked")
    if not plan.actions:
        return keep("skipped", "nothing to schedule")
    pairs, note = precedences(plan, rules, opts.max_precedences)
    if note:
        return keep("skipped", note)
    fixed = Routes(plan.actions, {})
    routes = plan_routes(plan, rules, popts, opts.pivot_vms, opts.pivots) if opts.pivots else fixed
    # First the planner's routes (half the limit when there are others to choose from), then
    # every route, hinted by that schedule, so re-routing can only improve on it.
    share = 0.5 if routes.of_vm else 1.0
    status, new, found = _attempt(plan, fixed, pairs, popts, opts, opts.time_limit_s * share)
    if new is None:
        return keep(status, "the greedy plan breaks the model's capacity: greedy kept")
    refused: tuple[str, ...] = ()
    if routes.of_vm:
        extra = [0] * (len(routes.actions) - len(plan.actions))
        hint = Found(found.starts + extra, {})
        status, new, refused = _reroute(
            plan, routes, pairs, popts, opts, rules, t0, hint, (status, new)
        )
        if refused:
            note = f"re-routed schedules refused by the validator: {len(refused)}"
    if _rank(new.plan, opts.objective) >= _rank(plan, opts.objective):
        proven = " (proven optimal)" if status == "optimal" else ""
        why = f"no better {opts.objective} than the greedy schedule{proven}: greedy kept"
        return keep(status, why, refused)
    bad = tuple(v.message for v in validate_plan(new.plan, rules))
    if bad:
        return keep(status, "CP-SAT's schedule does not validate: greedy kept", refused + bad)
    spent = time.perf_counter() - t0
    return ScheduleResult(
        new.plan,
        "cpsat",
        opts.objective,
        status,
        plan.makespan_s,
        plan.mttr_s,
        spent,
        note,
        refused,
        new.rerouted,
    )


def _reroute(
    plan: Plan,
    routes: Routes,
    pairs: set[tuple[int, int]],
    popts: PlannerOptions,
    opts: ScheduleOptions,
    rules: Sequence[Any],
    t0: float,
    hint: Found,
    start: tuple[str, _Retimed],
) -> tuple[str, _Retimed, tuple[str, ...]]:
    """The best schedule over every route within the time left, from `start` (the planner's
    routes re-timed, and CP-SAT's status for them): a re-routed one the validator refuses is cut off (the route choices of
    the VMs it names, else the whole combination) and the search runs again, at most
    REROUTE_TRIES times, each with three quarters of the time left (the last with all)."""
    banned: list[dict[str, int]] = []
    refused: tuple[str, ...] = ()
    status, best = start
    for tries in range(REROUTE_TRIES):
        left = opts.time_limit_s - (time.perf_counter() - t0)
        if left <= 0.05:
            break
        share = 1.0 if tries == REROUTE_TRIES - 1 else 0.75
        status, new, found = _attempt(plan, routes, pairs, popts, opts, left * share, banned, hint)
        if new is None or _rank(new.plan, opts.objective) >= _rank(best.plan, opts.objective):
            break
        bad = tuple(v.message for v in validate_plan(new.plan, rules)) if new.rerouted else ()
        if not bad:
            return status, new, refused
        refused += bad
        banned += _culprits({vm: k for vm, k in found.routes.items() if k}, bad)
    return status, best, refused


def _culprits(chosen: Mapping[str, int], bad: Sequence[str]) -> list[dict[str, int]]:
    """The route choices to ban after the validator refused `chosen`: each re-routed VM its
    messages name, on its own; else the whole combination."""
    named = [
        {vm: k}
        for vm, k in chosen.items()
        if any(re.search(rf"\b{re.escape(vm)}\b", m) for m in bad)
    ]
    return named or [dict(chosen)]


@dataclass(frozen=True)
class _Retimed:
    plan: Plan
    rerouted: tuple[str, ...]


def _attempt(
    plan: Plan,
    routes: Routes,
    pairs: set[tuple[int, int]],
    popts: PlannerOptions,
    opts: ScheduleOptions,
    limit_s: float,
    banned: Sequence[Mapping[str, int]] = (),
    hint: Found | None = None,
) -> tuple[str, _Retimed | None, Found]:
    """CP-SAT's best schedule over `routes` but the `banned` route choices (the plan itself
    when it finds none; None when the plan breaks the model's capacity), and its choices."""
    bandwidth = nics(plan.src, popts)
    nic = nic_shares(routes.actions, popts, bandwidth)
    everything = pairs | route_pairs(plan, routes)
    facts = (everything, nic, popts.max_inbound_per_node, bandwidth)
    # MTTR alone searches poorly from the greedy hint: a makespan-first search (which also
    # lowers the sum of end times) hints it, and the better of the two is kept.
    phases = ["makespan"] if opts.objective == "makespan" else ["makespan", "mttr"]
    hint = hint or Found([a.start_s for a in routes.actions], {})
    best, chosen = _Retimed(plan, ()), hint
    status = "unknown"
    for objective in phases:
        model = IntervalModel(plan, routes, objective, hint)
        if not model.post(*facts):
            return "skipped", None, hint
        for combination in banned:
            model.ban(combination)
        status, found = _search(model, opts, limit_s / len(phases))
        if found is not None:
            hint = found
            new = _retimed(plan, routes, found, everything, nic, bool(popts.max_inbound_per_node))
            if _rank(new.plan, opts.objective) < _rank(best.plan, opts.objective):
                best, chosen = new, found
    return status, best, chosen


def _search(
    model: IntervalModel, opts: ScheduleOptions, limit_s: float
) -> tuple[str, Found | None]:
    """CP-SAT's status name and the schedule it found (None: none in time)."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, limit_s)
    solver.parameters.num_workers = opts.num_workers
    solver.parameters.random_seed = opts.seed
    code = solver.solve(model.cp)
    status = solver.status_name(code).lower()
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return status, None
    return status, model.found(solver)


def _retimed(
    plan: Plan,
    routes: Routes,
    found: Found,
    pairs: Iterable[tuple[int, int]],
    nic: Nic,
    inbound_cap: bool,
) -> _Retimed:
    """`plan` with the chosen routes, the new starts (same durations), the actions renumbered
    in order, and the dependencies of the new order; with what changed route."""
    optional = routes.optional
    kept = [
        a
        for a in routes.actions
        if optional.get(a.id, (a.subject, -1))[1] in (-1, found.routes.get(a.subject))
    ]
    new_id = {a.id: k for k, a in enumerate(kept)}
    timed = [
        replace(a, id=new_id[a.id], start_s=s, end_s=s + a.duration_s)
        for a in kept
        for s in (found.starts[a.id],)
    ]
    moved = [(new_id[b], new_id[a]) for b, a in pairs if b in new_id and a in new_id]
    shares = {new_id[i]: x for i, x in nic.items() if i in new_id}
    deps = dependencies(timed, moved, shares, inbound_cap)
    new = Plan(plan.src, plan.dst, tuple(replace(a, depends_on=deps[a.id]) for a in timed))
    rerouted = tuple(
        f"{vm}: {rs[found.routes[vm]].describe()} instead of {rs[0].describe()}"
        for vm, rs in routes.of_vm.items()
        if found.routes.get(vm, 0) != 0
    )
    return _Retimed(new, rerouted)


def _rank(plan: Plan, objective: str) -> tuple[int, int]:
    if objective == "makespan":
        return plan.makespan_s, plan.mttr_s
    return plan.mttr_s, plan.makespan_s
