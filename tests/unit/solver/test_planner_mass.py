"""Ordering a mass consolidation: every VM of a running cluster repacked by first-fit
decreasing, the planner breaking the deadlocks with waves of pivots (rules kept at every
instant), and a partial plan where no full ordering exists (issue 13)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solver_builders import make_node, make_vm
from vmgrid.solver.answer import not_worse
from vmgrid.solver.api import SolveOptions, solve
from vmgrid.solver.btrplace.generate import consolidation_instance
from vmgrid.solver.btrplace.problem import to_problem
from vmgrid.solver.constraints import Ban, Constraint, Quarantine, Spread
from vmgrid.solver.heuristics import first_fit_decreasing
from vmgrid.solver.model import Model, NodeState
from vmgrid.solver.plan import ActionKind
from vmgrid.solver.planner import PlanError, PlannerOptions, build_plan
from vmgrid.solver.problem import Problem, prepare, target_model
from vmgrid.solver.validate import validate_plan


def repacked(nodes: int, seed: int, per_node: int = 10) -> tuple[Problem, Model, Model]:
    """A running cluster (`per_node` VMs a node, each under 3/4 full) and its first-fit
    decreasing repacking, emptied nodes switched off: nearly every VM moves onto full nodes."""
    problem = to_problem(consolidation_instance(nodes, nodes * per_node, seed, running=1))
    prep = prepare(problem)
    dst = target_model(prep, first_fit_decreasing(prep).hosts)
    off = [
        node.__class__(node.name, dict(node.capacity), NodeState.OFFLINE)
        for name, node in dst.nodes.items()
        if not dst.hosted(name)
    ]
    return problem, prep.src, dst.with_nodes(off)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.integers(8, 40), seed=st.integers(0, 10_000))
def test_a_first_fit_repacking_of_a_running_cluster_is_always_ordered(
    nodes: int, seed: int
) -> None:
    problem, src, dst = repacked(nodes, seed, per_node=9)
    plan = build_plan(src, dst, problem.constraints)
    assert plan.dst is dst
    assert validate_plan(plan, problem.constraints) == []
    moved = sum(1 for v, vm in src.vms.items() if dst.vms[v].host != vm.host)
    assert plan.migrations == moved
    assert len(plan.of_kind(ActionKind.SHUTDOWN_NODE)) == nodes - len(dst.used_nodes())


def test_solve_consolidates_a_running_cluster_with_a_valid_plan() -> None:
    """20 nodes / 200 VMs: first-fit reaches the packing bound; the planner gave up on its
    ordering ("no progress after cycle breaks") and the answer was unknown."""
    problem = to_problem(consolidation_instance(20, 200, 1, running=1))
    problem = Problem(problem.model, problem.constraints, "consolidation")
    result = solve(problem, SolveOptions(time_limit_s=20))
    assert result.status == "optimal"
    assert result.plan is not None and result.dst is not None
    assert result.stats.source == "heuristic" and result.stats.plan_note == ""
    assert len(result.dst.used_nodes()) == result.stats.nodes_lower_bound
    assert validate_plan(result.plan, problem.constraints) == []
    ffd = first_fit_decreasing(prepare(problem))
    assert ffd.dst is not None and len(ffd.dst.used_nodes()) == len(result.dst.used_nodes())
    ffd_moves = sum(1 for v, vm in problem.model.vms.items() if ffd.hosts[v] != vm.host)
    assert result.plan.migrations < ffd_moves  # the same packing, bins kept where they are


def test_pivots_of_a_mass_consolidation_keep_every_rule() -> None:
    """Quarantined nodes take no pivot, banned nodes none of the banned VMs, and a continuous
    spread holds at every instant while the cluster is repacked."""
    base = to_problem(consolidation_instance(20, 200, 3, running=1))
    src = base.model
    by_host: dict[str, str] = {}
    for name, vm in src.vms.items():
        by_host.setdefault(str(vm.host), name)
    spread_vms = tuple(sorted(by_host.values())[:6])
    quarantined = tuple(sorted(src.nodes)[:2])
    banned = tuple(v for v in sorted(src.vms)[:40] if src.vms[v].host not in ("3", "4"))
    rules: list[Constraint] = [
        *base.constraints,
        Quarantine(quarantined),
        Spread(spread_vms, continuous=True),
        Ban(banned, ("3", "4")),
    ]
    problem = Problem(src, tuple(rules), "consolidation")
    result = solve(problem, SolveOptions(use_cpsat=False))
    assert result.plan is not None and result.status in ("optimal", "feasible")
    assert validate_plan(result.plan, rules) == []
    assert result.plan.migrations > 100
    for a in result.plan.of_kind(ActionKind.MIGRATE):
        assert a.dst not in quarantined and a.src not in quarantined
        if a.subject in banned:
            assert a.dst not in ("3", "4")


def swap_without_pivot() -> tuple[Model, Model]:
    """n1 and n2 full, exchanging a and b, no node with room for either; c moves n3 -> n4."""
    nodes = [make_node(n).mem(1024).build() for n in ("n1", "n2")]
    nodes += [make_node(n).mem(512).build() for n in ("n3", "n4")]
    src = Model.of(
        nodes,
        [
            make_vm("a").mem(1024).on("n1").build(),
            make_vm("b").mem(1024).on("n2").build(),
            make_vm("c").mem(512).on("n3").build(),
        ],
    )
    moved = [src.vms["a"].on("n2"), src.vms["b"].on("n1"), src.vms["c"].on("n4")]
    return src, src.with_vms(moved)


def test_a_partial_plan_orders_what_it_can_and_reaches_a_valid_configuration() -> None:
    src, dst = swap_without_pivot()
    in_memory = PlannerOptions(suspend_across_nodes=False)
    with pytest.raises(PlanError, match="no cycle can be broken"):
        build_plan(src, dst, (), in_memory)
    plan = build_plan(src, dst, (), in_memory, partial=True)
    assert [(a.kind, a.subject, a.dst) for a in plan.actions] == [(ActionKind.MIGRATE, "c", "n4")]
    assert {v: vm.host for v, vm in plan.dst.vms.items()} == {"a": "n1", "b": "n2", "c": "n4"}
    assert validate_plan(plan, ()) == []


def test_a_planner_out_of_time_stops_cleanly() -> None:
    problem, src, dst = repacked(20, 1)
    with pytest.raises(PlanError, match="out of time"):
        build_plan(src, dst, problem.constraints, deadline=time.perf_counter() - 1)
    plan = build_plan(src, dst, problem.constraints, partial=True, deadline=time.perf_counter())
    assert plan.actions == ()
    assert all(plan.dst.vms[v].host == vm.host for v, vm in src.vms.items())
    assert plan.dst.online_nodes() == src.online_nodes()
    assert validate_plan(plan, problem.constraints) == []


def test_solve_returns_a_partial_plan_when_the_planner_runs_out_of_time() -> None:
    """No time left for the plan (budget spent, no reserve): the answer is the plan ordered so
    far (here nothing), valid, reported as partial, never an error or "unknown"."""
    problem = to_problem(consolidation_instance(20, 200, 1, running=1))
    opts = SolveOptions(use_cpsat=False, time_limit_s=1e-3, plan_reserve_s=0.0)
    result = solve(problem, opts)
    assert result.status == "feasible"
    assert result.plan is not None and result.dst is not None
    assert result.stats.source == "heuristic-partial"
    assert "could not be ordered" in result.stats.plan_note
    assert result.plan.dst is result.dst
    assert validate_plan(result.plan, problem.constraints) == []
    moved = {a.subject for a in result.plan.of_kind(ActionKind.MIGRATE)}
    assert all(
        result.dst.vms[v].host == vm.host for v, vm in problem.model.vms.items() if v not in moved
    )


def fragmented(
    k: int = 5, smaller: int = 2, extra: Sequence[tuple[int, Sequence[int]]] = ()
) -> Problem:
    """n0 (2k) holds two VMs of k, each of `smaller` nodes (k+1) one VM of k+1: valid and full.
    First-fit decreasing from scratch puts a VM of k+1 on n0 and then has no node for the last
    VM of k. `extra` nodes (capacity, VM sizes that fit) come after them."""
    nodes = [make_node("n0").mem(2 * k).build()]
    vms = [make_vm("a").mem(k).on("n0").build(), make_vm("b").mem(k).on("n0").build()]
    for i in range(1, smaller + 1):
        nodes.append(make_node(f"n{i}").mem(k + 1).build())
        vms.append(make_vm(f"c{i}").mem(k + 1).on(f"n{i}").build())
    for i, (cap, sizes) in enumerate(extra, start=smaller + 1):
        nodes.append(make_node(f"n{i}").mem(cap).build())
        vms += [make_vm(f"x{i}_{j}").mem(q).on(f"n{i}").build() for j, q in enumerate(sizes)]
    return Problem(Model.of(nodes, vms), (), "consolidation>migrations")


def test_consolidating_where_first_fit_leaves_a_vm_unplaced_starts_from_the_placement() -> None:
    problem = fragmented()
    assert first_fit_decreasing(prepare(problem)).unplaced == ["b"]
    result = solve(problem, SolveOptions(use_cpsat=False))
    assert result.status == "feasible" and result.plan is not None
    assert result.plan.migrations == 0
    assert validate_plan(result.plan, ()) == []


@st.composite
def fragmented_clusters(draw: st.DrawFn) -> Problem:
    """`fragmented` with random sizes, plus up to three nodes of random smaller capacity
    holding VMs that fit: a valid placement that first-fit decreasing often cannot rebuild."""
    k = draw(st.integers(2, 8))
    extra = []
    for cap in draw(st.lists(st.integers(1, k), max_size=3)):
        sizes = draw(st.lists(st.integers(1, cap), max_size=3))
        while sum(sizes) > cap:
            sizes.pop()
        extra.append((cap, sizes))
    problem = fragmented(k, draw(st.integers(1, 3)), extra)
    objective = draw(st.sampled_from(["consolidation", "consolidation>migrations"]))
    return Problem(problem.model, (), objective)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=fragmented_clusters())
def test_the_heuristic_answers_whenever_the_current_placement_is_valid(problem: Problem) -> None:
    result = solve(problem, SolveOptions(use_cpsat=False))
    assert result.status in ("optimal", "feasible"), result.violated
    assert result.plan is not None and result.dst is not None
    assert validate_plan(result.plan, ()) == []
    assert len(result.dst.used_nodes()) <= len(problem.model.used_nodes())


def test_a_tight_repacking_with_no_free_pivot_is_ordered_without_going_round() -> None:
    """Every node that could take a pivot is waited for: a and c1 swap between full nodes, b
    and x4_0 likewise. Pivots onto awaited nodes (each VM at most once), else suspend/resume,
    order it; pivoting the first VM to the first node with room went round until the planner
    gave up ("no progress after cycle breaks")."""
    caps = {"n0": 8, "n1": 5, "n2": 5, "n3": 5, "n4": 4, "n5": 3, "n6": 3}
    sizes = {"a": 4, "b": 4, "c1": 5, "c2": 5, "c3": 5, "x4_0": 2, "x5_0": 1, "x6_0": 1}
    sizes["x6_1"] = 1
    before = {"a": "n0", "b": "n0", "c1": "n1", "c2": "n2", "c3": "n3", "x4_0": "n4"}
    before |= {"x5_0": "n5", "x6_0": "n6", "x6_1": "n6"}
    after = before | {"a": "n1", "b": "n4", "c1": "n0", "x4_0": "n0", "x5_0": "n0"}
    after |= {"x6_0": "n1"}
    nodes = [make_node(n).mem(c).build() for n, c in caps.items()]
    src = Model.of(nodes, [make_vm(v).mem(q).on(before[v]).build() for v, q in sizes.items()])
    dst = src.with_vms([src.vms[v].on(after[v]) for v in sizes])
    dst = dst.with_nodes([replace(dst.nodes["n5"], state=NodeState.OFFLINE)])
    plan = build_plan(src, dst)
    assert plan.dst is dst
    assert validate_plan(plan, ()) == []
    assert plan.migrations == 6


def test_an_answer_is_compared_by_the_objective_before_it_replaces_another() -> None:
    """The repair model frees only some VMs: at 200 nodes / 2,000 VMs its answer used 171
    nodes where first-fit's used 133, and replaced it; `solve` now keeps the better one."""
    nodes = [make_node(n).mem(8).build() for n in ("n1", "n2")]
    src = Model.of(nodes, [make_vm(v).mem(2).on(n).build() for v, n in (("a", "n1"), ("b", "n2"))])
    prep = prepare(Problem(src, (), "consolidation>migrations"))
    packed: dict[str, str | None] = {"a": "n1", "b": "n1"}
    home: dict[str, str | None] = {"a": "n1", "b": "n2"}
    assert not_worse(prep, packed, home) and not not_worse(prep, home, packed)
    assert not_worse(prep, home, None)
