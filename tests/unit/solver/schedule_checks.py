"""What the schedule tests check of a plan, shared by the interval model's tests."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import assume
from vmgrid.solver import Model, Plan, PlanError
from vmgrid.solver.constraints import Constraint
from vmgrid.solver.planner import PlannerOptions, build_plan
from vmgrid.solver.validate import validate_plan


def rank(plan: Plan, objective: str) -> tuple[int, int]:
    """The plan's figures, the objective's first."""
    if objective == "makespan":
        return plan.makespan_s, plan.mttr_s
    return plan.mttr_s, plan.makespan_s


def deps_respected(plan: Plan) -> bool:
    """Action ids are their positions and every action starts after those it depends on."""
    by_id = {a.id: a for a in plan.actions}
    ids_in_order = [a.id for a in plan.actions] == list(range(len(plan.actions)))
    return ids_in_order and all(
        by_id[d].end_s <= a.start_s for a in plan.actions for d in a.depends_on
    )


def valid_greedy_plan(
    src: Model, dst: Model, rules: Sequence[Constraint], opts: PlannerOptions
) -> Plan:
    """The planner's plan of a generated case; the example is rejected when there is none or
    it does not validate (the schedule is checked against a valid start)."""
    try:
        greedy = build_plan(src, dst, rules, opts)
    except PlanError:
        assume(False)
        raise
    assume(validate_plan(greedy, rules) == [])
    return greedy
