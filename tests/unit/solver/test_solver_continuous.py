"""Continuous rules: the plugin contract, the planner's hooks on every arrival, departure and
pivot, and the validator judging each rule at every instant."""

from __future__ import annotations

import pytest
from solver_builders import make_node, make_vm
from vmgrid.solver import ActionKind, Model, Plan
from vmgrid.solver.constraints import (
    REGISTRY,
    Ban,
    Constraint,
    Gather,
    Lonely,
    MaxOnline,
    Quarantine,
    ResourceCapacity,
    Running,
    RunningCapacity,
    Split,
)
from vmgrid.solver.constraints.base import CONTINUOUS, DISCRETE, ConstraintError
from vmgrid.solver.planner import build_plan
from vmgrid.solver.validate import validate_plan


def swap_with_pivots() -> tuple[Model, Model]:
    """n1 and n2 full, exchanging a and b; n3 (holding x) and n4 (empty) could serve as pivots."""
    nodes = [make_node(n).mem(1024).build() for n in ("n1", "n2")]
    nodes += [make_node(n).mem(2048).build() for n in ("n3", "n4")]
    src = Model.of(
        nodes,
        [
            make_vm("a").mem(1024).on("n1").build(),
            make_vm("b").mem(1024).on("n2").build(),
            make_vm("x").mem(512).on("n3").build(),
        ],
    )
    return src, src.with_vms([src.vms["a"].on("n2"), src.vms["b"].on("n1")])


def pivots(plan: Plan) -> set[str]:
    return {str(a.dst) for a in plan.actions if a.reason.startswith("pivot through")}


def test_every_kind_states_its_semantics() -> None:
    for kind, cls in REGISTRY.items():
        assert cls.semantics and cls.semantics <= {DISCRETE, CONTINUOUS}, kind


@pytest.mark.parametrize(
    "build",
    [
        lambda: MaxOnline(("n1", "n2"), 1, continuous=True),
        lambda: Running(("a",), continuous=True),
    ],
)
def test_continuous_on_a_discrete_only_rule_is_refused_naming_it(build: object) -> None:
    with pytest.raises(ConstraintError) as err:
        build()  # type: ignore[operator]
    message = str(err.value)
    assert "continuous=True is not supported" in message
    assert message.startswith(("maxOnline(n1,n2: <= 1)", "running(a)"))


def test_unconstrained_swap_pivots_through_the_first_free_node() -> None:
    src, dst = swap_with_pivots()
    assert pivots(build_plan(src, dst)) == {"n3"}


BLOCKING_N3: list[tuple[str, Constraint, str]] = [
    ("quarantine", Quarantine(("n3",)), "quarantine"),
    ("continuous lonely node", Lonely(("x",), continuous=True), "continuous-lonely"),
    (
        "continuous resourceCapacity",
        ResourceCapacity(("n3",), "mem", 1200, continuous=True),
        "continuous-resource-capacity",
    ),
    (
        "continuous runningCapacity",
        RunningCapacity(("n3",), 1, continuous=True),
        "continuous-running-capacity",
    ),
    ("continuous split", Split((("a", "b"), ("x",)), continuous=True), "continuous-split"),
    ("discrete ban", Ban(("a", "b"), ("n3",)), ""),
]


@pytest.mark.parametrize(("name", "rule", "code"), BLOCKING_N3, ids=[c[0] for c in BLOCKING_N3])
def test_pivot_respects_the_rule_and_the_validator_catches_one_that_does_not(
    name: str, rule: Constraint, code: str
) -> None:
    src, dst = swap_with_pivots()
    plan = build_plan(src, dst, [rule])
    assert pivots(plan) == {"n4"}, name
    assert validate_plan(plan, [rule]) == []
    if code:
        careless = build_plan(src, dst)  # pivots through n3
        assert code in {v.rule for v in validate_plan(careless, [rule])}


def test_quarantine_keeps_its_vms_and_a_cycle_without_pivot_suspends() -> None:
    src, dst = swap_with_pivots()
    plan = build_plan(src, dst, [Quarantine(("n3", "n4"))])
    kinds = {a.kind for a in plan.actions if a.subject in ("a", "b")}
    assert ActionKind.SUSPEND in kinds and ActionKind.RESUME in kinds
    assert validate_plan(plan, [Quarantine(("n3", "n4"))]) == []
    assert plan.migrations == 2  # a suspend/resume pair counts as a migration


def test_continuous_gather_waits_for_the_group_and_validator_checks_it() -> None:
    nodes = [make_node(n).mem(4096).build() for n in ("n1", "n2")]
    src = Model.of(
        nodes,
        [make_vm("a").mem(512).on("n1").build(), make_vm("r").mem(512).ready().build()],
    )
    gather = Gather(("a", "r"), continuous=True)
    dst = src.with_vms([src.vms["r"].on("n1")])
    assert validate_plan(build_plan(src, dst, [gather]), [gather]) == []
    wrong = src.with_vms([src.vms["r"].on("n2")])
    assert "continuous-gather" in {v.rule for v in validate_plan(build_plan(src, wrong), [gather])}
