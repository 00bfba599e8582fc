"""Each constraint alone on tiny instances: is_satisfied agrees with what CP-SAT finds."""

from __future__ import annotations

import pytest
from solver_builders import make_node, make_vm
from vmgrid.solver import Model, Problem, solve
from vmgrid.solver.constraints import (
    Among,
    Ban,
    Constraint,
    Fence,
    Gather,
    Lonely,
    MaxOnline,
    NetworkAffinity,
    Offline,
    Online,
    Preserve,
    Quarantine,
    ResourceCapacity,
    Root,
    Running,
    RunningCapacity,
    Split,
    Spread,
    make,
)
from vmgrid.solver.constraints.base import ConstraintError


def cluster() -> Model:
    """n1 holds a, b; n2 holds c; n3 empty; n4 offline; d is ready."""
    nodes = [make_node(n).cpu(4000).mem(4096).build() for n in ("n1", "n2", "n3")]
    nodes.append(make_node("n4").cpu(4000).mem(4096).offline().build())
    vms = [
        make_vm("a").cpu(1000).mem(1024).on("n1").build(),
        make_vm("b").cpu(1000).mem(1024).on("n1").build(),
        make_vm("c").cpu(1000).mem(1024).on("n2").build(),
        make_vm("d").cpu(1000).mem(1024).ready().build(),
    ]
    return Model.of(nodes, vms)


CASES: list[tuple[str, Constraint, bool]] = [
    ("ban holds", Ban(("a",), ("n2",)), True),
    ("ban violated", Ban(("a",), ("n1",)), False),
    ("fence holds", Fence(("a", "b"), ("n1",)), True),
    ("fence violated", Fence(("c",), ("n1", "n3")), False),
    ("spread violated", Spread(("a", "b")), False),
    ("spread holds", Spread(("a", "c")), True),
    ("gather violated", Gather(("a", "c")), False),
    ("gather holds", Gather(("a", "b")), True),
    ("among violated", Among(("a", "c"), (("n1",), ("n2", "n3"))), False),
    ("among holds", Among(("a", "b"), (("n1",), ("n2",))), True),
    ("split violated", Split((("a",), ("b",))), False),
    ("split holds", Split((("a", "b"), ("c",))), True),
    ("lonely violated", Lonely(("a",)), False),
    ("lonely holds", Lonely(("a", "b")), True),
    ("offline violated", Offline(("n2",)), False),
    ("online violated", Online(("n4",)), False),
    ("running violated", Running(("d",)), False),
    ("resourceCapacity violated", ResourceCapacity(("n1",), "cpu", 1500), False),
    ("runningCapacity violated", RunningCapacity(("n1",), 1), False),
    ("maxOnline violated", MaxOnline(("n1", "n2", "n3"), 2), False),
    ("preserve violated", Preserve("a", "cpu", 2000), False),
    ("root holds", Root(("a",)), True),
    ("quarantine holds", Quarantine(("n1",)), True),
    ("affinity cap violated", NetworkAffinity((("a", "c", 100),), max_crossing_mbit=10), False),
]


@pytest.mark.parametrize(("name", "constraint", "holds_now"), CASES, ids=[c[0] for c in CASES])
def test_constraint_checked_then_repaired_by_solver(
    name: str, constraint: Constraint, holds_now: bool
) -> None:
    src = cluster()
    assert constraint.is_satisfied(src, src) is holds_now
    result = solve(Problem(src, [constraint]))
    assert result.dst is not None, result.conflicts
    assert constraint.is_satisfied(src, result.dst)
    if holds_now:
        assert result.stats.migrations == 0


def test_root_and_quarantine_keep_vms_in_place_despite_offline() -> None:
    src = cluster()
    result = solve(Problem(src, [Root(("a",)), Offline(("n1",))]))
    assert result.dst is None
    assert result.status == "infeasible"
    assert any(c.startswith("root") for c in result.conflicts)
    assert any(c.startswith("offline") for c in result.conflicts)


def test_make_builds_by_btrplace_name_and_rejects_unknown() -> None:
    assert make("ban", vms=("a",), nodes=("n1",)) == Ban(("a",), ("n1",))
    with pytest.raises(ConstraintError, match="unknown constraint 'nope'"):
        make("nope")
