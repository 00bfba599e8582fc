"""Issue #3 polish: the wall budget covers the whole solve, `optimal` means proven, and the
migrations lower bound counts `resourceCapacity` groups."""

from __future__ import annotations

from pathlib import Path

from solver_builders import make_node, make_vm
from vmgrid.solver import Model, Problem, SolveOptions, solve
from vmgrid.solver.api import migrations_lower_bound
from vmgrid.solver.btrplace.bounds import min_migrations
from vmgrid.solver.btrplace.problem import to_problem
from vmgrid.solver.btrplace.reader import load_instance
from vmgrid.solver.constraints import ResourceCapacity
from vmgrid.solver.cpsat import CpsatOptions, build_and_solve
from vmgrid.solver.problem import prepare
from vmgrid.solver.validate import validate_plan

DATA = Path(__file__).parents[2] / "data" / "btrplace"


def three_sixes() -> Model:
    """Three VMs of 6 CPUs on nodes of 10: the bin-packing bound says 2, yet 3 are needed."""
    nodes = [make_node(f"n{i}").cpu(10).mem(100).build() for i in range(3)]
    return Model.of(nodes, [make_vm(f"v{i}").cpu(6).mem(1).on(f"n{i}").build() for i in range(3)])


def two_halves() -> Model:
    """Two half-full nodes: one node can hold both VMs, which meets the bound of 1."""
    nodes = [make_node(f"n{i}").cpu(10).mem(100).build() for i in range(2)]
    return Model.of(nodes, [make_vm(f"v{i}").cpu(5).mem(1).on(f"n{i}").build() for i in range(2)])


def loaded_pair() -> Model:
    """n0 and n1 each hold VMs of 10, 20, 30 millicores (60 per node, 120 together)."""
    nodes = [make_node(f"n{i}").cpu(1000).mem(1000).build() for i in range(3)]
    vms = [
        make_vm(f"v{n}{k}").cpu(10 * (k + 1)).mem(1).on(f"n{n}").build()
        for n in range(2)
        for k in range(3)
    ]
    return Model.of(nodes, vms)


def lower_bound(model: Model, *constraints: ResourceCapacity) -> int:
    return migrations_lower_bound(prepare(Problem(model, list(constraints))))


def test_heuristic_above_the_packing_bound_is_feasible_not_optimal() -> None:
    result = solve(Problem(three_sixes(), objective="consolidation"), SolveOptions(use_cpsat=False))
    assert result.stats.cpsat_status == "skipped"
    assert result.stats.nodes_used == 3 > result.stats.nodes_lower_bound == 2
    assert result.status == "feasible"


def test_cpsat_proves_optimality_on_the_full_model() -> None:
    result = solve(Problem(three_sixes(), objective="consolidation"))
    assert result.stats.cpsat_status == "optimal" and result.status == "optimal"


def test_heuristic_at_the_packing_bound_is_optimal_without_cpsat() -> None:
    result = solve(Problem(two_halves(), objective="consolidation"))
    assert result.stats.nodes_used == result.stats.nodes_lower_bound == 1
    assert result.stats.cpsat_status == "skipped" and result.status == "optimal"
    assert result.stats.cpsat_note == "at the lower bound"


def test_acceptable_gap_keeps_the_heuristic_but_not_as_optimal() -> None:
    options = SolveOptions(acceptable_gap=0.5)
    result = solve(Problem(three_sixes(), objective="consolidation"), options)
    assert result.stats.cpsat_status == "skipped"
    assert result.stats.cpsat_note == "within the accepted gap"
    assert result.status == "feasible" and result.plan is not None


def test_no_time_left_skips_cpsat_and_still_plans() -> None:
    options = SolveOptions(time_limit_s=0.01, plan_reserve_s=0.0)
    result = solve(Problem(three_sixes(), objective="consolidation"), options)
    assert result.stats.cpsat_status == "skipped"
    assert result.stats.cpsat_note == "no time left after the heuristic"
    assert result.status == "feasible"
    assert result.plan is not None and validate_plan(result.plan) == []


def test_cpsat_skips_a_model_too_large_for_its_budget() -> None:
    prep = prepare(Problem(three_sixes(), objective="consolidation"))
    options = CpsatOptions(time_limit_s=2.0, build_s_per_variable=1.0)
    result = build_and_solve(prep, {}, options)
    assert result.status == "skipped" and "do not fit" in result.note
    assert result.hosts == {}


def test_single_node_resource_capacity_counts_in_the_bound() -> None:
    rc = ResourceCapacity(("n0",), "cpu", 25)  # n0 holds 60: shedding 30 and 20 gets to 10
    assert lower_bound(loaded_pair(), rc) == 2


def test_group_resource_capacity_counts_the_fewest_evictions_from_the_group() -> None:
    rc = ResourceCapacity(("n0", "n1"), "cpu", 60)  # 120 -> 60: the two 30s suffice
    assert lower_bound(loaded_pair(), rc) == 2


def test_overlapping_groups_do_not_count_a_vm_twice() -> None:
    whole = ResourceCapacity(("n0", "n1"), "cpu", 60)
    alone = ResourceCapacity(("n0",), "cpu", 25)
    assert 2 <= lower_bound(loaded_pair(), whole, alone) <= 3  # 3 is the true minimum


def test_bound_is_reached_under_a_group_resource_capacity() -> None:
    rc = ResourceCapacity(("n0", "n1"), "cpu", 60)
    result = solve(Problem(loaded_pair(), [rc], objective="migrations"))
    assert result.plan is not None and result.dst is not None
    assert rc.is_satisfied(loaded_pair(), result.dst)
    assert result.stats.migrations == result.stats.migrations_lower_bound == 2
    assert result.status == "optimal"


def test_core_bound_agrees_with_the_btrplace_bound_on_issue_100() -> None:
    inst = load_instance(DATA / "std-perf-issue-100.json.gz")
    assert migrations_lower_bound(prepare(to_problem(inst))) == min_migrations(inst) == 13
