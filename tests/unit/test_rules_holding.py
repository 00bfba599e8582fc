"""Rules handed to deciders as the applier keeps them, and the VMs a rule holds on a draining
node (rules/check.py `solvable`, rules/holding.py)."""

from __future__ import annotations

import pytest
from vmgrid.agents.cluster.rules.check import solvable
from vmgrid.agents.cluster.rules.holding import held_vms
from vmgrid.agents.cluster.rules.store import RuleStore
from vmgrid.solver.constraints import Constraint, Fence, Gather, NetworkAffinity, Spread
from vmgrid.solver.model import CPU, MEMORY, VM, Model, Node, NodeState, VMState


def model(placement: dict[str, str], nodes: tuple[str, ...] = ("n1", "n2", "n3")) -> Model:
    return Model.of(
        [Node(n, {CPU: 4000, MEMORY: 4096}, NodeState.ONLINE) for n in nodes],
        [VM(v, {CPU: 100, MEMORY: 256}, VMState.RUNNING, h) for v, h in placement.items()],
    )


def store(*rules: tuple[str, Constraint]) -> RuleStore:
    out = RuleStore()
    for rule_id, constraint in rules:
        out.add(rule_id, constraint)
    return out


def test_a_rule_that_holds_now_is_handed_to_the_solver_continuous() -> None:
    rules = store(
        ("together", Gather(("a", "b"))),
        ("broken", Gather(("a", "c"))),
        ("traffic", NetworkAffinity((("a", "c", 10),))),
    )
    posted = solvable(rules.rules(), model({"a": "n1", "b": "n1", "c": "n2"}))
    assert posted == [
        Gather(("a", "b"), continuous=True),
        Gather(("a", "c")),  # broken now: the applier does not hold moves back for it
        NetworkAffinity((("a", "c", 10),)),  # a kind with discrete semantics only
    ]


def test_a_rule_over_a_vm_the_model_lacks_is_left_to_the_applier() -> None:
    rules = store(("together", Gather(("a", "gone"))))
    assert solvable(rules.rules(), model({"a": "n1"})) == []


def test_the_members_of_a_gather_on_a_draining_node_are_held_and_told_why() -> None:
    rules = store(("together", Gather(("a", "b"))))
    holds = held_vms(rules.rules(), model({"a": "n1", "b": "n1", "c": "n1"}), ["n1"])
    assert set(holds) == {"a", "b"}
    assert holds["a"].node == "n1" and holds["a"].rule.rule_id == "together"
    assert holds["a"].reason == (
        "rule together gather(a,b) keeps a and b together at every instant: live migration "
        "moves one VM at a time"
    )


@pytest.mark.parametrize(
    ("rule", "placement", "held"),
    [
        (Fence(("a",), ("n1",)), {"a": "n1", "b": "n1"}, {"a"}),
        (Fence(("a",), ("n1", "n3")), {"a": "n1", "b": "n1"}, set()),
        (Spread(("a", "b", "c")), {"a": "n1", "b": "n2", "c": "n3"}, {"a"}),
        (Spread(("a", "b")), {"a": "n1", "b": "n2"}, set()),
        (Gather(("a", "b")), {"a": "n1", "b": "n2"}, set()),  # broken now: holds nothing
        (Gather(("a", "b")), {"a": "n2", "b": "n2", "c": "n1"}, set()),  # not on the node
    ],
)
def test_a_vm_is_held_only_when_every_other_node_breaks_a_rule_holding_now(
    rule: Constraint, placement: dict[str, str], held: set[str]
) -> None:
    holds = held_vms(store(("r", rule)).rules(), model(placement), ["n1"])
    assert set(holds) == held


def test_a_vm_refused_by_a_different_rule_on_each_node_is_held() -> None:
    # c may not join b on n2 (spread) nor go to n3 (fence); d, under no rule, leaves
    rules = store(("apart", Spread(("b", "c"))), ("fenced", Fence(("c",), ("n1", "n2"))))
    holds = held_vms(rules.rules(), model({"b": "n2", "c": "n1", "d": "n1"}), ["n1"])
    assert set(holds) == {"c"}
    assert holds["c"].rule.rule_id in {"apart", "fenced"}
