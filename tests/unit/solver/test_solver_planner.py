"""The planner: capacity at every instant, cycles broken, power actions ordered."""

from __future__ import annotations

from solver_builders import make_node, make_vm
from vmgrid.solver import ActionKind, Model, Plan, PlannerOptions
from vmgrid.solver.constraints import Among
from vmgrid.solver.model import VMState
from vmgrid.solver.planner import build_plan
from vmgrid.solver.problem import Problem, prepare


def load_at(plan: Plan, node: str, t: float, rc: str) -> int:
    """Consumption on `node` at instant t under BtrPlace's holding rules."""
    total = 0
    moving = {a.subject: a for a in plan.actions if not a.kind.on_node}
    for name, vm in plan.src.vms.items():
        a = moving.get(name)
        if a is None:
            if vm.host == node and vm.running:
                total += vm.need(rc)
            continue
        if a.src == node and vm.host == node and vm.running and t < a.end_s:
            total += vm.need(rc)
        if a.dst == node and t >= a.start_s:
            total += plan.dst.vms[name].need(rc)
    return total


def assert_capacity_always(plan: Plan) -> None:
    instants = {a.start_s for a in plan.actions} | {a.end_s for a in plan.actions}
    for t in sorted(instants):
        for name, node in plan.src.nodes.items():
            for rc, cap in node.capacity.items():
                assert load_at(plan, name, t + 0.5, rc) <= cap, (name, rc, t)


def test_migrating_vm_holds_both_nodes_so_second_move_waits() -> None:
    nodes = [make_node("n1").mem(3000).build(), make_node("n2").mem(2048).build()]
    src = Model.of(
        nodes,
        [
            make_vm("big").mem(1536).on("n1").migrate_s(10).build(),
            make_vm("small").mem(1024).on("n2").migrate_s(3).build(),
        ],
    )
    dst = src.with_vms([src.vms["big"].on("n2"), src.vms["small"].on("n1")])
    plan = build_plan(src, dst)
    assert_capacity_always(plan)
    moves = {a.subject: a for a in plan.of_kind(ActionKind.MIGRATE)}
    assert moves["small"].start_s == 0
    assert moves["big"].start_s >= moves["small"].end_s
    assert moves["small"].id in moves["big"].depends_on


def test_swap_of_full_nodes_is_broken_through_a_pivot() -> None:
    nodes = [make_node(n).mem(1024).build() for n in ("n1", "n2", "n3")]
    src = Model.of(
        nodes,
        [
            make_vm("a").mem(1024).on("n1").build(),
            make_vm("b").mem(1024).on("n2").build(),
        ],
    )
    dst = src.with_vms([src.vms["a"].on("n2"), src.vms["b"].on("n1")])
    plan = build_plan(src, dst)
    assert_capacity_always(plan)
    reasons = [a.reason for a in plan.actions]
    assert any("pivot through n3" in r for r in reasons)
    assert plan.migrations == 2


def test_swap_without_spare_node_uses_suspend_resume() -> None:
    nodes = [make_node(n).mem(1024).build() for n in ("n1", "n2")]
    src = Model.of(
        nodes,
        [
            make_vm("a").mem(1024).on("n1").build(),
            make_vm("b").mem(1024).on("n2").build(),
        ],
    )
    dst = src.with_vms([src.vms["a"].on("n2"), src.vms["b"].on("n1")])
    plan = build_plan(src, dst)
    kinds = {a.kind for a in plan.actions}
    assert ActionKind.SUSPEND in kinds and ActionKind.RESUME in kinds
    assert_capacity_always(plan)


def test_node_boots_before_inbound_and_shuts_down_after_outbound() -> None:
    src = Model.of(
        [make_node("old").mem(1024).build(), make_node("new").mem(1024).offline().build()],
        [make_vm("a").mem(512).on("old").migrate_s(4).build()],
    )
    from dataclasses import replace

    from vmgrid.solver.model import NodeState

    dst = Model(
        {
            "old": replace(src.nodes["old"], state=NodeState.OFFLINE),
            "new": replace(src.nodes["new"], state=NodeState.ONLINE),
        },
        {"a": src.vms["a"].on("new")},
    )
    plan = build_plan(src, dst)
    boot = plan.of_kind(ActionKind.BOOT_NODE)[0]
    move = plan.of_kind(ActionKind.MIGRATE)[0]
    off = plan.of_kind(ActionKind.SHUTDOWN_NODE)[0]
    assert boot.end_s <= move.start_s and move.end_s <= off.start_s
    assert move.id in off.depends_on and boot.id in move.depends_on


def test_duration_from_memory_and_bandwidth() -> None:
    src = Model.of(
        [make_node(n).mem(8192).build() for n in ("n1", "n2")],
        [make_vm("a").mem(4096).on("n1").build()],
    )
    dst = src.with_vms([src.vms["a"].on("n2")])
    plan = build_plan(src, dst, options=PlannerOptions(bandwidth_mbit=1000))
    assert plan.actions[0].duration_s == 33  # 4096 MiB * 8 / 1000 Mbit/s, rounded up


def test_ready_vm_boot_holds_destination() -> None:
    src = Model.of([make_node("n1").mem(1024).build()], [make_vm("a").mem(512).ready().build()])
    dst = src.with_vms([src.vms["a"].on("n1", VMState.RUNNING)])
    plan = build_plan(src, dst)
    assert [a.kind for a in plan.actions] == [ActionKind.BOOT_VM]


def test_continuous_among_pivots_only_inside_the_vms_group() -> None:
    nodes = [make_node(n).mem(1024).build() for n in ("n1", "n2", "n3", "n4")]
    src = Model.of(
        nodes,
        [
            make_vm("a").mem(1024).on("n1").build(),
            make_vm("b").mem(1024).on("n2").build(),
        ],
    )
    among = Among(("a", "b"), (("n1", "n2", "n4"), ("n3",)), continuous=True)
    dst = src.with_vms([src.vms["a"].on("n2"), src.vms["b"].on("n1")])
    prep = prepare(Problem(src, [among]))
    plan = build_plan(src, dst, [among], pivot_allowed=prep.allowed)
    assert all(a.dst != "n3" for a in plan.actions)
    assert any("pivot through n4" in a.reason for a in plan.actions)
    assert_capacity_always(plan)
