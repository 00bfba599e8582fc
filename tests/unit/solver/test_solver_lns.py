"""Large-neighbourhood search: never worse, never invalid, every rule kind kept, and gains
where the heuristic leaves some (migrations of a repacked running cluster)."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_solver_props import instances, rule_sets
from vmgrid.solver import VM as VMValue
from vmgrid.solver import (
    CpsatOptions,
    Model,
    Node,
    NodeState,
    Problem,
    SolveOptions,
    VMState,
    solve,
)
from vmgrid.solver.btrplace.generate import consolidation_instance
from vmgrid.solver.btrplace.problem import to_problem
from vmgrid.solver.constraints import (
    Among,
    Ban,
    Constraint,
    Fence,
    Gather,
    Lonely,
    MaxOnline,
    NetworkAffinity,
    Preserve,
    Quarantine,
    ResourceCapacity,
    Root,
    RunningCapacity,
    Split,
    Spread,
)
from vmgrid.solver.heuristics import first_fit_decreasing, greedy_repair
from vmgrid.solver.lns import LnsOptions, improve
from vmgrid.solver.lns_eval import Judge
from vmgrid.solver.problem import prepare, target_model
from vmgrid.solver.validate import validate_plan

QUICK = LnsOptions(step_s=0.5, patience=4, first_size=8)


def _valid(prep_problem: Problem, hosts: dict[str, str]) -> bool:
    """Both the plugins' own checks and the validator's rule checks accept `hosts`."""
    prep = prepare(prep_problem)
    judge = Judge(prep)
    if judge.violations(hosts):
        return False
    dst = _powered(prep_problem, hosts)
    return all(c.is_satisfied(prep.src, dst) for c in prep_problem.constraints)


def _powered(problem: Problem, hosts: dict[str, str]) -> Model:
    """The destination with the nodes the solver switches off (empty switchable ones) off."""
    prep = prepare(problem)
    online = Judge(prep).online(hosts)
    dst = target_model(prep, hosts)
    off = [
        replace(n, state=NodeState.OFFLINE) for name, n in dst.nodes.items() if name not in online
    ]
    return dst.with_nodes(off)


def _destinations(problem: Problem) -> list[dict[str, str]]:
    prep = prepare(problem)
    placed = [v for v, s in prep.vm_state.items() if s is VMState.RUNNING]
    online = [n for n, s in prep.node_state.items() if s.value == "online"]
    return [
        dict(zip(placed, hosts, strict=True))
        for hosts in itertools.product(online, repeat=len(placed))
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_lns_never_returns_worse_or_invalid(data: st.DataObject) -> None:
    model = data.draw(instances())
    rules = data.draw(rule_sets(model))
    objective = data.draw(st.sampled_from(["migrations", "consolidation>migrations", "mttr"]))
    problem = Problem(model, rules, objective)
    valid = [h for h in _destinations(problem) if _valid(problem, h)]
    assume(valid)
    prep = prepare(problem)
    judge = Judge(prep)
    start = data.draw(st.sampled_from(valid))
    result = improve(prep, start, time.perf_counter() + 5, QUICK)
    assert result.before == judge.value(start)
    assert result.after <= result.before
    assert result.after == judge.value(result.hosts)
    assert _valid(problem, result.hosts), (start, result.hosts)
    assert result.rejected == 0
    best = min(judge.value(h) for h in valid)
    assert result.after >= best


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_lns_repair_never_breaks_more_and_a_repaired_answer_is_valid(data: st.DataObject) -> None:
    model = data.draw(instances())
    rules = data.draw(rule_sets(model))
    problem = Problem(model, rules, "migrations")
    every = _destinations(problem)
    assume(every)
    prep = prepare(problem)
    judge = Judge(prep)
    start = data.draw(st.sampled_from(every))
    broken = len(judge.violations(start))  # most starts break something; valid ones stay valid
    result = improve(prep, start, time.perf_counter() + 5, QUICK)
    assert result.violations_before == broken
    assert result.violations_after == len(judge.violations(result.hosts)) <= broken
    if result.violations_after == 0:  # a continuous rule's plan-time part is the planner's
        discrete = Problem(model, [c for c in rules if not c.continuous], "migrations")
        assert _valid(discrete, result.hosts)


@pytest.mark.parametrize(
    "bad",
    [
        {"v0": "n0", "v1": "n0", "w": "n1"},  # n0 needs 5 cpu of 4
        {"v0": "n0", "v1": "n1", "w": "n1"},  # the spread is broken
    ],
)
def test_lns_repairs_an_overload_and_a_broken_spread(bad: dict[str, str]) -> None:
    nodes = [Node(f"n{i}", {"cpu": 4, "mem": 4}) for i in range(4)]
    vms = [VMValue(f"v{i}", {"cpu": 2, "mem": 1}, VMState.RUNNING, "n0") for i in range(2)]
    vms += [VMValue("w", {"cpu": 1, "mem": 1}, VMState.RUNNING, "n1")]
    model = Model({n.name: n for n in nodes}, {v.name: v for v in vms})
    preserve = Preserve("v0", "cpu", 3)  # n0 now needs 5 cpu of 4
    spread = Spread(("v1", "w"))
    problem = Problem(model, [preserve, spread], "migrations")
    prep = prepare(problem)
    result = improve(prep, bad, time.perf_counter() + 10, QUICK)
    assert result.violations_before > 0 and result.violations_after == 0
    assert _valid(problem, result.hosts)
    assert result.hosts["v1"] != result.hosts["w"]


def _cluster() -> Model:
    """10 nodes, 16 running VMs two per node on n0..n7: room to consolidate."""
    nodes = [Node(f"n{i}", {"cpu": 8, "mem": 8}) for i in range(10)]
    vms = [VMValue(f"v{i}", {"cpu": 2, "mem": 2}, VMState.RUNNING, f"n{i // 2}") for i in range(16)]
    return Model({n.name: n for n in nodes}, {v.name: v for v in vms})


EVERY_KIND: list[Constraint] = [  # each holds in the source
    Spread(("v1", "v2", "v4")),
    Gather(("v2", "v3")),
    Among(("v5", "v6"), (("n0", "n1", "n2", "n3"), ("n4", "n5", "n6", "n7", "n8", "n9"))),
    Ban(("v7",), ("n0", "n1")),
    Fence(("v8",), ("n4", "n5")),
    Lonely(("v8", "v9")),
    Split((("v10",), ("v12",))),
    ResourceCapacity(("n0", "n1"), "cpu", 8),
    RunningCapacity(("n2", "n3"), 5),
    MaxOnline(("n8", "n9"), 1),
    Root(("v12",)),
    Quarantine(("n7",)),
    NetworkAffinity((("v13", "v14", 10),), max_crossing_mbit=10),
    Preserve("v15", "cpu", 3),
]


def test_lns_keeps_every_rule_kind_while_consolidating() -> None:
    problem = Problem(_cluster(), EVERY_KIND, "consolidation>migrations")
    prep = prepare(problem)
    start = greedy_repair(prep)  # every VM stays; the empty capped nodes go off at the end
    hosts = {v: str(n) for v, n in start.hosts.items()}
    assert _valid(problem, hosts)
    result = improve(prep, hosts, time.perf_counter() + 20, QUICK)
    assert result.after[0] < result.before[0]  # nodes saved
    assert _valid(problem, result.hosts)
    for c in EVERY_KIND:
        assert c.is_satisfied(prep.src, _powered(problem, result.hosts)), c.label()
    assert result.hosts["v12"] == "n6"  # rooted
    assert [v for v, n in result.hosts.items() if n == "n7"] == ["v14", "v15"]  # quarantined


def test_lns_brings_repacked_vms_home() -> None:
    """First-fit repacks a running cluster from scratch; LNS keeps its node count and moves
    fewer VMs, each answer checked."""
    inst = consolidation_instance(nodes=24, vms=120, seed=3, running=1)
    problem = replace(to_problem(inst), objective="consolidation>migrations")
    prep = prepare(problem)
    ffd = first_fit_decreasing(prep)
    assert ffd.dst is not None and not ffd.violated
    result = improve(prep, ffd.hosts, time.perf_counter() + 5, QUICK)
    assert result.after[0] <= result.before[0]
    assert result.after[1] < result.before[1]
    assert result.accepted > 0 and result.rejected == 0
    assert _valid(problem, result.hosts)


def test_solve_runs_lns_when_the_repair_model_is_too_large_and_reports_it() -> None:
    inst = consolidation_instance(nodes=24, vms=120, seed=3, running=1)
    problem = replace(to_problem(inst), objective="consolidation>migrations")
    slow_build = CpsatOptions(time_limit_s=30, full_model_max_pairs=0, build_s_per_variable=1.0)
    options = SolveOptions(cpsat=slow_build, time_limit_s=6, lns=QUICK)
    result = solve(problem, options)
    assert result.plan is not None and validate_plan(result.plan, problem.constraints) == []
    assert result.stats.cpsat_status == "skipped"
    assert "LNS instead" in result.stats.cpsat_note
    lns = result.stats.lns
    assert lns["kept"] is True and result.stats.source == "lns"
    assert lns["objective_after"] < lns["objective_before"]
    baseline = solve(problem, SolveOptions(use_cpsat=False))
    assert baseline.plan is not None
    assert result.plan.migrations < baseline.plan.migrations
    assert len(result.dst.used_nodes()) <= len(baseline.dst.used_nodes())


def test_solve_without_lns_keeps_the_heuristic_answer() -> None:
    inst = consolidation_instance(nodes=24, vms=120, seed=3, running=1)
    problem = replace(to_problem(inst), objective="consolidation>migrations")
    slow_build = CpsatOptions(time_limit_s=30, full_model_max_pairs=0, build_s_per_variable=1.0)
    options = SolveOptions(cpsat=slow_build, time_limit_s=30, lns=LnsOptions(enabled=False))
    result = solve(problem, options)
    assert result.stats.lns == {} and result.stats.source == "heuristic"


def _lonely_case() -> Problem:
    """Greedy re-places both of n0's VMs on n0 (most room): lonely(a) stays broken."""
    nodes = [Node("n0", {"cpu": 16, "mem": 16})]
    nodes += [Node(f"n{i}", {"cpu": 8, "mem": 8}) for i in range(1, 4)]
    vms = [
        VMValue("a", {"cpu": 2, "mem": 2}, VMState.RUNNING, "n0"),
        VMValue("b", {"cpu": 1, "mem": 1}, VMState.RUNNING, "n0"),
    ]
    vms += [
        VMValue(f"x{i}", {"cpu": 3, "mem": 3}, VMState.RUNNING, f"n{1 + i % 3}") for i in range(6)
    ]
    model = Model({n.name: n for n in nodes}, {v.name: v for v in vms})
    return Problem(model, [Lonely(("a",))], "migrations")


def test_solve_repairs_a_broken_heuristic_answer_with_lns() -> None:
    problem = _lonely_case()
    assert greedy_repair(prepare(problem)).violated == ["lonely(a)"]
    slow_build = CpsatOptions(time_limit_s=6, full_model_max_pairs=0, build_s_per_variable=1.0)
    result = solve(problem, SolveOptions(cpsat=slow_build, time_limit_s=6, lns=QUICK))
    assert result.plan is not None and validate_plan(result.plan, problem.constraints) == []
    assert result.stats.source == "lns" and result.plan.migrations == 1
    assert result.stats.lns["violations_before"] == 1 and result.stats.lns["violations_after"] == 0
    off = SolveOptions(cpsat=slow_build, time_limit_s=6, lns=LnsOptions(enabled=False))
    assert solve(problem, off).plan is None  # the repair model alone does not fit that budget
