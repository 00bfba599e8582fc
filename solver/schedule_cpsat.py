"""Re-time a plan's actions with CP-SAT to lower its makespan or its MTTR.

`improve_schedule(plan, constraints, planner, options)` takes the planner's greedy plan (its
actions, pivots, suspend/resume pairs, kinds, durations and nodes stay as they are) and gives
each action a new start:

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

Sound by construction and by check: the re-timed plan is kept only when CP-SAT found a strictly
better one by the chosen objective AND the independent validator (`vmgrid.solver.validate`,
continuous rules over time included) finds nothing wrong; otherwise the greedy plan comes back
unchanged. `ScheduleResult.used` says which one did, and `note` why.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ortools.sat.python import cp_model
from vmgrid.solver.model import ModelError
from vmgrid.solver.plan import ActionKind, Plan
from vmgrid.solver.plan_scheduler import nics
from vmgrid.solver.planner import PlannerOptions
from vmgrid.solver.schedule_model import (
    dependencies,
    nic_shares,
    precedences,
    stays,
)
from vmgrid.solver.validate import validate_plan
from vmgrid.solver.validate_rules import as_rules

SCHEDULES = ("greedy", "makespan", "mttr")


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
    """What the validator found wrong with CP-SAT's schedule (then the greedy one was used)."""

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
    bandwidth = nics(plan.src, popts)
    nic = nic_shares(plan, popts, bandwidth)
    facts = (pairs, nic, popts.max_inbound_per_node, bandwidth)
    # MTTR alone searches poorly from the greedy hint: a makespan-first search (which also
    # lowers the sum of end times) hints it, and the better of the two is kept.
    phases = ["makespan"] if opts.objective == "makespan" else ["makespan", "mttr"]
    hint = [a.start_s for a in plan.actions]
    found: list[Plan] = []
    status = "unknown"
    for objective in phases:
        model = _Model(plan, objective, hint)
        if not model.post(*facts):
            return keep("skipped", "the greedy plan breaks the model's capacity: greedy kept")
        status, starts = _search(model, opts, opts.time_limit_s / len(phases))
        if starts is not None:
            hint = starts
            found.append(_retimed(plan, starts, pairs, nic, bool(popts.max_inbound_per_node)))
    if not found:
        return keep(status, "CP-SAT found no schedule in its time limit: greedy kept")
    new = min(found, key=lambda p: _rank(p, opts.objective))
    if _rank(new, opts.objective) >= _rank(plan, opts.objective):
        proven = " (proven optimal)" if status == "optimal" else ""
        return keep(
            status, f"no better {opts.objective} than the greedy schedule{proven}: greedy kept"
        )
    bad = tuple(v.message for v in validate_plan(new, rules))
    if bad:
        return keep(status, "CP-SAT's schedule does not validate: greedy kept", bad)
    spent = time.perf_counter() - t0
    return ScheduleResult(
        new, "cpsat", opts.objective, status, plan.makespan_s, plan.mttr_s, spent, note
    )


def _search(model: _Model, opts: ScheduleOptions, limit_s: float) -> tuple[str, list[int] | None]:
    """CP-SAT's status name and the starts it found (None: no schedule in time)."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = limit_s
    solver.parameters.num_workers = opts.num_workers
    solver.parameters.random_seed = opts.seed
    code = solver.solve(model.cp)
    status = solver.status_name(code).lower()
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return status, None
    return status, [int(solver.value(s)) for s in model.start]


def _retimed(
    plan: Plan,
    starts: Sequence[int],
    pairs: Iterable[tuple[int, int]],
    nic: dict[int, tuple[int, list[tuple[str, str]]]],
    inbound_cap: bool,
) -> Plan:
    """`plan` with new starts (same durations) and the dependencies of the new order."""
    timed = [
        replace(a, start_s=s, end_s=s + a.duration_s)
        for a, s in zip(plan.actions, starts, strict=True)
    ]
    deps = dependencies(timed, pairs, nic, inbound_cap)
    return Plan(plan.src, plan.dst, tuple(replace(a, depends_on=deps[a.id]) for a in timed))


def _rank(plan: Plan, objective: str) -> tuple[int, int]:
    if objective == "makespan":
        return plan.makespan_s, plan.mttr_s
    return plan.mttr_s, plan.makespan_s


class _Model:
    """The CP-SAT interval model of one plan; `start[i]` is action i's start."""

    def __init__(self, plan: Plan, objective: str, hint: Sequence[int]) -> None:
        self.plan, self.cp = plan, cp_model.CpModel()
        durations = [a.duration_s for a in plan.actions]
        greedy_end = plan.makespan_s
        self.horizon = greedy_end if objective == "makespan" else 2 * greedy_end
        self.start: list[cp_model.IntVar] = []
        self.end: list[cp_model.IntVar] = []
        self.interval: list[cp_model.IntervalVar] = []
        for a, d, h in zip(plan.actions, durations, hint, strict=True):
            s = self.cp.new_int_var(0, self.horizon - d, f"start{a.id}")
            e = self.cp.new_int_var(d, self.horizon, f"end{a.id}")
            self.start.append(s)
            self.end.append(e)
            self.interval.append(self.cp.new_interval_var(s, d, e, f"action{a.id}"))
            self.cp.add_hint(s, h)
        total = sum(self.end)
        if objective == "makespan":
            last = self.cp.new_int_var(0, self.horizon, "makespan")
            self.cp.add_max_equality(last, self.end)
            self.cp.minimize(last * (len(self.end) * self.horizon + 1) + total)
        else:
            self.cp.add(total <= plan.mttr_s)
            self.cp.minimize(total)

    def post(
        self,
        pairs: Iterable[tuple[int, int]],
        nic: dict[int, tuple[int, list[tuple[str, str]]]],
        inbound_cap: int | None,
        bandwidth: dict[str, int],
    ) -> bool:
        """Post precedences and cumulatives; False when a fixed base already overflows."""
        for before, after in pairs:
            self.cp.add(self.end[before] <= self.start[after])
        if not self._capacity():
            return False
        on_side: dict[tuple[str, str], list[int]] = {}
        for i, (_, sides) in nic.items():
            for side in sides:
                on_side.setdefault(side, []).append(i)
        for (node, _), ids in on_side.items():
            self._cumulative(ids, [nic[i][0] for i in ids], bandwidth[node])
        if inbound_cap:
            inbound: dict[str, list[int]] = {}
            for a in self.plan.actions:
                if a.kind is ActionKind.MIGRATE and a.dst is not None:
                    inbound.setdefault(a.dst, []).append(a.id)
            for ids in inbound.values():
                self._cumulative(ids, [1] * len(ids), inbound_cap)
        return True

    def _cumulative(self, ids: Sequence[int], demands: Sequence[int], capacity: int) -> None:
        if sum(demands) > capacity:
            self.cp.add_cumulative([self.interval[i] for i in ids], demands, capacity)

    def _capacity(self) -> bool:
        base: dict[tuple[str, str], int] = {}
        moving: dict[tuple[str, str], list[tuple[cp_model.IntervalVar, int]]] = {}
        for k, stay in enumerate(stays(self.plan)):
            if stay.since is None and stay.until is None:
                for rc, q in stay.demand.items():
                    base[(stay.node, rc)] = base.get((stay.node, rc), 0) + q
                continue
            span = self._span(k, stay.since, stay.until)
            for rc, q in stay.demand.items():
                if q:
                    moving.setdefault((stay.node, rc), []).append((span, q))
        for (node, rc), items in moving.items():
            room = self.plan.src.nodes[node].cap(rc) - base.get((node, rc), 0)
            if room < 0:
                return False
            if sum(q for _, q in items) > room:
                self.cp.add_cumulative([x for x, _ in items], [q for _, q in items], room)
        return True

    def _span(self, k: int, since: int | None, until: int | None) -> cp_model.IntervalVar:
        """The interval of a presence: from `since`'s start (0) to `until`'s end (horizon)."""
        start: cp_model.LinearExprT = 0 if since is None else self.start[since]
        end: cp_model.LinearExprT = self.horizon if until is None else self.end[until]
        size = self.cp.new_int_var(0, self.horizon, f"stay{k}")
        return self.cp.new_interval_var(start, size, end, f"stay{k}")
