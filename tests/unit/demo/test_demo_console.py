"""The demo's console: VM names instead of uuids, one line per action start and end (no
progress percentages), one line per plan."""

from __future__ import annotations

import asyncio

from vmgrid.agents.cluster.act.executor import ExecutionEvent
from vmgrid.agents.cluster.act.journal import ActionState
from vmgrid.demo.console import Console
from vmgrid.solver.plan import Action, ActionKind

VM_UUID = "4c187c56-1470-51b6-ad6e-37ce32bf3587"


def console_with_names(lines: list[str]) -> Console:
    console = Console({}, lines.append)
    console.names._known[VM_UUID] = "web-1"
    return console


def test_uuids_in_messages_print_as_vm_names_and_unknown_ones_stay() -> None:
    console = console_with_names([])
    other = "00000000-1111-2222-3333-444444444444"
    assert console.names.in_text(f"moved {VM_UUID}, not {other}") == f"moved web-1, not {other}"


def test_an_action_prints_its_start_and_its_end_but_not_its_progress() -> None:
    lines: list[str] = []
    printer = console_with_names(lines)._action_printer("c1")
    action = Action(1, ActionKind.MIGRATE, VM_UUID, "n1", "n2", 0, 3, "relieve n1")

    printer(ExecutionEvent("plan-1", action, ActionState.RUNNING))
    for fraction in (0.25, 0.5, 0.75):
        printer(ExecutionEvent("plan-1", action, ActionState.RUNNING, progress=fraction))
    printer(ExecutionEvent("plan-1", action, ActionState.SUCCEEDED, "took 2 s", 1.0, True))

    assert len(lines) == 2
    assert lines[0].endswith("c1 plan-1 start: migrate web-1 n1 -> n2")
    assert lines[1].endswith("c1 plan-1 succeeded: migrate web-1 n1 -> n2 [simulated] (took 2 s)")


def test_a_plan_prints_one_summary_line_and_a_lone_decision_prints_once() -> None:
    lines: list[str] = []

    async def play() -> None:
        console = console_with_names(lines)
        console._plan_line("c1", "", "consolidate: free 1 node")
        console._plan_line("c1", "", "plan-ab12 starts: consolidate: free 1 node")
        console._plan_line("c1", "", f"plan-ab12: migrate {VM_UUID} n1 -> n2: consolidate")
        console._plan_line("c1", "", "plan-ab12 succeeded: consolidate: free 1 node")
        console._plan_line("c1", "", "no action: every node below 85 %")
        await asyncio.sleep(0.8)

    asyncio.run(play())
    assert lines == [
        "plan-ab12 starts: consolidate: free 1 node",
        "plan-ab12 succeeded: consolidate: free 1 node",
        "no action: every node below 85 %",
    ]
