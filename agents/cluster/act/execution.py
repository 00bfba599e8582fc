"""What the plan executor (executor.py) and its drivers exchange: a precondition check's
verdict, an action's outcome, what a restart observes, the driver protocol, and the events and
reports the executor gives out, and how a plan's and a restarted action's state follow from
its actions' and the driver's."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from vmgrid.agents.cluster.act.journal import ActionRecord, ActionState, Journal, PlanState
from vmgrid.solver.plan import Action


class Verdict(enum.Enum):
    READY = "ready"
    WAIT = "wait"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Check:
    """A precondition check on fresh state; `reason` says why it is not READY."""

    verdict: Verdict
    reason: str = ""


READY = Check(Verdict.READY)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an executed action ended."""

    succeeded: bool
    message: str = ""
    simulated: bool = False


class Observed(enum.Enum):
    """What fresh state says about an action that was in flight when the manager stopped."""

    DONE = "done"
    NOT_DONE = "not_done"
    GONE = "gone"


ProgressCallback = Callable[[Action, float], None]


class ActionDriver(Protocol):
    """How the executor reaches the cluster: the manager implements it over the agents."""

    def check(self, action: Action) -> Check:
        """Precondition of `action` on fresh state."""
        ...

    def execute(
        self, action: Action, command_id: str, progress: ProgressCallback
    ) -> Awaitable[Outcome]:
        """Carry `action` out; re-sending the same `command_id` must not act twice. Called
        synchronously when the action starts (the awaitable is scheduled right after)."""
        ...

    async def abort(self, action: Action, command_id: str) -> None:
        """Stop a running action (a migration); a no-op for actions that cannot be aborted."""
        ...

    def observe(self, action: Action) -> Observed:
        """After a restart: did the in-flight `action` take effect?"""
        ...


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """Something the executor did, for logs, the event stream and metrics."""

    plan_id: str
    action: Action
    state: ActionState
    message: str = ""
    progress: float = 0.0
    simulated: bool = False


@dataclass
class ExecutionReport:
    """How a plan ended: the final state of each action."""

    plan_id: str
    state: PlanState
    actions: dict[int, ActionState] = field(default_factory=dict)
    messages: dict[int, str] = field(default_factory=dict)

    def count(self, state: ActionState) -> int:
        return sum(1 for s in self.actions.values() if s is state)


BROKEN = (ActionState.FAILED, ActionState.SKIPPED, ActionState.CANCELLED)
"""An action in one of these states lets none of its dependants start."""


def plan_state(states: dict[int, ActionState]) -> PlanState:
    """A finished plan's state from its actions' final states."""
    values = set(states.values())
    if ActionState.CANCELLED in values:
        return PlanState.CANCELLED
    if values <= {ActionState.SUCCEEDED}:
        return PlanState.SUCCEEDED
    return PlanState.FAILED


def reconcile(driver: ActionDriver, journal: Journal, record: ActionRecord) -> ActionRecord:
    """An action journaled as running: look at fresh state to learn how it ended."""
    if record.state is not ActionState.RUNNING:
        return record
    seen = driver.observe(record.action)
    if seen is Observed.DONE:
        journal.finish_action(
            record.plan_id, record.action.id, ActionState.SUCCEEDED, "completed during restart"
        )
        state = ActionState.SUCCEEDED
    elif seen is Observed.GONE:
        journal.finish_action(
            record.plan_id, record.action.id, ActionState.SKIPPED, "subject gone after restart"
        )
        state = ActionState.SKIPPED
    else:
        # Not done: it will be re-sent with the same command id, which the agent
        # deduplicates if the first send did reach it.
        state = ActionState.PENDING
    return ActionRecord(
        record.plan_id, record.action, state, record.attempt, record.message, record.simulated
    )
