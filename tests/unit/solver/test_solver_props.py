"""Property tests on random small instances: the validator agrees with the rules' own checks,
every plan the solver returns validates, and the solver never says "infeasible" (nor returns no
plan) where a brute-force search over every destination finds a valid plan."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from vmgrid.solver import VM as VMValue
from vmgrid.solver import Model, Node, PlanError, Problem, SolveOptions, VMState, solve
from vmgrid.solver.constraints import (
    Among,
    Ban,
    Constraint,
    Fence,
    Gather,
    Lonely,
    Offline,
    Preserve,
    Quarantine,
    ResourceCapacity,
    Root,
    Running,
    RunningCapacity,
    Split,
    Spread,
)
from vmgrid.solver.planner import build_plan
from vmgrid.solver.problem import prepare, target_model
from vmgrid.solver.validate import validate_plan

RC = ("cpu", "mem")


@st.composite
def instances(draw: st.DrawFn) -> Model:
    nodes = [
        Node(f"n{i}", {rc: draw(st.integers(3, 8)) for rc in RC})
        for i in range(draw(st.integers(2, 3)))
    ]
    vms = []
    load = {n.name: dict.fromkeys(RC, 0) for n in nodes}
    for i in range(draw(st.integers(1, 4))):
        demand = {rc: draw(st.integers(1, 4)) for rc in RC}
        host = draw(st.sampled_from([None, *(n.name for n in nodes)]))
        if host is not None and any(
            load[host][rc] + demand[rc] > nodes[int(host[1:])].capacity[rc] for rc in RC
        ):
            host = None  # the source fits; overloads come from preserve
        if host is not None:
            load[host] = {rc: load[host][rc] + demand[rc] for rc in RC}
        state = VMState.READY if host is None else VMState.RUNNING
        vms.append(VMValue(f"v{i}", demand, state, host))
    return Model({n.name: n for n in nodes}, {v.name: v for v in vms})


@st.composite
def rule_sets(draw: st.DrawFn, model: Model) -> list[Constraint]:
    vms, nodes = sorted(model.vms), sorted(model.nodes)
    some_vms = st.lists(st.sampled_from(vms), min_size=1, max_size=3, unique=True).map(tuple)
    some_nodes = st.lists(st.sampled_from(nodes), min_size=1, max_size=2, unique=True).map(tuple)
    ready = [v for v in vms if not model.vms[v].running]
    half = len(nodes) // 2 or 1
    choices = [
        st.builds(Ban, some_vms, some_nodes),
        st.builds(Fence, some_vms, some_nodes),
        st.builds(Spread, some_vms, st.just(False)),
        st.builds(Gather, some_vms),
        st.builds(Lonely, some_vms),
        st.builds(Root, some_vms),
        st.builds(Quarantine, some_nodes),
        st.builds(Offline, some_nodes),
        st.builds(Among, some_vms, st.just((tuple(nodes[:half]), tuple(nodes[half:])))),
        st.builds(ResourceCapacity, some_nodes, st.sampled_from(RC), st.integers(0, 10)),
        st.builds(RunningCapacity, some_nodes, st.integers(0, 3)),
        st.builds(Preserve, st.sampled_from(vms), st.sampled_from(RC), st.integers(1, 6)),
        st.builds(Split, st.tuples(some_vms, some_vms).filter(lambda g: not set(g[0]) & set(g[1]))),
    ]
    flag = st.booleans()  # continuous variants: the planner's hooks must see every arrival
    choices += [
        st.builds(Spread, some_vms, flag),
        st.builds(Among, some_vms, st.just((tuple(nodes[:half]), tuple(nodes[half:]))), flag),
        st.builds(Ban, some_vms, some_nodes, flag),
        st.builds(Lonely, some_vms, flag),
        st.builds(Gather, some_vms, flag),
        st.builds(ResourceCapacity, some_nodes, st.sampled_from(RC), st.integers(0, 10), flag),
        st.builds(RunningCapacity, some_nodes, st.integers(0, 3), flag),
    ]
    if ready:
        choices.append(st.builds(Running, st.lists(st.sampled_from(ready), min_size=1).map(tuple)))
    out = draw(st.lists(st.one_of(choices), max_size=3))
    labels = [c.label() for c in out]
    assume(len(set(labels)) == len(labels))
    return out


def valid_plans(problem: Problem) -> bool:
    """Brute force: does any destination have a plan that the validator accepts?"""
    prep = prepare(problem)
    placed = [v for v, s in prep.vm_state.items() if s is VMState.RUNNING]
    online = [n for n, s in prep.node_state.items() if s.value == "online"]
    for hosts in itertools.product(online, repeat=len(placed)):
        dst = target_model(prep, dict(zip(placed, hosts, strict=True)))
        try:
            plan = build_plan(problem.model, dst, problem.constraints)
        except PlanError:
            continue
        if not validate_plan(plan, problem.constraints):
            return True
    return False


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_validator_and_rules_agree_on_random_destinations(data: st.DataObject) -> None:
    model = data.draw(instances())
    rules = [c for c in data.draw(rule_sets(model)) if not isinstance(c, Preserve)]
    prep = prepare(Problem(model, rules))
    placed = [v for v, s in prep.vm_state.items() if s is VMState.RUNNING]
    online = [n for n, s in prep.node_state.items() if s.value == "online"]
    assume(online or not placed)
    hosts = {v: data.draw(st.sampled_from(online)) for v in placed}
    dst = target_model(prep, hosts)
    try:
        plan = build_plan(model, dst, rules)
    except PlanError:
        assume(False)
        return
    messages = [v.message for v in validate_plan(plan, rules)]
    for c in rules:
        flagged = any(m.startswith(f"{c.label()}:") for m in messages)
        assert flagged == (not c.is_satisfied(model, plan.dst)), (c, messages)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_solver_plans_validate_and_infeasible_is_never_false(data: st.DataObject) -> None:
    model = data.draw(instances())
    rules = data.draw(rule_sets(model))
    problem = Problem(model, rules, "migrations")
    result = solve(problem, SolveOptions(time_limit_s=5))
    if result.plan is not None:
        assert validate_plan(result.plan, rules) == [], result.plan.describe()
    exists = valid_plans(problem)
    if exists:
        assert result.plan is not None, (result.status, result.conflicts, result.violated)
    if result.status == "infeasible":
        assert not exists


def test_rooted_ready_vm_that_must_run_is_booted() -> None:
    """Found by the property test: root pinned a ready VM to its (absent) host."""
    model = Model(
        {"n0": Node("n0", {"cpu": 3, "mem": 4})},
        {"v2": VMValue("v2", {"cpu": 1, "mem": 4}, VMState.READY, None)},
    )
    rules = [Root(("v2",)), Running(("v2",))]
    result = solve(Problem(model, rules, "migrations"))
    assert result.plan is not None and validate_plan(result.plan, rules) == []
