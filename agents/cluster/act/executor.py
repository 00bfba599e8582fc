"""Plan executor: starts actions as their dependencies and the cluster's fresh state allow.

The solver's start times are estimates; execution is event-driven. An action starts when every
action it depends on has succeeded, when the per-node and per-link concurrency limits leave room,
and when the driver's precondition check on fresh state says READY. A check that says WAIT (say,
the destination has not been freed yet) is asked again whenever another action ends; an action
that can no longer start (STALE: its VM moved, its node went away) is skipped, and so is every
action that depends on a skipped or failed one. Every transition is written to the journal first.

A replicated manager that loses its leadership ``halt()``s its executor: from then on no action
starts and nothing more is journaled; the plans it was driving stay ``running`` in the journal,
for the next leader to reconcile and finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

from vmgrid.agents.cluster.act.execution import BROKEN, plan_state, reconcile
from vmgrid.agents.cluster.act.execution import READY as READY
from vmgrid.agents.cluster.act.execution import ActionDriver as ActionDriver
from vmgrid.agents.cluster.act.execution import Check as Check
from vmgrid.agents.cluster.act.execution import ExecutionEvent as ExecutionEvent
from vmgrid.agents.cluster.act.execution import ExecutionReport as ExecutionReport
from vmgrid.agents.cluster.act.execution import Observed as Observed
from vmgrid.agents.cluster.act.execution import Outcome as Outcome
from vmgrid.agents.cluster.act.execution import ProgressCallback as ProgressCallback
from vmgrid.agents.cluster.act.execution import Verdict as Verdict
from vmgrid.agents.cluster.act.execution_limits import ExecutionLimits as ExecutionLimits
from vmgrid.agents.cluster.act.execution_limits import has_room, occupy
from vmgrid.agents.cluster.act.journal import (
    ActionRecord,
    ActionState,
    Journal,
    PlanState,
    command_id,
)
from vmgrid.agents.errors import FailedPrecondition
from vmgrid.solver.plan import Action, ActionKind

log = logging.getLogger(__name__)


class PlanExecutor:
    """Runs plans through a driver, journaled, within concurrency limits; one plan at a time
    per call to `run`, several plans may run concurrently if they touch different nodes."""

    def __init__(
        self,
        driver: ActionDriver,
        journal: Journal,
        limits: ExecutionLimits | None = None,
        on_event: Callable[[ExecutionEvent], None] | None = None,
    ) -> None:
        self._driver = driver
        self._journal = journal
        self._limits = limits or ExecutionLimits()
        self._on_event = on_event or (lambda event: None)
        self._cancelled: set[str] = set()
        self._wakeups: dict[str, asyncio.Event] = {}
        self._claimed: set[str] = set()
        self._holders: dict[str, str] = {}  # VM uuid -> the plan whose actions may touch it
        self._within: dict[str, str] = {}  # plan id -> the hold its actions may act under
        self.halted = False
        """Set by `halt`: no action starts and nothing is journaled any more."""

    @property
    def in_flight(self) -> tuple[str, ...]:
        """Plans claimed or being driven: whoever starts a plan (loop, operator) looks here
        first, so that two plans never move the same VMs at once."""
        return tuple(sorted(self._claimed))

    def holder(self, vm_uuid: str) -> str | None:
        """The plan that holds the VM now (its actions may touch it), or None."""
        return self._holders.get(vm_uuid)

    def check(self, action: Action) -> Check:
        """What the applier would say of `action` on fresh state now, so that an operator's
        request that cannot run is refused with the rule or resource in the way."""
        return self._driver.check(action)

    @contextlib.contextmanager
    def holding(self, hold_id: str, vm_uuids: Iterable[str]) -> Iterator[None]:
        """Hold the VMs for `hold_id` across several plans, run with ``within=hold_id``: steps
        whose VMs no other plan may touch between their plans (a memory checkpoint's members,
        saved and off between save and restore). Counted in flight meanwhile. Raises
        FailedPrecondition naming the plan that holds one of the VMs already."""
        vms = list(dict.fromkeys(vm_uuids))
        taken = {v: self._holders[v] for v in vms if v in self._holders}
        if taken:
            vm, holder = next(iter(taken.items()))
            raise FailedPrecondition(f"VM {vm} is held by plan {holder}")
        self.claim(hold_id)
        self._holders.update(dict.fromkeys(vms, hold_id))
        try:
            yield
        finally:
            for vm in vms:
                if self._holders.get(vm) == hold_id:
                    del self._holders[vm]
            self.release(hold_id)

    def claim(self, plan_id: str) -> None:
        """Count `plan_id` as in flight from now on, before its task has had a chance to run
        (`run` and `resume` claim too; the claim ends with the plan or with `release`)."""
        self._claimed.add(plan_id)

    def release(self, plan_id: str) -> None:
        """End a claim whose plan never ran (its task was cancelled before it started)."""
        self._claimed.discard(plan_id)

    @property
    def journal(self) -> Journal:
        """Where plans are recorded (the loop reads drain history from it)."""
        return self._journal

    def add_listener(self, listener: Callable[[ExecutionEvent], None]) -> None:
        """Also pass every ExecutionEvent to `listener` (the dashboard shows migration progress)."""
        previous = self._on_event

        def both(event: ExecutionEvent) -> None:
            previous(event)
            listener(event)

        self._on_event = both

    def cancel(self, plan_id: str) -> None:
        """Stop starting actions of `plan_id` and abort its running migrations."""
        self._cancelled.add(plan_id)
        wake = self._wakeups.get(plan_id)
        if wake is not None:
            wake.set()

    def halt(self) -> None:
        """Stop for good: start no action and journal nothing more. Every plan being driven
        stops waiting for its actions (a command already with an agent goes on there) and
        returns a report that says ``running`` (its journal record is left as it was)."""
        self.halted = True
        for wake in self._wakeups.values():
            wake.set()

    async def run(
        self,
        plan_id: str,
        actions: Sequence[Action],
        origin: str = "",
        summary: str = "",
        within: str = "",
    ) -> ExecutionReport:
        """Journal a new plan (with why it exists: `summary`) and execute it to the end (a
        halted executor journals nothing: the plan is reported cancelled). `within`: the
        `holding` whose VMs the plan may act on."""
        if self.halted:
            return ExecutionReport(plan_id, PlanState.CANCELLED, {}, {})
        self.claim(plan_id)
        self._within[plan_id] = within
        try:
            summary = summary or f"{len(actions)} actions"
            self._journal.record_plan(plan_id, actions, origin=origin, summary=summary)
            record = self._journal.plan(plan_id)
            assert record is not None
            return await self._drive(plan_id, record.actions)
        finally:
            self._within.pop(plan_id, None)
            self.release(plan_id)

    async def resume_unfinished(self) -> list[ExecutionReport]:
        """After a restart: reconcile and finish every plan the journal has as running."""
        reports = []
        for record in self._journal.plans([PlanState.RUNNING]):
            reports.append(await self.resume(record.plan_id))
        return reports

    async def resume(self, plan_id: str, within: str = "") -> ExecutionReport:
        record = self._journal.plan(plan_id)
        if record is None:
            raise KeyError(f"no plan {plan_id!r} in the journal")
        self.claim(plan_id)
        self._within[plan_id] = within
        try:
            reconciled = [reconcile(self._driver, self._journal, r) for r in record.actions]
            return await self._drive(plan_id, tuple(reconciled))
        finally:
            self._within.pop(plan_id, None)
            self.release(plan_id)

    async def _drive(self, plan_id: str, records: Sequence[ActionRecord]) -> ExecutionReport:
        states = {r.action.id: r.state for r in records}
        attempts = {r.action.id: r.attempt for r in records}
        actions = {r.action.id: r.action for r in records}
        messages: dict[int, str] = {r.action.id: r.message for r in records}
        running: dict[int, asyncio.Task[Outcome]] = {}
        wake = asyncio.Event()
        self._wakeups[plan_id] = wake
        held = self._hold(plan_id, [r.action for r in records if not r.state.final])
        try:
            while True:
                if self.halted:  # what the agents run goes on; the next leader sees how it ends
                    for task in running.values():
                        task.cancel()
                    return ExecutionReport(plan_id, PlanState.RUNNING, dict(states), messages)
                if plan_id in self._cancelled:
                    await self._cancel_all(plan_id, actions, states, attempts, running, messages)
                    break
                self._skip_orphans(plan_id, actions, states, messages)
                self._start_ready(plan_id, actions, states, attempts, messages, running, wake)
                if not running:
                    waiting = [i for i, s in states.items() if s is ActionState.PENDING]
                    for i in waiting:  # nothing in flight can free what they wait for
                        self._finish(
                            plan_id,
                            actions[i],
                            states,
                            messages,
                            ActionState.SKIPPED,
                            messages.get(i) or "precondition never became true",
                        )
                    break
                wake.clear()
                waker = asyncio.ensure_future(wake.wait())
                await asyncio.wait([*running.values(), waker], return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
                if self.halted:
                    continue
                for aid, task in list(running.items()):
                    if task.done():
                        del running[aid]
                        self._record_outcome(plan_id, actions[aid], task, states, messages)
        finally:
            for vm_uuid in held:
                self._holders.pop(vm_uuid, None)
            self._wakeups.pop(plan_id, None)
            self._cancelled.discard(plan_id)
        final = plan_state(states)
        self._journal.set_plan_state(plan_id, final)
        return ExecutionReport(plan_id, final, dict(states), messages)

    def _hold(self, plan_id: str, actions: Sequence[Action]) -> list[str]:
        """Hold the VMs of `actions` for `plan_id` where no other plan holds them already."""
        held = []
        for action in actions:
            if action.kind.on_node or action.subject in self._holders:
                continue
            self._holders[action.subject] = plan_id
            held.append(action.subject)
        return held

    def _skip_orphans(
        self,
        plan_id: str,
        actions: dict[int, Action],
        states: dict[int, ActionState],
        messages: dict[int, str],
    ) -> None:
        changed = True
        while changed:
            changed = False
            for aid, action in actions.items():
                if states[aid] is not ActionState.PENDING:
                    continue
                bad = [d for d in action.depends_on if states.get(d) in BROKEN]
                if bad:
                    why = f"action {bad[0]} it depends on did not succeed"
                    self._finish(plan_id, action, states, messages, ActionState.SKIPPED, why)
                    changed = True

    def _start_ready(
        self,
        plan_id: str,
        actions: dict[int, Action],
        states: dict[int, ActionState],
        attempts: dict[int, int],
        messages: dict[int, str],
        running: dict[int, asyncio.Task[Outcome]],
        wake: asyncio.Event,
    ) -> None:
        if self.halted:
            return
        busy_nodes: dict[str, int] = {}
        busy_links: dict[tuple[str, str], int] = {}
        for aid in running:
            occupy(actions[aid], busy_nodes, busy_links, +1)
        for aid in sorted(actions, key=lambda i: (actions[i].start_s, i)):
            action = actions[aid]
            if states[aid] is not ActionState.PENDING:
                continue
            if len(running) >= self._limits.max_parallel:
                return
            if any(states.get(d) is not ActionState.SUCCEEDED for d in action.depends_on):
                continue
            if not has_room(self._limits, action, busy_nodes, busy_links):
                continue
            holder = self._holders.get(action.subject, plan_id)
            if holder not in (plan_id, self._within.get(plan_id)) and not action.kind.on_node:
                why = f"VM {action.subject} is held by plan {holder}"
                self._finish(plan_id, action, states, messages, ActionState.SKIPPED, why)
                continue
            check = self._driver.check(action)
            if check.verdict is Verdict.WAIT:
                messages[aid] = check.reason
                continue
            if check.verdict is Verdict.STALE:
                self._finish(plan_id, action, states, messages, ActionState.SKIPPED, check.reason)
                continue
            cid = command_id(plan_id, aid, attempts[aid])
            self._journal.start_action(plan_id, aid, attempts[aid])
            states[aid] = ActionState.RUNNING
            self._on_event(ExecutionEvent(plan_id, action, ActionState.RUNNING))
            occupy(action, busy_nodes, busy_links, +1)
            running[aid] = asyncio.ensure_future(
                self._driver.execute(action, cid, self._progress_callback(plan_id))
            )

    def _progress_callback(self, plan_id: str) -> ProgressCallback:
        def report(action: Action, fraction: float) -> None:
            self._on_event(ExecutionEvent(plan_id, action, ActionState.RUNNING, progress=fraction))

        return report

    def _record_outcome(
        self,
        plan_id: str,
        action: Action,
        task: asyncio.Task[Outcome],
        states: dict[int, ActionState],
        messages: dict[int, str],
    ) -> None:
        if task.cancelled():
            self._finish(plan_id, action, states, messages, ActionState.CANCELLED, "cancelled")
            return
        exc = task.exception()
        if exc is not None:
            log.warning("action %s of plan %s raised: %s", action.id, plan_id, exc)
            outcome = Outcome(False, f"{type(exc).__name__}: {exc}")
        else:
            outcome = task.result()
        state = ActionState.SUCCEEDED if outcome.succeeded else ActionState.FAILED
        self._finish(plan_id, action, states, messages, state, outcome.message, outcome.simulated)

    def _finish(
        self,
        plan_id: str,
        action: Action,
        states: dict[int, ActionState],
        messages: dict[int, str],
        state: ActionState,
        message: str,
        simulated: bool = False,
    ) -> None:
        self._journal.finish_action(plan_id, action.id, state, message, simulated)
        states[action.id] = state
        messages[action.id] = message
        self._on_event(ExecutionEvent(plan_id, action, state, message, 1.0, simulated))

    async def _cancel_all(
        self,
        plan_id: str,
        actions: dict[int, Action],
        states: dict[int, ActionState],
        attempts: dict[int, int],
        running: dict[int, asyncio.Task[Outcome]],
        messages: dict[int, str],
    ) -> None:
        for aid in running:
            action = actions[aid]
            if action.kind is ActionKind.MIGRATE:
                cid = command_id(plan_id, aid, attempts[aid])
                try:
                    await self._driver.abort(action, cid)
                except Exception as exc:  # the abort is best effort; the outcome tells
                    log.warning("abort of action %s failed: %s", aid, exc)
        for aid, task in running.items():
            try:
                outcome = await task
            except Exception as exc:
                outcome = Outcome(False, str(exc))
            state = ActionState.SUCCEEDED if outcome.succeeded else ActionState.CANCELLED
            done = (outcome.message, outcome.simulated)
            self._finish(plan_id, actions[aid], states, messages, state, *done)
        running.clear()
        for aid in [a for a, s in states.items() if s is ActionState.PENDING]:
            cancelled = (ActionState.CANCELLED, "plan cancelled")
            self._finish(plan_id, actions[aid], states, messages, *cancelled)
