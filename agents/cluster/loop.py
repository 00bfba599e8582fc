"""The running decision loop: trigger → decide → (approve) → execute → cool down.

One plan runs at a time per cluster. In manual mode (and for rebalancing in partial mode) a plan
waits as a recommendation until an operator approves or rejects it; a recommendation that has
waited longer than its time to live is dropped, since the cluster it was made for has moved on.

Overload and underload cycles are answered by vmgrid's DecisionPolicy (``control.policy =
"vmgrid"``, the default; see policy_decider.py) or by the solver (``"solver"``); drains always
by the solver.

Maintenance: a drain is the operator's request, so its plans run without approval and without
cooldown. A VM the drain could not migrate (no destination fits, or its migration failed) gets
the configured fallback (suspend or shutdown) in the next cycle. When a node leaves maintenance
(however its flag was cleared), the VMs the journal says were drained from it go back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from vmgrid.agents.cluster.control import (
    ControlConfig,
    Decision,
    PolicyKind,
    Trigger,
    TriggerKind,
    decide,
    find_trigger,
    needs_approval,
)
from vmgrid.agents.cluster.events import EventKind
from vmgrid.agents.cluster.executor import ExecutionReport, PlanExecutor
from vmgrid.agents.cluster.journal import ActionState
from vmgrid.agents.cluster.maintenance import (
    DrainFallback,
    drained_from,
    fallback_actions,
    return_actions,
    unsettled,
)
from vmgrid.agents.cluster.manager import ClusterManager
from vmgrid.agents.cluster.policy_decider import PolicyDecider
from vmgrid.agents.cluster.solver_view import to_model
from vmgrid.agents.cluster.state import ClusterSnapshot
from vmgrid.agents.errors import NotFound
from vmgrid.solver.plan import Action, ActionKind, Plan

log = logging.getLogger(__name__)

RETURN_SETTLE_S = 30.0
"""Longest wait, after an undrain, for agent reports to show where the drained VMs are."""


@dataclass(frozen=True)
class Recommendation:
    """A decided plan waiting for an operator."""

    plan_id: str
    decision: Decision
    created_monotonic: float


class ControlLoop:
    """Periodic and event-triggered decisions for one cluster manager."""

    def __init__(
        self,
        manager: ClusterManager,
        executor: PlanExecutor,
        config: ControlConfig,
        clock: Callable[[], float] = time.monotonic,
        recommendation_ttl_s: float = 300.0,
    ) -> None:
        self.manager = manager
        self.executor = executor
        self.config = config
        self._clock = clock
        self._ttl_s = recommendation_ttl_s
        self.pending: dict[str, Recommendation] = {}
        self.running: str | None = None
        self.decisions: deque[Decision] = deque(maxlen=100)
        self._cooldown_until = 0.0
        self._last_summary = ""
        self._kick = asyncio.Event()
        self._tasks: set[asyncio.Task[ExecutionReport]] = set()
        self.decision_listeners: list[Callable[[Decision, float], None]] = []
        """Called with each decision and the seconds it took to decide (metrics)."""
        self._draining: set[str] = set()
        self._returning: list[str] = []
        self._return_deadline: dict[str, float] = {}
        """Node -> until when an undrain waits for reports to show its drained VMs settled."""
        self._drain_failed: set[str] = set()
        self.policy = PolicyDecider()
        """vmgrid's DecisionPolicy with its hysteresis memory (used when config.policy is vmgrid)."""

    def drain(self, node_id: str) -> None:
        """Put a node in maintenance: its VMs are moved away in the next cycle."""
        self.manager.state.set_draining(node_id, True)
        self.kick()

    def undrain(self, node_id: str) -> None:
        """Take a node out of maintenance: the VMs drained from it come back."""
        self.manager.state.set_draining(node_id, False)
        self.kick()

    def kick(self) -> None:
        """Run a cycle now instead of at the next period (a drain, an operator request)."""
        self._kick.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle every period (or when kicked) until `stop` is set."""
        while not stop.is_set():
            try:
                await self.cycle()
            except Exception:  # one failed cycle must not stop the loop
                log.exception("decision cycle failed")
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_any(stop), self.config.period_s)

    async def _wait_any(self, stop: asyncio.Event) -> None:
        kicked = asyncio.ensure_future(self._kick.wait())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([kicked, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            kicked.cancel()
            stopped.cancel()

    async def cycle(self) -> Decision | None:
        """One decision: None when there is nothing to do or a plan is already under way."""
        now = self._clock()
        self._expire(now)
        snapshot = self.manager.state.snapshot()
        self._note_undrained(snapshot)
        if self._busy() or self.pending:
            return None
        if self._returning:
            return self._return_home(snapshot, self._returning.pop(0), now)
        trigger = find_trigger(snapshot, self.config)
        if trigger is None:
            return None
        if trigger.kind is not TriggerKind.DRAIN and now < self._cooldown_until:
            return None
        fallback = self.config.drain_fallback
        if trigger.kind is TriggerKind.DRAIN and self._drain_failed:
            stuck = fallback_actions(snapshot, trigger.nodes, fallback, self._drain_failed)
            self._drain_failed.clear()
            if stuck:
                summary = (
                    f"drain fallback: {fallback.value} {len(stuck)} VM(s) that did not migrate"
                    f"{_not_empty(fallback, trigger.nodes)}"
                )
                return self._run_now(Decision(trigger, _plan(snapshot, stuck), summary))
        started = time.perf_counter()
        decision = await asyncio.to_thread(self._decide, snapshot, trigger)
        if self._busy():  # an operator started a plan while this one was being decided
            if trigger.kind is not TriggerKind.DRAIN and self.config.policy is PolicyKind.VMGRID:
                self.policy.forget_last()  # the policy's memory of moves that will not run
            self._publish(f"decision dropped: plan {self._busy()} started meanwhile")
            return None
        if decision.plan is None and trigger.kind is TriggerKind.DRAIN:
            stuck = fallback_actions(snapshot, trigger.nodes, fallback)
            if stuck:
                summary = (
                    f"{decision.summary}; drain fallback: {fallback.value} {len(stuck)} VM(s)"
                    f"{_not_empty(fallback, trigger.nodes)}"
                )
                decision = Decision(trigger, _plan(snapshot, stuck), summary, decision.stats)
        self.decisions.append(decision)
        for listener in self.decision_listeners:
            listener(decision, time.perf_counter() - started)
        if decision.summary != self._last_summary:  # a standing condition is said once
            self._publish(decision.summary)
        self._last_summary = decision.summary
        if decision.plan is None:
            return decision
        plan_id = f"plan-{uuid.uuid4().hex[:10]}"
        if needs_approval(decision, self.config.automation):
            self.pending[plan_id] = Recommendation(plan_id, decision, now)
            self._publish(f"{plan_id} waits for approval: {decision.summary}")
        else:
            self._start(plan_id, decision)
        return decision

    def _busy(self) -> str | None:
        """The plan under way, the loop's or anyone's (operator, restart): one at a time."""
        in_flight = self.executor.in_flight
        return self.running or (in_flight[0] if in_flight else None)

    def _decide(self, snapshot: ClusterSnapshot, trigger: Trigger) -> Decision:
        """Drains go to the solver (offline nodes); the rest to the configured policy."""
        if trigger.kind is TriggerKind.DRAIN or self.config.policy is PolicyKind.SOLVER:
            return decide(snapshot, trigger, self.config)
        return self.policy.decide(snapshot, trigger, self.config)

    def _note_undrained(self, snapshot: ClusterSnapshot) -> None:
        draining = {v.node_id for v in snapshot.nodes if v.draining}
        known = {v.node_id for v in snapshot.nodes}
        for node in sorted((self._draining - draining) & known):
            if node not in self._returning:
                self._returning.append(node)
                self._return_deadline[node] = self._clock() + RETURN_SETTLE_S
        self._draining = draining

    def _return_home(self, snapshot: ClusterSnapshot, node: str, now: float) -> Decision | None:
        drained = drained_from(self.executor.journal, node)
        actions = return_actions(snapshot, node, drained)
        if not actions:
            # Reports lag the journal: a VM the drain moved may still show on its old node,
            # or on none, for a report period. Look again until the reports agree.
            if unsettled(snapshot, node, drained) and now < self._return_deadline.get(node, 0):
                self._returning.append(node)
            else:
                self._return_deadline.pop(node, None)
            return None
        self._return_deadline.pop(node, None)
        trigger = Trigger(TriggerKind.UNDRAIN, (node,), f"{node} left maintenance")
        summary = f"undrain {node}: {len(actions)} VM(s) go back"
        return self._run_now(Decision(trigger, _plan(snapshot, actions), summary))

    def _run_now(self, decision: Decision) -> Decision:
        """Start an operator-requested plan (drain fallback, undrain): no approval needed."""
        self.decisions.append(decision)
        self._last_summary = decision.summary
        self._start(f"plan-{uuid.uuid4().hex[:10]}", decision)
        return decision

    def approve(self, plan_id: str) -> asyncio.Task[ExecutionReport]:
        """Run a recommended plan; NotFound names an unknown or expired id."""
        self._expire(self._clock())  # the periodic sweep may not have run since it expired
        recommendation = self.pending.pop(plan_id, None)
        if recommendation is None:
            raise NotFound(
                f"no plan {plan_id!r} waits for approval (known: {sorted(self.pending)})"
            )
        return self._start(plan_id, recommendation.decision)

    def reject(self, plan_id: str) -> None:
        if self.pending.pop(plan_id, None) is None:
            raise NotFound(
                f"no plan {plan_id!r} waits for approval (known: {sorted(self.pending)})"
            )
        self.policy.forget_last()
        self._publish(f"{plan_id} rejected by the operator")
        self._cooldown_until = self._clock() + self.config.cooldown_s

    def _start(self, plan_id: str, decision: Decision) -> asyncio.Task[ExecutionReport]:
        assert decision.plan is not None
        self.running = plan_id
        self.executor.claim(plan_id)
        task = asyncio.ensure_future(self._execute(plan_id, decision))
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._ended(plan_id, t))
        self._publish(f"{plan_id} starts: {decision.summary}")
        for action in decision.plan.actions:
            self._publish(f"{plan_id}: {self.describe(action)}")
        return task

    def _ended(self, plan_id: str, task: asyncio.Task[ExecutionReport]) -> None:
        """Whatever way the plan's task ended (even cancelled before it ran), the loop is free."""
        self._tasks.discard(task)
        self.executor.release(plan_id)
        if self.running == plan_id:
            self.running = None

    async def _execute(self, plan_id: str, decision: Decision) -> ExecutionReport:
        assert decision.plan is not None
        try:
            report = await self.executor.run(
                plan_id, decision.plan.actions, origin=decision.trigger.kind.value
            )
        finally:
            self.running = None
            self._cooldown_until = self._clock() + self.config.cooldown_s
        if decision.trigger.kind is TriggerKind.DRAIN:
            self._note_failed_drain(decision.plan.actions, report)
        self._publish(f"{plan_id} {report.state.value}: {decision.summary}")
        return report

    def _note_failed_drain(self, actions: tuple[Action, ...], report: ExecutionReport) -> None:
        """Remember VMs whose drain migration did not happen, for the fallback."""
        if self.config.drain_fallback is DrainFallback.NONE:
            return
        failed = {ActionState.FAILED, ActionState.SKIPPED, ActionState.CANCELLED}
        for action in actions:
            if action.kind is ActionKind.MIGRATE and report.actions.get(action.id) in failed:
                self._drain_failed.add(action.subject)
        if self._drain_failed:
            self.kick()

    def describe(self, action: Action) -> str:
        """The action in words, with the VM's name rather than its uuid."""
        try:
            name = self.manager.state.find_vm(action.subject)[1].name or action.subject
        except NotFound:
            name = action.subject
        where = f"{action.src or '-'} -> {action.dst or '-'}"
        return f"{action.kind.value} {name} {where}: {action.reason}"

    def _expire(self, now: float) -> None:
        for plan_id, rec in list(self.pending.items()):
            if now - rec.created_monotonic > self._ttl_s:
                del self.pending[plan_id]
                self.policy.forget_last()
                self._publish(f"{plan_id} expired without approval")

    def _publish(self, message: str) -> None:
        log.info("%s", message)
        self.manager.bus.publish(EventKind.PLAN_CHANGED, message=message)


def _not_empty(fallback: DrainFallback, nodes: tuple[str, ...]) -> str:
    """A paused VM keeps its memory (and its life) on the node: say the drain is not done."""
    if fallback is not DrainFallback.SUSPEND:
        return ""
    where = ", ".join(nodes)
    return (
        f"; paused VMs keep their memory on {where}, which is not empty: do not power it off "
        "(drain_fallback = shutdown empties it)"
    )


def _plan(snapshot: ClusterSnapshot, actions: tuple[Action, ...]) -> Plan:
    """A plan built here rather than by the solver (fallback, undrain): models are informative."""
    model = to_model(snapshot)
    return Plan(model, model, actions)
