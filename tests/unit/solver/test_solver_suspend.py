"""Suspend/resume, the planner's last resort to break a migration cycle, as the validator
replays it: the VM frees its host when the suspend ends and holds its destination from the
resume's start."""

from __future__ import annotations

from solver_builders import make_node, make_vm
from vmgrid.solver import Model
from vmgrid.solver.btrplace.instance import Running
from vmgrid.solver.plan import Action, ActionKind
from vmgrid.solver.planner import build_plan
from vmgrid.solver.validate import Violation, validate, validate_plan


def full_swap() -> tuple[Model, Model]:
    """Two full nodes that exchange their VMs, with no third node to pivot through."""
    nodes = [make_node(n).mem(1024).build() for n in ("n1", "n2")]
    a = make_vm("a").mem(1024).on("n1").build()
    b = make_vm("b").mem(1024).on("n2").build()
    src = Model.of(nodes, [a, b])
    return src, src.with_vms([a.on("n2"), b.on("n1")])


def act(kind: ActionKind, vm: str, src: str | None, dst: str | None, start: int) -> Action:
    return Action(0, kind, vm, src, dst, start, start + 1, "test")


def rules(src: Model, *actions: Action) -> set[str]:
    found: list[Violation] = validate(src, actions)
    return {v.rule for v in found}


def test_swap_without_pivot_is_a_valid_suspend_resume_plan() -> None:
    src, dst = full_swap()
    plan = build_plan(src, dst)
    kinds = {a.kind for a in plan.actions}
    assert {ActionKind.SUSPEND, ActionKind.RESUME} <= kinds
    assert validate_plan(plan) == []


def test_suspended_vm_frees_its_host_only_when_the_suspend_ends() -> None:
    src, _ = full_swap()
    early = (
        act(ActionKind.SUSPEND, "a", "n1", None, 0),
        act(ActionKind.MIGRATE, "b", "n2", "n1", 0),  # arrives while a is still there
        act(ActionKind.RESUME, "a", None, "n2", 1),
    )
    assert "capacity" in rules(src, *early)
    in_order = (
        act(ActionKind.SUSPEND, "a", "n1", None, 0),
        act(ActionKind.MIGRATE, "b", "n2", "n1", 1),
        act(ActionKind.RESUME, "a", None, "n2", 2),
    )
    assert rules(src, *in_order) == set()


def test_resume_needs_a_sleeping_vm() -> None:
    src, _ = full_swap()
    assert "vm-state" in rules(src, act(ActionKind.RESUME, "a", None, "n2", 0))


def test_suspend_must_leave_the_vms_current_host() -> None:
    src, _ = full_swap()
    assert "source" in rules(src, act(ActionKind.SUSPEND, "a", "n2", None, 0))


def test_suspended_vm_ends_asleep_and_off_its_node() -> None:
    src, _ = full_swap()
    actions = (
        act(ActionKind.SUSPEND, "a", "n1", None, 0),
        act(ActionKind.MIGRATE, "b", "n2", "n1", 1),
    )
    assert rules(src, *actions) == set()
    assert {v.rule for v in validate(src, actions, [Running("a")])} == {"running"}
