"""Repair-mode fixes: fewest moves for resourceCapacity, lower bounds that stop the search."""

from __future__ import annotations

from solver_builders import make_node, make_vm
from vmgrid.solver import Model, Problem, SolveOptions, solve
from vmgrid.solver.api import migrations_lower_bound
from vmgrid.solver.constraints import Ban, Offline, ResourceCapacity, Spread
from vmgrid.solver.problem import prepare
from vmgrid.solver.validate import validate_plan


def crowded(vms_per_node: int = 10) -> Model:
    """Three nodes with room to spare, n0 full of VMs of 100..(100 + 10*k) millicores."""
    nodes = [make_node(f"n{i}").cpu(100_000).mem(100_000).build() for i in range(3)]
    vms = [make_vm(f"v{k}").cpu(100 + 10 * k).mem(10).on("n0").build() for k in range(vms_per_node)]
    return Model.of(nodes, vms)


def test_resource_capacity_sheds_the_fewest_vms_not_the_whole_node() -> None:
    model = crowded()
    load = model.load("n0", "cpu")
    rc = ResourceCapacity(("n0",), "cpu", load - 150)
    for options in (SolveOptions(), SolveOptions(use_cpsat=False)):
        result = solve(Problem(model, [rc]), options)
        assert result.plan is not None and result.dst is not None
        assert result.plan.migrations == 1  # the 190-millicore VM alone covers the excess
        assert rc.is_satisfied(model, result.dst)
        assert validate_plan(result.plan) == []


def test_migration_floor_counts_only_forced_moves() -> None:
    model = crowded(4)
    spread = Spread(("v0", "v1"))  # violated now, but one of the two may stay
    assert migrations_lower_bound(prepare(Problem(model, [spread]))) == 0
    offline = Offline(("n0",))
    assert migrations_lower_bound(prepare(Problem(model, [offline]))) == 4
    ban = Ban(("v2",), ("n0",))
    assert migrations_lower_bound(prepare(Problem(model, [ban]))) == 1


def test_heuristic_at_the_floor_is_reported_optimal_without_cpsat() -> None:
    result = solve(Problem(crowded(4), [Offline(("n0",))]))
    assert result.status == "optimal"
    assert result.stats.source == "heuristic" and result.stats.cpsat_status == "skipped"
    assert result.stats.migrations == result.stats.migrations_lower_bound == 4


def test_wall_budget_still_returns_a_valid_plan() -> None:
    options = SolveOptions(time_limit_s=0.1, plan_reserve_s=0.05)
    result = solve(Problem(crowded(), [Spread(("v0", "v1"))]), options)
    assert result.plan is not None and validate_plan(result.plan) == []
