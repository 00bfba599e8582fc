"""Where a suspended VM can only resume where it is, a cycle with no pivot node is no plan."""

from __future__ import annotations

import pytest
from vmgrid.solver.model import CPU, MEMORY, VM, Model, Node, VMState
from vmgrid.solver.plan import ActionKind
from vmgrid.solver.planner import PlanError, PlannerOptions, build_plan


def swap() -> tuple[Model, Model]:
    nodes = [Node(n, {CPU: 1000, MEMORY: 1024}) for n in ("n1", "n2")]
    src = Model.of(nodes, [VM("a", {CPU: 500, MEMORY: 1024}, VMState.RUNNING, "n1"),
                           VM("b", {CPU: 500, MEMORY: 1024}, VMState.RUNNING, "n2")])  # fmt: skip
    dst = src.with_vms([src.vms["a"].on("n2"), src.vms["b"].on("n1")])
    return src, dst


def test_btrplace_semantics_break_the_swap_with_a_suspend_and_a_resume_elsewhere() -> None:
    src, dst = swap()
    plan = build_plan(src, dst, (), PlannerOptions(), {})
    kinds = [a.kind for a in plan.actions]
    assert ActionKind.SUSPEND in kinds and ActionKind.RESUME in kinds


def test_with_in_memory_pause_the_swap_has_no_plan() -> None:
    src, dst = swap()
    with pytest.raises(PlanError, match="no cycle can be broken"):
        build_plan(src, dst, (), PlannerOptions(suspend_across_nodes=False), {})
