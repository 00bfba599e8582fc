"""Every solver rule kind read from a BtrPlace file, solved, exported and validated."""

from __future__ import annotations

import pytest
from btrplace_docs import Doc
from vmgrid.solver import constraints as rules
from vmgrid.solver.api import SolveOptions, solve
from vmgrid.solver.btrplace import BtrPlaceError, parse_instance
from vmgrid.solver.btrplace.plan_io import plan_to_json
from vmgrid.solver.btrplace.problem import to_problem
from vmgrid.solver.validate import validate, validate_btrplace_plan


def base() -> Doc:
    """Nodes 1-3 (cpu 10); VMs 10, 11 on 1; VM 20 on 2; VM 30 ready."""
    doc = Doc().node(1).node(2).node(3).vm(10, 1, cpu=2).vm(11, 1, cpu=2).vm(20, 2, cpu=2)
    return doc.vm(30, None, cpu=2)


KINDS: list[tuple[str, dict[str, object], rules.Constraint]] = [
    ("ban", {"vms": [10], "nodes": [1]}, rules.Ban(("10",), ("1",))),
    ("fence", {"vms": [10], "nodes": [2, 3]}, rules.Fence(("10",), ("2", "3"))),
    ("gather", {"vms": [10, 20]}, rules.Gather(("10", "20"))),
    ("lonely", {"vms": [10], "continuous": True}, rules.Lonely(("10",), continuous=True)),
    ("split", {"parts": [[10], [11]]}, rules.Split((("10",), ("11",)))),
    ("root", {"vm": 20}, rules.Root(("20",))),
    ("quarantine", {"node": 3}, rules.Quarantine(("3",))),
    ("maxOnline", {"nodes": [1, 2, 3], "amount": 2}, rules.MaxOnline(("1", "2", "3"), 2)),
    ("runningCapacity", {"nodes": [1], "amount": 1}, rules.RunningCapacity(("1",), 1)),
    ("ready", {"vm": 11}, rules.Ready(("11",))),
    ("sleeping", {"vm": 11}, rules.Sleeping(("11",))),
    ("capacity", {"nodes": [1]}, rules.Capacity(("1",))),
    (
        "networkAffinity",
        {"pairs": [[10, 20, 100]], "maxCrossingMbit": 0},
        rules.NetworkAffinity((("10", "20", 100),), 0),
    ),
]


def test_every_registered_kind_is_read() -> None:
    read = {k for k, _, _ in KINDS} | {
        "online",
        "offline",
        "running",
        "preserve",
        "spread",
        "among",
        "resourceCapacity",
    }
    assert read == set(rules.REGISTRY)


@pytest.mark.parametrize(("kind", "fields", "rule"), KINDS, ids=[k for k, _, _ in KINDS])
def test_kind_is_read_solved_and_the_exported_plan_validates(
    kind: str, fields: dict[str, object], rule: rules.Constraint
) -> None:
    doc = base().constraint(kind, **fields).build()
    inst = parse_instance(doc, "tiny")
    assert inst.constraints == (rule,)
    result = solve(to_problem(inst), SolveOptions(time_limit_s=10))
    assert result.plan is not None, (result.status, result.conflicts)
    assert validate(inst.source, result.plan.actions, inst.constraints, inst.demands) == []
    if kind not in ("ready", "sleeping"):  # BtrPlace's plan format has no VM shutdown/suspend
        assert validate_btrplace_plan(doc, plan_to_json(result.plan.actions)) == []


def test_continuous_on_a_discrete_only_kind_is_a_one_line_error() -> None:
    doc = base().constraint("maxOnline", nodes=[1, 2], amount=1, continuous=True).build()
    with pytest.raises(BtrPlaceError) as err:
        parse_instance(doc, "tiny")
    assert str(err.value).startswith(
        "tiny: constraints[0] (maxOnline): maxOnline(1,2: <= 1): continuous=True is not supported"
    )
