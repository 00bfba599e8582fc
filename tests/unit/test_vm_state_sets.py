"""The VM-state sets are named once, in the domain model, and partition the states."""

from __future__ import annotations

import ast
from pathlib import Path

from vmgrid.agents.model import (
    HOLDS_MEMORY_STATES,
    MOVABLE_STATES,
    RUNNING_STATES,
    SLEEPING_STATES,
    STOPPED_STATES,
    VmState,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("agents", "coordinator", "solver", "bench", "deploy")


def test_every_state_is_running_sleeping_or_stopped_exactly_once() -> None:
    for state in VmState:
        homes = [s for s in (RUNNING_STATES, SLEEPING_STATES, STOPPED_STATES) if state in s]
        assert len(homes) == 1, f"{state} is in {len(homes)} of running/sleeping/stopped"


def test_memory_is_held_by_running_and_sleeping_vms_only() -> None:
    assert HOLDS_MEMORY_STATES == RUNNING_STATES | SLEEPING_STATES
    assert not HOLDS_MEMORY_STATES & STOPPED_STATES


def test_a_movable_vm_runs_and_is_not_already_moving_or_going_down() -> None:
    assert MOVABLE_STATES <= RUNNING_STATES
    assert VmState.MIGRATING not in MOVABLE_STATES
    assert VmState.SHUTTING_DOWN not in MOVABLE_STATES


def _derives_from_model(node: ast.BinOp) -> bool:
    """`CANONICAL_STATES | {...}` or `- {...}`: a named difference from a model's set."""
    return any(
        isinstance(n, ast.Name | ast.Attribute)
        and (n.id if isinstance(n, ast.Name) else n.attr).endswith("_STATES")
        for n in ast.walk(node.left)
    )


def _state_set_literals(path: Path) -> list[int]:
    """Lines of set/tuple/list literals listing two or more VmState members (the right side
    of a union or difference with one of the model's sets excepted)."""
    tree = ast.parse(path.read_text(), str(path))
    derived = {
        id(node.right)
        for node in ast.walk(tree)
        if isinstance(node, ast.BinOp) and _derives_from_model(node)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Set | ast.Tuple | ast.List) and id(node) not in derived:
            members = [
                e
                for e in node.elts
                if isinstance(e, ast.Attribute)
                and isinstance(e.value, ast.Name | ast.Attribute)
                and (e.value.id if isinstance(e.value, ast.Name) else e.value.attr) == "VmState"
            ]
            if len(members) >= 2:
                found.append(node.lineno)
    return found


def test_no_module_lists_its_own_set_of_vm_states() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in SOURCE_DIRS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "model.py" or path.parent.name != "agents"
        for line in _state_set_literals(path)
    ]
    assert not offenders, f"VM-state sets defined outside agents/model.py: {offenders}"
