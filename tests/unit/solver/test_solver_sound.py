"""The review's cases of false "infeasible" and missing plans, and explanations with subjects."""

from __future__ import annotations

import random

from solver_builders import make_node, make_vm
from vmgrid.solver import VM, Model, Problem, SolveOptions, VMState, solve
from vmgrid.solver.constraints import Ban, Gather, Lonely, Offline, Preserve, Root, Running
from vmgrid.solver.validate import validate_plan

BUDGET = SolveOptions(time_limit_s=20)


def assert_valid_plan(problem: Problem, options: SolveOptions = BUDGET) -> int:
    """Solve `problem`, check the plan independently, return its migration count."""
    result = solve(problem, options)
    assert result.status in ("optimal", "feasible"), (result.status, result.conflicts)
    assert result.plan is not None
    assert validate_plan(result.plan, problem.constraints) == []
    return result.plan.migrations


def test_offline_node_whose_vm_needs_another_vm_shuffled_is_feasible() -> None:
    """300 half-full nodes; the VM leaving n0 needs 700 where every node has 500 free: one other
    VM must move first. The restricted repair model has no answer; widening finds one."""
    nodes = [make_node(f"n{i}").cpu(1000).mem(1000).build() for i in range(300)]
    vms = [make_vm(f"f{i}").cpu(500).mem(100).on(f"n{i}").build() for i in range(1, 300)]
    vms.append(make_vm("big").cpu(700).mem(100).on("n0").build())
    problem = Problem(Model.of(nodes, vms), [Offline(("n0",))], "migrations")
    assert assert_valid_plan(problem) == 2


def test_lonely_vm_pinned_in_place_still_keeps_others_off_its_node() -> None:
    """x is lonely and rooted on n0 (not free in the repair model); y must leave n1 and n0 has
    the most room, but only n2 may take it. The rule was dropped when none of its VMs was free."""
    nodes = [
        make_node("n0").cpu(1000).mem(1000).build(),
        make_node("n1").cpu(1000).mem(1000).build(),
    ]
    nodes.append(make_node("n2").cpu(150).mem(1000).build())
    vms = [
        make_vm("x").cpu(100).mem(100).on("n0").build(),
        make_vm("y").cpu(100).mem(100).on("n1").build(),
        make_vm("z").cpu(100).mem(100).on("n1").build(),
    ]
    lonely = [Lonely(("x",)), Root(("x",))]
    problem = Problem(Model.of(nodes, vms), [*lonely, Ban(("y",), ("n1",))], "migrations")
    result = solve(problem, BUDGET)
    assert result.dst is not None and result.dst.vms["y"].host == "n2"
    assert result.plan is not None and validate_plan(result.plan, problem.constraints) == []
    both_leave = Problem(Model.of(nodes, vms), [*lonely, Offline(("n1",))], "migrations")
    result = solve(both_leave, BUDGET)
    assert result.status == "infeasible"  # y and z both need n2, which holds one of them
    assert {"lonely(x)", "offline(n1)"} <= set(result.conflicts)


def test_one_gather_among_3000_vms_gets_a_plan() -> None:
    rng = random.Random(0)
    nodes = [make_node(f"n{i}").cpu(10_000).mem(10_000).build() for i in range(600)]
    vms = [
        make_vm(f"v{i}")
        .cpu(rng.randrange(1000, 2000))
        .mem(rng.randrange(1000, 2000))
        .on(f"n{i % 600}")
        .build()
        for i in range(3000)
    ]
    problem = Problem(Model.of(nodes, vms), [Gather(("v1", "v2", "v3"))], "migrations")
    assert assert_valid_plan(problem) >= 2


def test_sleeping_vm_on_a_node_going_offline_does_not_block_it() -> None:
    nodes = [make_node(f"n{i}").cpu(1000).mem(1000).build() for i in range(2)]
    vms = [
        VM("s", {"cpu": 100, "mem": 100}, VMState.SLEEPING, "n0"),
        make_vm("r").cpu(100).mem(100).on("n0").build(),
    ]
    problem = Problem(Model.of(nodes, vms), [Offline(("n0",))], "migrations")
    assert assert_valid_plan(problem) == 1


def test_preserve_on_a_resource_no_node_has_is_infeasible_naming_vm_rule_and_resource() -> None:
    nodes = [make_node(f"n{i}").cpu(1000).mem(1000).build() for i in range(2)]
    vms = [make_vm("a").cpu(100).mem(100).on("n0").build()]
    result = solve(Problem(Model.of(nodes, vms), [Preserve("a", "gpu", 2)]), BUDGET)
    assert result.status == "infeasible"
    assert "preserve(a: gpu >= 2)" in result.conflicts
    assert any("VM a needs gpu 2" in c and "0 gpu" in c for c in result.conflicts)


def test_capacity_conflict_names_the_short_resource() -> None:
    nodes = [make_node(f"n{i}").cpu(1000).mem(1000).build() for i in range(2)]
    vms = [make_vm(f"v{i}").cpu(600).mem(10).ready().build() for i in range(3)]
    result = solve(Problem(Model.of(nodes, vms), [Running(("v0", "v1", "v2"))]), BUDGET)
    assert result.status == "infeasible"
    assert "capacity(every node: cpu)" in result.conflicts
    assert "capacity(every node: mem)" not in result.conflicts


def test_greedy_evicts_a_vm_that_can_go_elsewhere_not_the_largest() -> None:
    """n0 is over by 100 after a preserve; its largest VM fits nowhere, a small one does."""
    nodes = [
        make_node("n0").cpu(1000).mem(1000).build(),
        make_node("n1").cpu(400).mem(1000).build(),
    ]
    vms = [
        make_vm("large").cpu(600).mem(10).on("n0").build(),
        make_vm("small").cpu(200).mem(10).on("n0").build(),
        make_vm("grow").cpu(100).mem(10).on("n0").build(),
    ]
    problem = Problem(Model.of(nodes, vms), [Preserve("grow", "cpu", 300)], "migrations")
    from vmgrid.solver.heuristics import greedy_repair
    from vmgrid.solver.problem import prepare

    repair = greedy_repair(prepare(problem))
    assert repair.dst is not None and not repair.violated
    assert repair.hosts["small"] == "n1" and repair.hosts["large"] == "n0"
    assert assert_valid_plan(problem, SolveOptions(use_cpsat=False)) == 1


def test_validator_takes_demands_from_the_problem_not_the_plan() -> None:
    """A do-nothing plan on a node that preserve overloads no longer grades itself clean."""
    from vmgrid.solver import Plan

    nodes = [
        make_node("n0").cpu(1000).mem(1000).build(),
        make_node("n1").cpu(1000).mem(1000).build(),
    ]
    vms = [
        make_vm("a").cpu(600).mem(10).on("n0").build(),
        make_vm("b").cpu(300).mem(10).on("n0").build(),
    ]
    model = Model.of(nodes, vms)
    grow = Preserve("b", "cpu", 500)
    lazy = Plan(model, model.with_vms([model.vms["b"].with_demand({"cpu": 500, "mem": 10})]), ())
    assert {v.rule for v in validate_plan(lazy, [grow])} == {"final-capacity"}
    assert assert_valid_plan(Problem(model, [grow], "migrations")) == 1
