"""solve(): objectives, heuristics, repair mode, explanations."""

from __future__ import annotations

import pytest
from solver_builders import make_node, make_vm
from vmgrid.solver import Model, Problem, SolveOptions, solve
from vmgrid.solver.constraints import Ban, Fence, Offline, Preserve, Spread
from vmgrid.solver.heuristics import first_fit_decreasing, greedy_repair
from vmgrid.solver.objectives import ObjectiveError, parse
from vmgrid.solver.problem import prepare


def spread_out(n_nodes: int = 4, per_node: int = 1) -> Model:
    nodes = [make_node(f"n{i}").cpu(4000).mem(4096).build() for i in range(n_nodes)]
    vms = [
        make_vm(f"v{i}_{j}").cpu(1000).mem(1024).on(f"n{i}").build()
        for i in range(n_nodes)
        for j in range(per_node)
    ]
    return Model.of(nodes, vms)


def test_consolidation_packs_onto_fewest_nodes_and_powers_off_the_rest() -> None:
    result = solve(Problem(spread_out(), objective="consolidation"))
    assert result.dst is not None
    assert len(result.dst.used_nodes()) == 1 == result.stats.nodes_lower_bound
    assert sum(1 for n in result.dst.nodes.values() if n.online) == 1
    assert all("consolidation" in a.reason or "offline" in a.reason for a in result.plan.actions)


def test_overloaded_node_sheds_the_fewest_vms() -> None:
    src = spread_out(3, 2)
    preserve = [Preserve("v0_0", "cpu", 3500)]
    result = solve(Problem(src, preserve, "migrations"))
    assert result.dst is not None and result.plan is not None
    assert result.stats.migrations == 1 == result.stats.migrations_lower_bound
    reason = result.plan.of_kind(result.plan.actions[0].kind)[0].reason
    assert "n0 over capacity on cpu" in reason


def test_offline_node_is_emptied_and_explained() -> None:
    result = solve(Problem(spread_out(3, 1), [Offline(("n0",))]))
    assert result.plan is not None
    reasons = {a.subject: a.reason for a in result.plan.actions}
    assert reasons["v0_0"] == "node n0 must go offline"
    assert reasons["n0"] == "node must be offline at the end"


def test_heuristics_alone_match_the_solver_on_simple_cases() -> None:
    prep = prepare(Problem(spread_out(3, 2), [Offline(("n0",))]))
    repair = greedy_repair(prep)
    assert repair.dst is not None and not repair.violated
    assert {h for v, h in repair.hosts.items() if v.startswith("v0")} <= {"n1", "n2"}
    ffd = first_fit_decreasing(prep)
    assert ffd.dst is not None and len(ffd.dst.used_nodes()) == 2


def test_heuristic_only_mode_returns_a_valid_plan() -> None:
    result = solve(Problem(spread_out(3, 2), [Offline(("n0",))]), SolveOptions(use_cpsat=False))
    assert result.status in ("optimal", "feasible") and result.stats.source == "heuristic"


def test_infeasible_problem_names_the_conflicting_constraints() -> None:
    src = spread_out(2, 1)
    conflicting = [Ban(("v0_0",), ("n1",)), Fence(("v0_0",), ("n1",))]
    unrelated = [Spread(("v1_0", "v0_0"))]
    result = solve(Problem(src, [*conflicting, *unrelated]))
    assert result.status == "infeasible"
    assert "ban(v0_0; nodes n1)" in result.conflicts
    assert "fence(v0_0; nodes n1)" in result.conflicts
    assert "spread(v1_0,v0_0)" not in result.conflicts


def test_objective_names_parse_and_bad_ones_are_rejected() -> None:
    assert parse("consolidation>2*mttr+balance") == [
        [(1, "consolidation")],
        [(2, "mttr"), (1, "balance")],
    ]
    with pytest.raises(ObjectiveError, match="bad objective 'speed'"):
        parse("speed")


def test_balance_spreads_load() -> None:
    src = Model.of(
        [make_node(n).cpu(4000).mem(4096).build() for n in ("n1", "n2")],
        [make_vm(f"v{i}").cpu(1000).mem(512).on("n1").build() for i in range(4)],
    )
    result = solve(Problem(src, objective="balance"))
    assert result.dst is not None
    assert len(result.dst.running_on("n1")) == 2 == len(result.dst.running_on("n2"))
