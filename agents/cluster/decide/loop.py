"""The running decision loop: trigger → decide → (approve) → execute → cool down.

One plan runs at a time per cluster. In manual mode (and for rebalancing in partial mode) a plan
waits as a recommendation until an operator approves or rejects it; a recommendation that has
waited longer than its time to live is dropped, since the cluster it was made for has moved on.

Overload and underload cycles are answered by vmgrid's DecisionPolicy (``control.policy =
"vmgrid"``, the default; see policy_decider.py) or by the solver (``"solver"``); drains always
by the solver. The deciding itself (snapshot, trigger, policy or solver) runs in a forked child
process by default (``control.decision_process``; thinking.py and forked.py), so that a
decision over thousands of nodes does not slow the ingestion of their reports.

Maintenance: a drain is the operator's request, so its plans run without approval and without
cooldown. A VM the drain could not migrate (no destination fits, or its migration failed) gets
the configured fallback (suspend or shutdown) in the next cycle. When a node leaves maintenance
(however its flag was cleared), the VMs the journal says were drained from it go back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from vmgrid.agents.cluster.act.executor import ExecutionReport, PlanExecutor
from vmgrid.agents.cluster.act.journal import ActionState
from vmgrid.agents.cluster.decide.control import (
    ControlConfig,
    Decision,
    TriggerKind,
    needs_approval,
)
from vmgrid.agents.cluster.decide.forked import FORK_AVAILABLE, run_forked
from vmgrid.agents.cluster.decide.maintenance import DrainFallback, drained_from
from vmgrid.agents.cluster.decide.move_limits import HOUR_S, MoveHistory, PastMove
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider, policy_config
from vmgrid.agents.cluster.decide.thinking import (
    CycleRequest,
    Thought,
    nothing_to_trigger,
    think,
    think_on_state,
)
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.rules.check import violations
from vmgrid.agents.cluster.state.events import EventKind
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.errors import NotFound
from vmgrid.solver.plan import Action, ActionKind

log = logging.getLogger(__name__)

RETURN_SETTLE_S = 30.0
"""Longest wait, after an undrain, for agent reports to show where the drained VMs are."""
DECISION_TIMEOUT_S = 120.0
"""A decision process still busy this long (plus four solver time limits) is killed."""


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
        self.quiet_cycles = 0
        """Cycles ended in the manager: no node could trigger (`thinking.nothing_to_trigger`)."""
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
        self._parked: set[str] = set()
        """Undrained nodes that are powered off with no power-on command: their VMs go back
        once their agent is connected again."""
        manager.state.watch_hot(config.operator_policy.cpu_high, config.hold_s, self._held_hot)
        self.policy = PolicyDecider(policy_config(config))
        """vmgrid's DecisionPolicy with its hysteresis memory (used when config.policy is vmgrid)."""
        if config.decision_process and not FORK_AVAILABLE:
            log.warning(
                "decisions run in a thread of the manager (no fork here, or gRPC fork handlers "
                "on: GRPC_ENABLE_FORK_SUPPORT=%r); report latency rises while one is made",
                os.environ.get("GRPC_ENABLE_FORK_SUPPORT"),
            )

    def move_history(self) -> MoveHistory:
        """The journal's migrations as far back as the operator policy looks."""
        policy = self.config.operator_policy
        window = max(HOUR_S, policy.min_move_interval_s, policy.return_after_s)
        now = time.time()
        moves = self.executor.journal.migrations_since(now - window)
        return MoveHistory(tuple(PastMove(*m) for m in moves), now)

    def set_operator_policy(self, policy: OperatorPolicy) -> None:
        """Decide with `policy` from the next cycle on (the operator changed it)."""
        self.config = replace(self.config, operator_policy=policy)
        self.manager.state.retune_hot(policy.cpu_high)
        self.kick()

    def drain(self, node_id: str) -> None:
        """Put a node in maintenance: its VMs are moved away in the next cycle."""
        self.manager.state.set_draining(node_id, True)
        self.kick()

    def undrain(self, node_id: str) -> None:
        """Take a node out of maintenance: the VMs drained from it come back."""
        self.manager.state.set_draining(node_id, False)
        self.kick()

    def _held_hot(self, node_id: str) -> None:
        """A node's report completed an overload's hold time: decide now, not at the next
        period (up to ``period_s`` later)."""
        self.kick()

    def forget_node(self, node_id: str) -> None:
        """Forget a node the manager no longer hears from (ClusterManager.forget_node), and
        what the loop remembered of its maintenance."""
        self.manager.forget_node(node_id)
        for remembered in (self._draining, self._drain_failed, self._parked):
            remembered.discard(node_id)
        self._return_deadline.pop(node_id, None)
        if node_id in self._returning:
            self._returning.remove(node_id)

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
        self._note_undrained()
        self._recheck_impossible_rules()
        if self._busy() or self.pending:
            return None
        returning = self._returning.pop(0) if self._returning else None
        drained = drained_from(self.executor.journal, returning) if returning else {}
        request = CycleRequest(
            returning=returning,
            drained=tuple(drained.items()),
            drain_failed=frozenset(self._drain_failed),
            cooling_down=now < self._cooldown_until,
            history=self.move_history(),
        )
        started = time.perf_counter()
        try:
            thought = await self._think(request)
        except BaseException:
            # The undrain is still owed, but only until its settle deadline: a decision that
            # keeps failing must not hold back drains and relief for ever.
            if returning is not None and now < self._return_deadline.get(returning, 0):
                self._returning.insert(0, returning)
            raise
        if thought.used_drain_failed:
            self._drain_failed -= request.drain_failed
        if returning is not None:
            if thought.awaits_power_on:  # comes back once its agent is connected again
                self._parked.add(returning)
                self._return_deadline.pop(returning, None)
            waiting = thought.decision is None and thought.unsettled
            if waiting and now < self._return_deadline.get(returning, 0):
                self._returning.append(returning)
                return None
        decision = thought.decision
        if decision is None:
            if returning is not None:
                self._return_deadline.pop(returning, None)
            return None
        if thought.run_now:
            if self._busy():  # an operator plan started meanwhile: try again next cycle
                if returning is not None:
                    self._returning.insert(0, returning)
                if thought.used_drain_failed:
                    self._drain_failed |= request.drain_failed
                return None
            if returning is not None:
                self._return_deadline.pop(returning, None)
            return self._run_now(decision)
        if thought.decider is not None:
            self.policy = thought.decider
        if self._busy():  # an operator started a plan while this one was being decided
            if thought.decider is not None:
                self.policy.forget_last()  # the policy's memory of moves that will not run
            self._publish(f"decision dropped: plan {self._busy()} started meanwhile")
            return None
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

    async def _think(self, request: CycleRequest) -> Thought:
        """`think` in a forked child (forked.py) or a thread; neither if nothing can trigger."""
        state, decider, config = self.manager.state, self.policy, self.config
        if nothing_to_trigger(state, request, config):
            self.quiet_cycles += 1
            return Thought()
        if config.decision_process and FORK_AVAILABLE:
            timeout_s = DECISION_TIMEOUT_S + 4 * config.solver_time_limit_s
            return await run_forked(
                lambda: think_on_state(state, request, decider, config),
                timeout_s,
            )
        snapshot = state.snapshot()
        return await asyncio.to_thread(think, snapshot, request, decider, config)

    def _recheck_impossible_rules(self) -> None:
        """A rule reported impossible (an HA restart had to break it) that holds again is
        kept from now on: deciders and the applier see it once more."""
        state = self.manager.state
        impossible = [r for r in state.rules.rules() if r.rule_id in state.rules.impossible]
        if not impossible:
            return
        broken = {v.rule.rule_id for v in violations(impossible, to_model(state.snapshot()))}
        for rule in impossible:
            if rule.rule_id not in broken:
                state.report_possible(rule.rule_id)

    def _busy(self) -> str | None:
        """The plan under way, the loop's or anyone's (operator, restart): one at a time."""
        in_flight = self.executor.in_flight
        return self.running or (in_flight[0] if in_flight else None)

    def _note_undrained(self) -> None:
        state = self.manager.state
        known = state.node_ids()
        draining = {n for n in known if state.is_draining(n)}
        for node in sorted((self._draining - draining) & set(known)):
            self._queue_return(node)
        self._draining = draining
        for node in sorted(self._parked):  # undrained while off: powered on since (by hand)?
            if node not in known or state.is_draining(node):
                self._parked.discard(node)
            elif state.node_status(node) is NodeStatus.CONNECTED:
                self._parked.discard(node)
                self._queue_return(node)

    def _queue_return(self, node: str) -> None:
        if node not in self._returning:
            self._returning.append(node)
            self._return_deadline[node] = self._clock() + RETURN_SETTLE_S

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
                plan_id,
                decision.plan.actions,
                origin=decision.trigger.kind.value,
                summary=decision.summary,
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
