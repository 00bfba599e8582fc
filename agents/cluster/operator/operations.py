"""The operator's plans: dry runs, apply, cancel, approve, reject, and one-VM migrations.

Each ClusterService RPC is a thin call into this class, which works through the runtime's own
parts so that an operator's action takes the path the manager's would: a migration is a
one-action plan run by the plan executor (journaled, re-checked on fresh state, simulated
between test-driver nodes), an approval is the decision loop's. Progress of every plan, whoever
started it, is published on the event bus with the plan's id and overall fraction, so
`WatchEvents` is how clients follow it. Bad requests raise `VmgridError` subclasses naming the
bad value; nothing here changes state before a request has been validated.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import NoReturn

from vmgrid.agents.cluster.act.executor import ExecutionEvent, ExecutionReport, Verdict
from vmgrid.agents.cluster.act.journal import ActionState, PlanState
from vmgrid.agents.cluster.decide.control import Decision
from vmgrid.agents.cluster.decide.reasons import explained
from vmgrid.agents.cluster.operator import dry_run
from vmgrid.agents.cluster.operator.explain import Insight
from vmgrid.agents.cluster.operator.history import HistoryReads
from vmgrid.agents.cluster.operator.parts import ClusterParts
from vmgrid.agents.cluster.operator.plan_views import (
    PlanStatus,
    PlanView,
    final_state,
    from_actions,
    from_decision,
    from_record,
)
from vmgrid.agents.cluster.operator.policy import PolicyOperations
from vmgrid.agents.cluster.operator.rules import RuleOperations
from vmgrid.agents.cluster.operator.vm_commands import VmCommands
from vmgrid.agents.cluster.state.events import EventKind
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.agents.errors import FailedPrecondition, InvalidArgument, NotFound
from vmgrid.agents.model import MOVABLE_STATES
from vmgrid.solver.plan import Action

PROPOSAL_TTL_S = 300.0
"""A dry run older than this is refused by apply: the cluster it was made for has moved on."""
_MAX_PROPOSALS = 32


@dataclass(frozen=True, slots=True)
class _Proposal:
    plan_id: str
    decision: Decision
    created_unix_s: float


class PlanOperations:
    """Operator plan actions over a running ClusterParts (call from its event loop)."""

    def __init__(self, runtime: ClusterParts) -> None:
        self._runtime = runtime
        self._proposals: OrderedDict[str, _Proposal] = OrderedDict()
        self._rejected: dict[str, PlanView] = {}
        self._active: dict[str, asyncio.Task[ExecutionReport]] = {}
        self._started: dict[str, PlanView] = {}  # until the executor journals them
        self._progress: dict[str, dict[int, float]] = {}
        self._finished: dict[str, dict[int, ActionState]] = {}
        self._totals: dict[str, int] = {}
        runtime.executor.add_listener(self._on_execution)

    # ---- reads ----------------------------------------------------------------------------

    def simulated(self, action: Action) -> bool:
        """True when every node the action touches is a simulated (test-driver) node."""
        state = self._runtime.manager.state
        nodes = [n for n in (action.src, action.dst) if n is not None]
        known = set(state.node_ids())
        return bool(nodes) and all(n in known and state.view(n).identity.simulated for n in nodes)

    def get(self, plan_id: str) -> PlanView:
        """Any plan this cluster knows by id; NotFound names the ids it does know."""
        loop = self._runtime.loop
        if plan_id in self._proposals:
            p = self._proposals[plan_id]
            return from_decision(
                plan_id, p.decision, PlanStatus.PROPOSED, p.created_unix_s, self.simulated
            )
        if plan_id in loop.pending:
            rec = loop.pending[plan_id]
            created = time.time() - (time.monotonic() - rec.created_monotonic)
            return from_decision(
                plan_id, rec.decision, PlanStatus.AWAITING_APPROVAL, created, self.simulated
            )
        if plan_id in self._rejected:
            return self._rejected[plan_id]
        record = self._runtime.journal.plan(plan_id)
        if record is not None:
            return from_record(record, self.simulated)
        if plan_id in self._started:
            return self._started[plan_id]
        raise NotFound(
            f"no plan {plan_id!r} in this cluster (proposed: {sorted(self._proposals)}, "
            f"awaiting approval: {sorted(loop.pending)})"
        )

    def progress(self, plan_id: str) -> dict[int, float]:
        """Progress (0..1) of a running plan's actions that have started, by action id."""
        return dict(self._progress.get(plan_id, {}))

    def recent(self, limit: int = 20) -> list[PlanView]:
        """Dry runs, recommendations, then the `limit` most recent journaled plans."""
        if limit < 0:
            raise InvalidArgument(f"limit {limit} must be >= 0 (0 means 20)")
        ids = [*self._proposals, *self._runtime.loop.pending]
        views = [self.get(i) for i in ids]
        journaled = self._runtime.journal.plans()[-(limit or 20) :]
        views.extend(from_record(r, self.simulated) for r in reversed(journaled))
        return views

    # ---- dry run --------------------------------------------------------------------------

    async def propose(
        self, objective: str = "", drain_nodes: tuple[str, ...] = (), time_limit_ms: int = 0
    ) -> PlanView:
        """Decide without executing; the plan is kept so that `apply` can run it by id."""
        if time_limit_ms < 0:
            raise InvalidArgument(f"time_limit_ms {time_limit_ms} must be >= 0 (0: default)")
        config = self._runtime.loop.config
        if time_limit_ms:
            config = replace(config, solver_time_limit_s=time_limit_ms / 1000)
        snapshot = self._runtime.manager.state.snapshot()
        if objective not in dry_run.OBJECTIVES:
            dry_run.propose(snapshot, config, objective)  # raises the one-line error
        dry_run.with_drained(snapshot, drain_nodes)  # unknown nodes fail before solving
        preview = copy.deepcopy(self._runtime.loop.policy)  # the loop's own stays untouched
        decision = await asyncio.to_thread(
            dry_run.propose, snapshot, config, objective, drain_nodes, preview
        )
        decision = explained(snapshot, decision, config)
        plan_id = f"dry-{uuid.uuid4().hex[:10]}"
        now = time.time()
        if decision.plan is not None:
            self._proposals[plan_id] = _Proposal(plan_id, decision, now)
            while len(self._proposals) > _MAX_PROPOSALS:
                self._proposals.popitem(last=False)
        return from_decision(plan_id, decision, PlanStatus.PROPOSED, now, self.simulated)

    # ---- apply, approve, reject, cancel ---------------------------------------------------

    def apply(self, plan_id: str) -> PlanView:
        """Start a dry run or a waiting recommendation; returns at once (follow on events)."""
        loop = self._runtime.loop
        if plan_id in loop.pending:
            self._refuse_if_busy(plan_id)
            view = self.get(plan_id)
            loop.approve(plan_id)
            return _running(view)
        proposal = self._proposals.get(plan_id)
        if proposal is None:
            self._refuse_unknown(plan_id, "applied")
        assert proposal is not None and proposal.decision.plan is not None
        age_s = time.time() - proposal.created_unix_s
        if age_s > PROPOSAL_TTL_S:
            del self._proposals[plan_id]
            raise FailedPrecondition(
                f"plan {plan_id} was computed {age_s:.0f} s ago (limit {PROPOSAL_TTL_S:.0f} s); "
                "run plan again"
            )
        self._refuse_if_busy(plan_id)
        del self._proposals[plan_id]
        return self._start(plan_id, proposal.decision.summary, proposal.decision.plan.actions)

    def approve(self, plan_id: str) -> PlanView:
        """Approve a recommendation (or a dry run: the same as applying it)."""
        return self.apply(plan_id)

    def reject(self, plan_id: str, reason: str = "") -> PlanView:
        """Drop a recommendation or a dry run; the loop cools down after a rejection."""
        loop = self._runtime.loop
        if plan_id in loop.pending:
            view = self.get(plan_id)
            loop.reject(plan_id)
        elif plan_id in self._proposals:
            view = self.get(plan_id)
            del self._proposals[plan_id]
        else:
            self._refuse_unknown(plan_id, "rejected")
        summary = f"{view.summary} (rejected: {reason})" if reason else view.summary
        rejected = PlanView(
            plan_id, PlanStatus.REJECTED, summary, view.actions, view.created_unix_s
        )
        self._rejected[plan_id] = rejected
        while len(self._rejected) > _MAX_PROPOSALS:
            del self._rejected[next(iter(self._rejected))]
        return rejected

    def cancel(self, plan_id: str) -> PlanView:
        """Stop a running plan: pending actions are dropped, running migrations aborted."""
        if plan_id in self._runtime.loop.pending:
            raise FailedPrecondition(
                f"plan {plan_id} waits for approval and has not started; reject it instead"
            )
        if plan_id in self._proposals:
            view = self.get(plan_id)
            del self._proposals[plan_id]
            return PlanView(
                plan_id, PlanStatus.CANCELLED, view.summary, view.actions, view.created_unix_s
            )
        running = plan_id in self._active or plan_id == self._runtime.loop.running
        record = self._runtime.journal.plan(plan_id)
        if not running and (record is None or record.state is not PlanState.RUNNING):
            self._refuse_unknown(plan_id, "cancelled")
        self._runtime.executor.cancel(plan_id)
        return self.get(plan_id)

    # ---- one VM ---------------------------------------------------------------------------

    async def migrate(self, vm_uuid: str, destination: str = "", request_id: str = "") -> PlanView:
        """Move one VM (to `destination`, or where the solver puts it) as a one-action plan."""
        plan_id = f"op-{request_id}" if request_id else f"op-{uuid.uuid4().hex[:10]}"
        if plan_id in self._active or self._runtime.journal.plan(plan_id) is not None:
            return self.get(plan_id)  # a retried request: no second migration
        state = self._runtime.manager.state
        if not vm_uuid:
            raise InvalidArgument("vm_uuid is empty; give the uuid of a VM (see vmgridctl vms)")
        host, vm = state.find_vm(vm_uuid)
        name = vm.name or vm_uuid
        if vm.state not in MOVABLE_STATES:
            raise FailedPrecondition(
                f"VM {name} is {vm.state.value}; only a running VM can be migrated"
            )
        busy = [p for p, t in self._active.items() if not t.done() and vm_uuid in self._vms(p)]
        if busy:
            raise FailedPrecondition(f"VM {name} is already moving in plan {busy[0]}")
        if self._runtime.loop.running:
            raise FailedPrecondition(
                f"plan {self._runtime.loop.running} is running; wait for it or cancel it "
                f"before moving VM {name}"
            )
        if destination:
            self._check_destination(name, host, destination)
            reason = f"operator request: to {destination}"
        else:
            limit_s = self._runtime.loop.config.solver_time_limit_s
            destination = await asyncio.to_thread(
                dry_run.placement_for, state.snapshot(), vm_uuid, host, limit_s
            )
            reason = f"operator request: solver chose {destination}"
        action = dry_run.single_migration(vm_uuid, host, destination, reason)
        seconds = self._runtime.driver.estimated_seconds(action)
        action = dry_run.single_migration(vm_uuid, host, destination, reason, seconds)
        check = self._runtime.executor.check(action)
        if check.verdict is not Verdict.READY:
            raise FailedPrecondition(f"VM {name} cannot move to {destination} now: {check.reason}")
        summary = f"migrate {name} {host} -> {destination}"
        if self.simulated(action):
            summary += " (simulated)"
        return self._start(plan_id, summary, (action,))

    def _check_destination(self, name: str, host: str, destination: str) -> None:
        state = self._runtime.manager.state
        known = state.node_ids()
        if destination not in known:
            raise NotFound(f"node {destination!r} is not in the cluster (known: {sorted(known)})")
        if destination == host:
            raise FailedPrecondition(f"VM {name} already runs on {destination}")
        if state.node_status(destination) is not NodeStatus.CONNECTED:
            raise FailedPrecondition(f"node {destination} is lost; pick a connected node")
        if state.view(destination).draining:
            raise FailedPrecondition(f"node {destination} is draining; pick another node")

    # ---- internals ------------------------------------------------------------------------

    def _refuse_if_busy(self, plan_id: str) -> None:
        running = self._runtime.loop.running
        mine = [p for p, t in self._active.items() if not t.done()]
        others = self._runtime.executor.in_flight
        busy = running or (mine[0] if mine else None) or (others[0] if others else None)
        if busy:
            raise FailedPrecondition(
                f"plan {busy} is running; wait for it or cancel it before starting {plan_id}"
            )

    def _refuse_unknown(self, plan_id: str, verb: str) -> NoReturn:
        view = self.get(plan_id)  # NotFound when unknown
        allowed = "a running plan" if verb == "cancelled" else "a proposed or waiting plan"
        raise FailedPrecondition(
            f"plan {plan_id} is {view.status.value}; only {allowed} can be {verb}"
        )

    def _start(self, plan_id: str, summary: str, actions: tuple[Action, ...]) -> PlanView:
        executor = self._runtime.executor
        executor.claim(plan_id)  # the loop must see it before the task first runs
        task = asyncio.ensure_future(
            executor.run(plan_id, actions, origin="operator", summary=summary)
        )
        self._active[plan_id] = task
        self._totals[plan_id] = len(actions)
        task.add_done_callback(lambda _: self._forget(plan_id))
        self._publish(plan_id, f"{plan_id} starts: {summary}", 0.0, PlanStatus.RUNNING)
        view = from_actions(plan_id, summary, actions, time.time(), self.simulated)
        self._started[plan_id] = view
        return view

    def _forget(self, plan_id: str) -> None:
        self._runtime.executor.release(plan_id)
        self._active.pop(plan_id, None)
        self._started.pop(plan_id, None)

    def _vms(self, plan_id: str) -> set[str]:
        record = self._runtime.journal.plan(plan_id)
        return {r.action.subject for r in record.actions} if record is not None else set()

    def _on_execution(self, event: ExecutionEvent) -> None:
        plan_id, action = event.plan_id, event.action
        if plan_id not in self._totals:
            record = self._runtime.journal.plan(plan_id)
            self._totals[plan_id] = len(record.actions) if record is not None else 1
        progress = self._progress.setdefault(plan_id, {})
        finished = self._finished.setdefault(plan_id, {})
        if event.state.final:
            finished[action.id] = event.state
            progress[action.id] = 1.0
        else:
            progress[action.id] = event.progress
        total = self._totals[plan_id]
        fraction = min(1.0, sum(progress.values()) / max(1, total))
        where = f"{action.src or '-'} -> {action.dst or '-'}"
        text = f"{plan_id}: {action.kind.value} {action.subject} {where} {event.state.value}"
        if not event.state.final:
            text += f" {event.progress:.0%}"
        if event.message:
            text += f": {event.message}"
        simulated = event.simulated or self.simulated(action)
        self._publish(plan_id, text, fraction, PlanStatus.RUNNING, action, simulated)
        if len(finished) >= total:
            status = final_state(finished)
            self._publish(plan_id, f"{plan_id} {status.value}", 1.0, status)
            for table in (self._progress, self._finished, self._totals):
                table.pop(plan_id, None)

    def _publish(
        self,
        plan_id: str,
        message: str,
        fraction: float,
        status: PlanStatus,
        action: Action | None = None,
        simulated: bool = False,
    ) -> None:
        fields: dict[str, object] = {}
        if action is not None and not action.kind.on_node:
            fields["vm_uuid"] = action.subject
            fields["node_id"] = action.dst or action.src or ""
        self._runtime.manager.bus.publish(
            EventKind.PLAN_CHANGED,
            message=message,
            plan_id=plan_id,
            plan_progress_fraction=fraction,
            plan_state=status.value,
            simulated=simulated,
            **fields,
        )


def _running(view: PlanView) -> PlanView:
    return PlanView(
        view.plan_id,
        PlanStatus.RUNNING,
        view.summary,
        view.actions,
        view.created_unix_s,
        view.active_nodes_before,
        view.active_nodes_after,
    )


class OperatorApi:
    """What ClusterService's operator RPCs call: plans, direct VM/node actions and rules."""

    def __init__(self, runtime: ClusterParts) -> None:
        self.plans = PlanOperations(runtime)
        self.vms = VmCommands(runtime)
        self.rules = RuleOperations(runtime)
        self.policy = PolicyOperations(runtime)
        self.insight = Insight(runtime)
        self.history = HistoryReads(runtime, self.plans)
