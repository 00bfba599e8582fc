"""The running decision loop: trigger → decide → (approve) → execute → cool down.

One plan runs at a time per cluster. In manual mode (and for rebalancing in partial mode) a plan
waits as a recommendation until an operator approves or rejects it; a recommendation that has
waited longer than its time to live is dropped, since the cluster it was made for has moved on.
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
    TriggerKind,
    decide,
    find_trigger,
    needs_approval,
)
from vmgrid.agents.cluster.events import EventKind
from vmgrid.agents.cluster.executor import ExecutionReport, PlanExecutor
from vmgrid.agents.cluster.manager import ClusterManager
from vmgrid.agents.errors import NotFound
from vmgrid.solver.plan import Action

log = logging.getLogger(__name__)


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
        if self.running is not None or self.pending:
            return None
        snapshot = self.manager.state.snapshot()
        trigger = find_trigger(snapshot, self.config)
        if trigger is None:
            return None
        if trigger.kind is not TriggerKind.DRAIN and now < self._cooldown_until:
            return None
        decision = await asyncio.to_thread(decide, snapshot, trigger, self.config)
        self.decisions.append(decision)
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

    def approve(self, plan_id: str) -> asyncio.Task[ExecutionReport]:
        """Run a recommended plan; NotFound names an unknown or expired id."""
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
        self._publish(f"{plan_id} rejected by the operator")
        self._cooldown_until = self._clock() + self.config.cooldown_s

    def _start(self, plan_id: str, decision: Decision) -> asyncio.Task[ExecutionReport]:
        assert decision.plan is not None
        self.running = plan_id
        self._publish(f"{plan_id} starts: {decision.summary}")
        for action in decision.plan.actions:
            self._publish(f"{plan_id}: {self.describe(action)}")
        task = asyncio.ensure_future(self._execute(plan_id, decision))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _execute(self, plan_id: str, decision: Decision) -> ExecutionReport:
        assert decision.plan is not None
        try:
            report = await self.executor.run(
                plan_id, decision.plan.actions, origin=decision.trigger.kind.value
            )
        finally:
            self.running = None
            self._cooldown_until = self._clock() + self.config.cooldown_s
        self._publish(f"{plan_id} {report.state.value}: {decision.summary}")
        return report

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
                self._publish(f"{plan_id} expired without approval")

    def _publish(self, message: str) -> None:
        log.info("%s", message)
        self.manager.bus.publish(EventKind.PLAN_CHANGED, message=message)
