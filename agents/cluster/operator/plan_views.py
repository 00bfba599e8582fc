"""What the operator API says about a plan, wherever it lives.

A plan is in one of three places: a dry run the operator asked for (kept in memory until it is
applied, cancelled or forgotten), a recommendation the decision loop holds for approval, or the
journal (running or ended). `PlanView` is the one shape the API returns for all three.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from vmgrid.agents.cluster.act.execution import plan_state
from vmgrid.agents.cluster.act.journal import ActionState, PlanRecord, PlanState
from vmgrid.agents.cluster.decide.control import Decision
from vmgrid.solver.plan import Action

Simulated = Callable[[Action], bool]
"""Whether an action runs between simulated (test-driver) nodes."""


class PlanStatus(enum.Enum):
    """A plan's place in its life, as the operator API reports it."""

    PROPOSED = "proposed"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def final(self) -> bool:
        return self in (
            PlanStatus.SUCCEEDED,
            PlanStatus.FAILED,
            PlanStatus.CANCELLED,
            PlanStatus.REJECTED,
        )


_FROM_JOURNAL = {
    PlanState.PENDING_APPROVAL: PlanStatus.AWAITING_APPROVAL,
    PlanState.RUNNING: PlanStatus.RUNNING,
    PlanState.SUCCEEDED: PlanStatus.SUCCEEDED,
    PlanState.FAILED: PlanStatus.FAILED,
    PlanState.CANCELLED: PlanStatus.CANCELLED,
    PlanState.REJECTED: PlanStatus.REJECTED,
}


@dataclass(frozen=True, slots=True)
class ActionView:
    """One action with where it stands (`state` is None before it has been journaled)."""

    action: Action
    state: ActionState | None
    simulated: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class PlanView:
    """A plan and why it exists; `active_nodes_*` are 0 when unknown (journaled plans)."""

    plan_id: str
    status: PlanStatus
    summary: str
    actions: tuple[ActionView, ...]
    created_unix_s: float
    active_nodes_before: int = 0
    active_nodes_after: int = 0

    @property
    def estimated_duration_s(self) -> int:
        return max((a.action.end_s for a in self.actions), default=0)


def from_decision(
    plan_id: str,
    decision: Decision,
    status: PlanStatus,
    created_unix_s: float,
    simulated: Simulated,
) -> PlanView:
    """A decided plan not yet journaled (a dry run or a recommendation)."""
    plan = decision.plan
    actions = plan.actions if plan is not None else ()
    if decision.active_nodes is not None:
        before, after = decision.active_nodes
    elif plan is not None:
        before, after = len(plan.src.used_nodes()), len(plan.dst.used_nodes())
    else:
        before = after = 0
    return PlanView(
        plan_id,
        status,
        decision.summary,
        tuple(ActionView(a, None, simulated(a)) for a in actions),
        created_unix_s,
        before,
        after,
    )


def from_record(record: PlanRecord, simulated: Simulated) -> PlanView:
    """A journaled plan; a running action's simulation is predicted from its nodes."""
    return PlanView(
        record.plan_id,
        _FROM_JOURNAL[record.state],
        record.summary,
        tuple(
            ActionView(r.action, r.state, r.simulated or simulated(r.action), r.message)
            for r in record.actions
        ),
        record.created_unix_s,
    )


def from_actions(
    plan_id: str, summary: str, actions: tuple[Action, ...], now_s: float, simulated: Simulated
) -> PlanView:
    """A plan just handed to the executor (not journaled until its task first runs)."""
    views = tuple(ActionView(a, ActionState.PENDING, simulated(a)) for a in actions)
    return PlanView(plan_id, PlanStatus.RUNNING, summary, views, now_s)


def final_state(states: dict[int, ActionState]) -> PlanStatus:
    """How a plan ended, from its actions' final states (the executor's own rule)."""
    return _FROM_JOURNAL[plan_state(states)]
