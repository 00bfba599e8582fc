"""Optional pivots in the interval model: for the VMs of migration cycles CP-SAT chooses the
direct move or a pivot node (the planner's candidates), and every schedule it returns validates."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schedule_checks import deps_respected, rank, valid_greedy_plan
from solver_builders import make_node, make_vm
from vmgrid.solver import VM, Model, Node, Plan, VMState
from vmgrid.solver.constraints import (
    Ban,
    Constraint,
    Fence,
    Lonely,
    Quarantine,
    ResourceCapacity,
    RunningCapacity,
    Spread,
)
from vmgrid.solver.plan import ActionKind
from vmgrid.solver.planner import PlannerOptions, build_plan
from vmgrid.solver.schedule_cpsat import ScheduleOptions, improve_schedule
from vmgrid.solver.schedule_routes import plan_routes
from vmgrid.solver.validate import validate_plan

RUN = VMState.RUNNING


def hops(plan: Plan) -> dict[str, list[tuple[str | None, str | None]]]:
    """VM -> the (src, dst) of its migrations, in order."""
    out: dict[str, list[tuple[str | None, str | None]]] = {}
    for a in sorted(plan.actions, key=lambda x: (x.start_s, x.id)):
        if a.kind is ActionKind.MIGRATE:
            out.setdefault(a.subject, []).append((a.src, a.dst))
    return out


def swap(long_s: int, short_s: int) -> tuple[Model, Model]:
    """a (6, slow) and b (4, quick) swap full nodes n1 and n2; n3 is free."""
    src = Model.of(
        [make_node(n).mem(6).build() for n in ("n1", "n2", "n3")],
        [
            make_vm("a").mem(6).on("n1").migrate_s(long_s).build(),
            make_vm("b").mem(4).on("n2").migrate_s(short_s).build(),
        ],
    )
    return src, src.with_vms([src.vms["a"].on("n2"), src.vms["b"].on("n1")])


@pytest.mark.parametrize("objective", ["makespan", "mttr"])
def test_the_model_pivots_the_quick_vm_where_the_planner_pivoted_the_slow_one(
    objective: str,
) -> None:
    src, dst = swap(60, 10)
    greedy = build_plan(src, dst)
    # The planner moves the largest leaver aside: a, whose hops take 60 s each.
    assert hops(greedy) == {"a": [("n1", "n3"), ("n3", "n2")], "b": [("n2", "n1")]}
    assert (greedy.makespan_s, greedy.mttr_s) == (130, 60 + 70 + 130)
    got = improve_schedule(greedy, (), None, ScheduleOptions(objective, num_workers=1))
    assert got.used == "cpsat" and got.status == "optimal"
    assert hops(got.plan) == {"b": [("n2", "n3"), ("n3", "n1")], "a": [("n1", "n2")]}
    assert (got.plan.makespan_s, got.plan.mttr_s) == (80, 10 + 70 + 80)
    assert got.rerouted == ("a: direct instead of via n3", "b: via n3 instead of direct")
    assert validate_plan(got.plan) == [] and deps_respected(got.plan)
    assert got.as_dict()["rerouted"] == list(got.rerouted)


def test_without_pivot_candidates_the_planners_routes_stay() -> None:
    src, dst = swap(60, 10)
    greedy = build_plan(src, dst)
    got = improve_schedule(greedy, (), None, ScheduleOptions("makespan", pivots=0, num_workers=1))
    assert got.plan is greedy and got.rerouted == ()


def test_the_model_picks_the_pivot_node_with_the_faster_nic() -> None:
    """The planner's first pivot node n3 has a 100 Mbit/s NIC; n4's carries 1000."""
    src = Model.of(
        [make_node(n).mem(4000).build() for n in ("n1", "n2")]
        + [make_node(n).mem(8000).build() for n in ("n3", "n4")],
        [make_vm("a").mem(4000).on("n1").build(), make_vm("b").mem(4000).on("n2").build()],
    )
    dst = src.with_vms([src.vms["a"].on("n2"), src.vms["b"].on("n1")])
    opts = PlannerOptions(nic_mbit=1000, nic_mbit_by_node={"n3": 100})
    greedy = build_plan(src, dst, (), opts)
    assert [h[0][1] for h in hops(greedy).values() if len(h) == 2] == ["n3"]
    assert greedy.makespan_s == 320 + 32 + 320
    got = improve_schedule(greedy, (), opts, ScheduleOptions("makespan", num_workers=1))
    pivoted = {vm: h[0][1] for vm, h in hops(got.plan).items() if len(h) == 2}
    assert list(pivoted.values()) == ["n4"] and got.plan.makespan_s == 3 * 32
    assert validate_plan(got.plan) == [] and deps_respected(got.plan)


def test_a_cycle_with_room_gets_no_pivot() -> None:
    """a and b swap nodes with room for both: pivots are offered, none is chosen."""
    src = Model.of(
        [make_node(n).mem(10).build() for n in ("n1", "n2", "n3")],
        [
            make_vm("a").mem(4).on("n1").migrate_s(30).build(),
            make_vm("b").mem(4).on("n2").migrate_s(10).build(),
            make_vm("c").mem(4).on("n3").migrate_s(20).build(),
        ],
    )
    dst = src.with_vms([src.vms["a"].on("n2"), src.vms["b"].on("n1"), src.vms["c"].on("n1")])
    greedy = build_plan(src, dst)
    routes = plan_routes(greedy, [], PlannerOptions(), 16, 3)
    assert sorted(routes.of_vm) == ["a", "b"]  # c does not move along a cycle
    assert [r.via for r in routes.of_vm["a"]] == [None, "n3"]
    for objective in ("makespan", "mttr"):
        got = improve_schedule(greedy, (), None, ScheduleOptions(objective, num_workers=1))
        assert got.rerouted == ()
        assert hops(got.plan) == {"a": [("n1", "n2")], "b": [("n2", "n1")], "c": [("n3", "n1")]}


def test_pivot_candidates_pass_the_planners_checks() -> None:
    """No candidate on a node a rule forbids, outside a whitelist, or without room at t=0."""
    src = Model.of(
        [make_node(n).mem(6).build() for n in ("n1", "n2", "n3", "n4", "n5")]
        + [make_node("n6").mem(2).build()],
        [
            make_vm("a").mem(6).on("n1").build(),
            make_vm("b").mem(4).on("n2").build(),
            make_vm("x").mem(1).on("n5").build(),
        ],
    )
    dst = src.with_vms([src.vms["a"].on("n2"), src.vms["b"].on("n1")])
    rules: list[Constraint] = [Quarantine(("n3",)), Ban(("b",), ("n4",)), Lonely(("b",), True)]
    greedy = build_plan(src, dst, rules)
    routes = plan_routes(greedy, rules, PlannerOptions(), 16, 3)
    # The planner pivots a through n4; a could go nowhere else (n3 quarantined, n5 and n6 too
    # full), b nowhere at all (n3 quarantined, n4 banned for b, n5 holds x and b is lonely,
    # n6 too small): only the direct moves are offered besides the planner's route.
    assert [r.describe() for r in routes.of_vm["a"]] == ["via n4", "direct"]
    assert [r.describe() for r in routes.of_vm["b"]] == ["direct"]
    without = plan_routes(greedy, [Quarantine(("n3",))], PlannerOptions(), 16, 3)
    assert [r.describe() for r in without.of_vm["b"]] == ["direct", "via n4", "via n5"]


def test_a_re_routed_schedule_the_validator_refuses_is_cut_off() -> None:
    """b via n3 would be fastest, but c (spread apart from b) arrives on n3 from t=0: the
    validator refuses it, the choice is banned and the next schedule validates."""
    src = Model.of(
        [make_node(n).mem(6).build() for n in ("n1", "n2")]
        + [make_node(n).mem(100).build() for n in ("n3", "n4")],
        [
            make_vm("a").mem(6).on("n1").migrate_s(60).build(),
            make_vm("b").mem(4).on("n2").migrate_s(10).build(),
            make_vm("c").mem(1).on("n4").migrate_s(100).build(),
        ],
    )
    dst = src.with_vms([src.vms["a"].on("n2"), src.vms["b"].on("n1"), src.vms["c"].on("n3")])
    rules: list[Constraint] = [Spread(("b", "c"), True)]
    greedy = build_plan(src, dst, rules)
    assert greedy.makespan_s == 230 and validate_plan(greedy, rules) == []
    got = improve_schedule(greedy, rules, None, ScheduleOptions("makespan", num_workers=1))
    assert got.used == "cpsat" and got.plan.makespan_s == 170
    assert got.violations == ("spread(b,c): VM b arrives on n3 at t=0 while VM c is there",)
    assert "refused by the validator" in got.note
    assert "b" not in {r.split(":")[0] for r in got.rerouted}
    assert validate_plan(got.plan, rules) == [] and deps_respected(got.plan)


@st.composite
def cycles(draw: st.DrawFn) -> tuple[Model, Model, list[Constraint], PlannerOptions]:
    """A ring of 2-4 full nodes whose VMs rotate one step (a cycle the planner must break),
    1-2 spare nodes, a VM or two moving elsewhere, and some rules."""
    ring = draw(st.integers(2, 4))
    spare = draw(st.integers(1, 2))
    size = draw(st.integers(2, 6))
    nodes = [Node(f"r{i}", {"mem": size, "cpu": 8}) for i in range(ring)]
    nodes += [Node(f"s{i}", {"mem": draw(st.integers(2, 12)), "cpu": 8}) for i in range(spare)]
    src_vms, moves = [], {}
    for i in range(ring):
        attrs = {"migrate": draw(st.integers(1, 40))}
        src_vms.append(VM(f"v{i}", {"mem": size, "cpu": 1}, RUN, f"r{i}", attrs))
        moves[f"v{i}"] = f"r{(i + 1) % ring}"
    for j in range(draw(st.integers(0, 2))):
        host = draw(st.sampled_from([f"s{i}" for i in range(spare)]))
        goal = draw(st.sampled_from([n.name for n in nodes[ring:]]))
        attrs = {"migrate": draw(st.integers(1, 40))}
        src_vms.append(VM(f"w{j}", {"mem": 1, "cpu": 1}, RUN, host, attrs))
        moves[f"w{j}"] = goal
    src = Model.of(nodes, src_vms)
    dst = src.with_vms([src.vms[v].on(n) for v, n in moves.items()])
    rules: list[Constraint] = []
    vms = sorted(src.vms)
    kind = draw(st.sampled_from(["none", "spread", "fence", "capacity", "running", "quarantine"]))
    if kind == "spread":
        rules.append(Spread(tuple(draw(st.permutations(vms)))[:2], True))
    elif kind == "fence":
        keep = tuple(n.name for n in nodes if n.name != draw(st.sampled_from(nodes)).name)
        rules.append(Fence(tuple(vms), keep))
    elif kind == "capacity":
        scope = (draw(st.sampled_from(nodes)).name,)
        rules.append(ResourceCapacity(scope, "mem", draw(st.integers(size, 2 * size)), True))
    elif kind == "running":
        rules.append(RunningCapacity((draw(st.sampled_from(nodes)).name,), 2, True))
    elif kind == "quarantine":
        rules.append(Quarantine((f"s{spare - 1}",)))
    opts = PlannerOptions(
        nic_mbit=draw(st.sampled_from([None, 1000])),
        nic_mbit_by_node={"s0": draw(st.sampled_from([100, 1000]))},
        max_inbound_per_node=draw(st.sampled_from([None, 1])),
        memory_resource="mem",
    )
    return src, dst, rules, opts


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(cycles(), st.sampled_from(["makespan", "mttr"]))
def test_every_schedule_with_optional_pivots_validates(
    case: tuple[Model, Model, list[Constraint], PlannerOptions], objective: str
) -> None:
    src, dst, rules, opts = case
    greedy = valid_greedy_plan(src, dst, rules, opts)
    options = ScheduleOptions(objective, time_limit_s=1.0, num_workers=1)
    got = improve_schedule(greedy, rules, opts, options)
    assert validate_plan(got.plan, rules) == []
    assert deps_respected(got.plan)
    after, before = rank(got.plan, objective), rank(greedy, objective)
    assert after <= before
    assert (got.used == "cpsat") == (after < before)
    for vm, h in hops(got.plan).items():
        assert len(h) <= 2 and h[0][0] == src.vms[vm].host and h[-1][1] == dst.vms[vm].host
    if got.rerouted:
        assert got.used == "cpsat"
    event(f"greedy pivots: {sum(len(h) == 2 for h in hops(greedy).values())}")
    event(f"used {got.used}, re-routed {len(got.rerouted)}, refused {len(got.violations)}")
