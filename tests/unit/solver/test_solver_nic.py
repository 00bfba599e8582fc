"""The per-NIC bandwidth model: migrations through one NIC share it, others run in parallel."""

from __future__ import annotations

import pytest
from solver_builders import make_node, make_vm
from vmgrid.solver import ActionKind, Model, ModelError, Plan, PlannerOptions
from vmgrid.solver.planner import build_plan
from vmgrid.solver.validate import validate_plan


def moves(pairs: list[tuple[str, str, str]], mem_mib: int = 1000) -> tuple[Model, Model]:
    """VMs named by the first item move from the second node to the third."""
    nodes = sorted({n for _, a, b in pairs for n in (a, b)})
    src = Model.of(
        [make_node(n).mem(100_000).build() for n in nodes],
        [make_vm(vm).mem(mem_mib).on(a).build() for vm, a, _ in pairs],
    )
    return src, src.with_vms([src.vms[vm].on(b) for vm, _, b in pairs])


def spans(plan: Plan) -> dict[str, tuple[int, int]]:
    return {a.subject: (a.start_s, a.end_s) for a in plan.of_kind(ActionKind.MIGRATE)}


def test_migrations_through_one_nic_take_turns_at_full_bandwidth() -> None:
    src, dst = moves([("a", "n1", "n2"), ("b", "n1", "n3")])
    plan = build_plan(src, dst, options=PlannerOptions(nic_mbit=1000))
    got = spans(plan)
    assert sorted(got.values()) == [(0, 8), (8, 16)]  # 1000 MiB * 8 / 1000 Mbit/s each
    assert validate_plan(plan) == []


def test_migrations_on_disjoint_nics_run_in_parallel() -> None:
    src, dst = moves([("a", "n1", "n2"), ("b", "n3", "n4")])
    plan = build_plan(src, dst, options=PlannerOptions(nic_mbit=1000))
    assert sorted(spans(plan).values()) == [(0, 8), (0, 8)]


def test_per_migration_share_lets_a_nic_carry_several_at_once() -> None:
    src, dst = moves([("a", "n1", "n2"), ("b", "n1", "n3"), ("c", "n1", "n4")])
    options = PlannerOptions(nic_mbit=1000, bandwidth_mbit=500)
    got = spans(build_plan(src, dst, options=options))
    assert sorted(got.values()) == [(0, 16), (0, 16), (16, 32)]


def test_slow_destination_nic_sets_the_share() -> None:
    src, dst = moves([("a", "n1", "n2")])
    options = PlannerOptions(nic_mbit=1000, nic_mbit_by_node={"n2": 100})
    assert spans(build_plan(src, dst, options=options)) == {"a": (0, 80)}


def test_default_planner_keeps_btrplace_durations() -> None:
    src, dst = moves([("a", "n1", "n2"), ("b", "n1", "n3")])
    assert sorted(spans(build_plan(src, dst)).values()) == [(0, 1), (0, 1)]


@pytest.mark.parametrize(
    "options",
    [{"nic_mbit": 0}, {"bandwidth_mbit": -5}, {"nic_mbit_by_node": {"n1": 0}}],
)
def test_non_positive_bandwidth_is_rejected_with_its_name(options: dict[str, object]) -> None:
    with pytest.raises(ModelError, match="must be a positive Mbit/s"):
        PlannerOptions(**options)  # type: ignore[arg-type]
