"""Full-duplex NICs in the planner: a node sends and receives at once, and the plan's order
per NIC direction is carried by dependencies so the executor keeps it."""

from __future__ import annotations

from solver_builders import make_node, make_vm
from vmgrid.solver import ActionKind, Model, PlannerOptions
from vmgrid.solver.planner import build_plan
from vmgrid.solver.validate import validate_plan


def moves(pairs: list[tuple[str, str, str, int]]) -> tuple[Model, Model]:
    nodes = sorted({n for _, a, b, _ in pairs for n in (a, b)})
    src = Model.of(
        [make_node(n).mem(100_000).build() for n in nodes],
        [make_vm(vm).mem(mib).on(a).build() for vm, a, _, mib in pairs],
    )
    return src, src.with_vms([src.vms[vm].on(b) for vm, _, b, _ in pairs])


def test_a_node_sends_and_receives_at_the_same_time() -> None:
    src, dst = moves([("a", "n1", "n2", 1000), ("b", "n2", "n1", 1000)])
    plan = build_plan(src, dst, options=PlannerOptions(nic_mbit=1000))
    assert sorted((a.start_s, a.end_s) for a in plan.of_kind(ActionKind.MIGRATE)) == [
        (0, 8),
        (0, 8),
    ]


def test_the_next_migration_on_a_nic_direction_depends_on_the_one_it_follows() -> None:
    src, dst = moves([("a", "n1", "n2", 1000), ("b", "n1", "n3", 2000)])
    plan = build_plan(src, dst, options=PlannerOptions(nic_mbit=1000))
    first, second = sorted(plan.of_kind(ActionKind.MIGRATE), key=lambda a: a.start_s)
    assert first.subject == "b"  # largest first on the busiest side
    assert second.depends_on == (first.id,)
    assert validate_plan(plan) == []


def test_busiest_nic_side_goes_first() -> None:
    # n1 must send 3 GiB; n4's single small move must not delay it.
    src, dst = moves(
        [
            ("a", "n1", "n2", 1000),
            ("b", "n1", "n3", 1000),
            ("c", "n1", "n5", 1000),
            ("d", "n4", "n2", 500),
        ]
    )
    plan = build_plan(src, dst, options=PlannerOptions(nic_mbit=1000))
    end = max(a.end_s for a in plan.actions)
    assert end == 3 * 8  # the busiest side's work, never idle
