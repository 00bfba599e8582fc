"""What the journal (journal.py) holds: plan and action states, the records read back, and
the command id of each attempt of an action."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from vmgrid.solver.plan import Action, ActionKind


class PlanState(enum.Enum):
    """Where a plan stands. Only RUNNING plans are resumed after a restart."""

    PENDING_APPROVAL = "pending_approval"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class ActionState(enum.Enum):
    """Where one action stands. The last four are final."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self not in (ActionState.PENDING, ActionState.RUNNING)


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """An action as the journal last saw it."""

    plan_id: str
    action: Action
    state: ActionState
    attempt: int
    message: str
    simulated: bool

    @property
    def command_id(self) -> str:
        return command_id(self.plan_id, self.action.id, self.attempt)


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """A plan header and its actions, in action-id order."""

    plan_id: str
    state: PlanState
    origin: str
    summary: str
    created_unix_s: float
    actions: tuple[ActionRecord, ...]


def command_id(plan_id: str, action_id: int, attempt: int) -> str:
    """The idempotency key of one attempt of one action."""
    return f"{plan_id}/{action_id}/{attempt}"


def action_record(row: tuple) -> ActionRecord:  # type: ignore[type-arg]
    """An ActionRecord from a row of the journal's actions query."""
    action = Action(
        id=row[1],
        kind=ActionKind(row[2]),
        subject=row[3],
        src=row[4],
        dst=row[5],
        start_s=row[6],
        end_s=row[7],
        reason=row[8],
        depends_on=tuple(json.loads(row[9])),
    )
    return ActionRecord(
        plan_id=row[0],
        action=action,
        state=ActionState(row[10]),
        attempt=row[11],
        message=row[12],
        simulated=bool(row[13]),
    )
