"""Small plans for the paths that change one VM at a time: an operator's suspend or resume, a
submitted member's start, an HA restart, a VM arriving from another cluster. They are plans
like the decision loop's, so the applier re-checks them on fresh state, journals them and keeps
every other plan off their VMs."""

from __future__ import annotations

import uuid

from vmgrid.agents.cluster.act.executor import ExecutionReport, PlanExecutor
from vmgrid.agents.cluster.act.journal import ActionState, PlanState
from vmgrid.agents.errors import CommandFailed
from vmgrid.solver.plan import Action, ActionKind


def one_action(
    kind: ActionKind, vm_uuid: str, reason: str, src: str | None = None, dst: str | None = None
) -> Action:
    return Action(0, kind, vm_uuid, src, dst, 0, 1, reason)


def plan_id_for(prefix: str, key: str = "") -> str:
    """A plan id; a stable `key` makes a retried request find its first plan in the journal."""
    return f"{prefix}-{key}" if key else f"{prefix}-{uuid.uuid4().hex[:10]}"


async def run_actions(
    executor: PlanExecutor, plan_id: str, actions: list[Action], origin: str, within: str = ""
) -> ExecutionReport:
    """Run the plan (or, when the journal already has it, resume it) to its end; `within`:
    the executor's `holding` whose VMs it acts on."""
    if executor.journal.plan(plan_id) is not None:
        return await executor.resume(plan_id, within=within)
    return await executor.run(plan_id, actions, origin=origin, within=within)


async def run_or_raise(
    executor: PlanExecutor, plan_id: str, actions: list[Action], origin: str, within: str = ""
) -> ExecutionReport:
    """As `run_actions`; CommandFailed names each action that did not succeed and why."""
    report = await run_actions(executor, plan_id, actions, origin, within)
    if report.state is PlanState.SUCCEEDED:
        return report
    failed = [
        f"{a.kind.value} {a.subject}: {report.actions.get(a.id, ActionState.PENDING).value}"
        f" ({report.messages.get(a.id) or 'no reason given'})"
        for a in actions
        if report.actions.get(a.id) is not ActionState.SUCCEEDED
    ]
    raise CommandFailed(f"plan {plan_id} {report.state.value}: " + "; ".join(failed))
