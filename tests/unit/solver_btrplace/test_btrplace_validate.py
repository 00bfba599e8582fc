"""The independent validator: each rule alone on tiny instances, then plan files end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from btrplace_docs import Doc
from vmgrid.solver.btrplace import parse_instance
from vmgrid.solver.btrplace.plan_io import plan_from_json, plan_to_json
from vmgrid.solver.plan import Action, ActionKind
from vmgrid.solver.validate import Violation, validate, validate_btrplace_plan


def mig(vm: int, src: int, dst: int, start: int, end: int) -> Action:
    return Action(0, ActionKind.MIGRATE, str(vm), str(src), str(dst), start, end, "test")


def boot_vm(vm: int, node: int, start: int, end: int) -> Action:
    return Action(0, ActionKind.BOOT_VM, str(vm), None, str(node), start, end, "test")


def boot_node(node: int, start: int, end: int) -> Action:
    return Action(0, ActionKind.BOOT_NODE, str(node), None, None, start, end, "test")


def halt_node(node: int, start: int, end: int) -> Action:
    return Action(0, ActionKind.SHUTDOWN_NODE, str(node), None, None, start, end, "test")


def check(doc: Doc, *actions: Action) -> list[Violation]:
    inst = parse_instance(doc.build())
    return validate(inst.source, actions, inst.constraints, inst.demands)


def rules(doc: Doc, *actions: Action) -> set[str]:
    return {v.rule for v in check(doc, *actions)}


def two_nodes() -> Doc:
    """Node 1 holds VMs 10 (cpu 5) and 11 (cpu 3); node 2 holds VM 20 (cpu 6); cpu cap 10."""
    return Doc().node(1).node(2).vm(10, 1, cpu=5).vm(11, 1, cpu=3).vm(20, 2, cpu=6)


CASES = [
    ("empty plan on a fitting instance", two_nodes(), [], set()),
    ("one fitting migration", two_nodes(), [mig(11, 1, 2, 0, 1)], set()),
    (
        "destination over capacity",
        two_nodes(),
        [mig(10, 1, 2, 0, 1)],
        {"capacity", "final-capacity"},
    ),
    (
        "swap in parallel overloads both ends while moving",
        Doc().node(1, cpu=6).node(2, cpu=6).vm(10, 1, cpu=5).vm(20, 2, cpu=5),
        [mig(10, 1, 2, 0, 1), mig(20, 2, 1, 0, 1)],
        {"capacity"},
    ),
    (
        "source is held until the migration ends",
        Doc().node(1, cpu=6).node(2, cpu=6).vm(10, 1, cpu=5).vm(20, 2, cpu=5),
        [mig(10, 1, 2, 1, 2), mig(20, 2, 1, 0, 1)],
        {"capacity"},
    ),
    (
        "sequenced swap through free capacity is valid",
        Doc().node(1, cpu=6).node(2, cpu=6).node(3, cpu=6).vm(10, 1, cpu=5).vm(20, 2, cpu=5),
        [mig(10, 1, 3, 0, 1), mig(20, 2, 1, 1, 2), mig(10, 3, 2, 2, 3)],
        set(),
    ),
    ("migration from the wrong host", two_nodes(), [mig(11, 2, 1, 0, 1)], {"source"}),
    (
        "too short for the migrate attribute",
        Doc().node(1).node(2).vm(10, 1, migrate=3),
        [mig(10, 1, 2, 0, 2)],
        {"duration"},
    ),
    ("negative start", two_nodes(), [mig(11, 1, 2, -1, 1)], {"time"}),
    (
        "two overlapping actions on one VM",
        Doc().node(1).node(2).node(3).vm(10, 1),
        [mig(10, 1, 2, 0, 2), mig(10, 2, 3, 1, 3)],
        {"overlap"},
    ),
    (
        "migration to an offline node",
        Doc().node(1).node(2, online=False).vm(10, 1),
        [mig(10, 1, 2, 0, 1)],
        {"offline-destination"},
    ),
    (
        "migration before the destination finished booting",
        Doc().node(1).node(2, online=False, boot=5).vm(10, 1),
        [boot_node(2, 0, 5), mig(10, 1, 2, 4, 5)],
        {"offline-destination"},
    ),
    (
        "migration after the destination booted",
        Doc().node(1).node(2, online=False, boot=5).vm(10, 1),
        [boot_node(2, 0, 5), mig(10, 1, 2, 5, 6)],
        set(),
    ),
    (
        "shutdown of a non-empty node",
        Doc().node(1).node(2).vm(10, 1),
        [halt_node(1, 0, 1)],
        {"shutdown-non-empty"},
    ),
    (
        "shutdown before the last VM left",
        Doc().node(1).node(2).vm(10, 1),
        [mig(10, 1, 2, 0, 2), halt_node(1, 1, 2)],
        {"shutdown-non-empty"},
    ),
    (
        "shutdown once empty",
        Doc().node(1).node(2).vm(10, 1),
        [mig(10, 1, 2, 0, 2), halt_node(1, 2, 3)],
        set(),
    ),
    (
        "booting a running VM",
        two_nodes(),
        [boot_vm(10, 2, 0, 1)],
        {"vm-state"},
    ),
    (
        "boot a ready VM",
        Doc().node(1).vm(30, None, cpu=2).constraint("running", vm=30),
        [boot_vm(30, 1, 0, 1)],
        set(),
    ),
    (
        "running VM left ready",
        Doc().node(1).vm(30, None).constraint("running", vm=30),
        [],
        {"running"},
    ),
    (
        "online node left offline",
        Doc().node(1).node(2, online=False).constraint("online", node=2),
        [],
        {"online"},
    ),
    (
        "offline node left online",
        Doc().node(1).node(2).constraint("offline", node=2),
        [],
        {"offline"},
    ),
    (
        "preserve overloads a staying VM's node at the end",
        Doc()
        .node(1, cpu=5)
        .node(2)
        .vm(10, 1, cpu=2)
        .vm(11, 1, cpu=3)
        .constraint("preserve", vm=10, rc="cpu", amount=4),
        [],
        {"final-capacity"},
    ),
    (
        "preserve relieved by moving the other VM",
        Doc()
        .node(1, cpu=5)
        .node(2)
        .vm(10, 1, cpu=2)
        .vm(11, 1, cpu=3)
        .constraint("preserve", vm=10, rc="cpu", amount=4),
        [mig(11, 1, 2, 0, 1)],
        set(),
    ),
    (
        "spread broken at the end",
        two_nodes().constraint("spread", vms=[11, 20], continuous=False),
        [mig(11, 1, 2, 0, 1)],
        {"spread"},
    ),
    (
        "continuous spread: arrive while the other member is leaving",
        Doc().node(1).node(2).node(3).vm(10, 1).vm(20, 2).constraint("spread", vms=[10, 20]),
        [mig(20, 2, 3, 0, 2), mig(10, 1, 2, 1, 2)],
        {"continuous-spread"},
    ),
    (
        "continuous spread: arrive once the other member left",
        Doc().node(1).node(2).node(3).vm(10, 1).vm(20, 2).constraint("spread", vms=[10, 20]),
        [mig(20, 2, 3, 0, 2), mig(10, 1, 2, 2, 3)],
        set(),
    ),
    (
        "continuous spread: a member's own round trip through a pivot",
        Doc().node(1).node(2).node(3).vm(10, 1).vm(20, 2).constraint("spread", vms=[10, 20]),
        [mig(10, 1, 3, 0, 1), mig(10, 3, 1, 1, 2)],
        set(),
    ),
    (
        "among broken at the end",
        Doc()
        .node(1)
        .node(2)
        .node(3)
        .vm(10, 1)
        .vm(20, 3)
        .constraint("among", vms=[10, 20], parts=[[1, 2], [3]], continuous=False),
        [],
        {"among"},
    ),
    (
        "among repaired by joining the group",
        Doc()
        .node(1)
        .node(2)
        .node(3)
        .vm(10, 1)
        .vm(20, 3)
        .constraint("among", vms=[10, 20], parts=[[1, 2], [3]], continuous=False),
        [mig(20, 3, 2, 0, 1)],
        set(),
    ),
    (
        "continuous among: leaving the group",
        Doc()
        .node(1)
        .node(2)
        .node(3)
        .vm(10, 1)
        .constraint("among", vms=[10], parts=[[1, 2], [3]], continuous=True),
        [mig(10, 1, 3, 0, 1)],
        {"continuous-among"},
    ),
    (
        "resourceCapacity exceeded at the end",
        two_nodes().constraint("resourceCapacity", nodes=[2], rc="cpu", amount=8),
        [mig(11, 1, 2, 0, 1)],
        {"resource-capacity"},
    ),
    ("unknown VM in the plan", two_nodes(), [mig(99, 1, 2, 0, 1)], {"unknown"}),
]


@pytest.mark.parametrize(
    ("doc", "actions", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(doc: Doc, actions: list[Action], expected: set[str]) -> None:
    assert rules(doc, *actions) == expected


def test_violation_names_node_resource_and_time() -> None:
    (capacity, _final) = check(two_nodes(), mig(10, 1, 2, 3, 4))
    assert capacity == Violation("capacity", "node 2: cpu load 11 exceeds capacity 10 at t=3", 3)


def test_plan_file_round_trip_keeps_instance_ids(tmp_path: Path) -> None:
    doc = Doc().node(1).node(2, online=False).vm(10, 1).vm(30, None)
    inst = parse_instance(doc.build())
    actions = [boot_node(2, 0, 1), mig(10, 1, 2, 1, 2), boot_vm(30, 1, 0, 1), halt_node(1, 2, 3)]
    exported = plan_to_json(actions)
    assert exported["actions"][0] == {"type": "boot_node", "node": 2, "start": 0, "end": 1}
    assert {"type": "migrate", "vm": 10, "src": 1, "dst": 2, "start": 1, "end": 2} in exported[
        "actions"
    ]
    assert [(a.kind, a.subject, a.src, a.dst) for a in plan_from_json(exported, inst)] == [
        (a.kind, a.subject, a.src, a.dst) for a in sorted(actions, key=lambda a: a.start_s)
    ]
    inst_path = tmp_path / "inst.json"
    inst_path.write_text(json.dumps(doc.build()))
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(exported))
    assert validate_btrplace_plan(inst_path, plan_path) == [
        Violation("shutdown-non-empty", "node 1: shuts down at t=2 while VM 30 is still on it", 2)
    ]
