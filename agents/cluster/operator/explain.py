"""Why a VM is where it is, and what would move it next (`vmgridctl explain`, GET
/vms/{id}/explain, ClusterService.ExplainVm), and the cluster's N+1 view.

An explanation reads only what the manager already keeps: the journal's last action that
placed the VM (a migration, a start, a resume, with its reason and time), the rules whose scope
names it and whether each holds, the loop's thresholds against its node's figures, a trigger
holding now, and plans waiting for approval that would move it.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from vmgrid.agents.cluster.act.journal import ActionRecord, ActionState, PlanRecord
from vmgrid.agents.cluster.decide.control import (
    ControlConfig,
    Decision,
    TriggerKind,
    cpu_pressure,
    find_trigger,
)
from vmgrid.agents.cluster.decide.operator_policy import below_band
from vmgrid.agents.cluster.decide.reasons import explained, node_figures
from vmgrid.agents.cluster.jobs.capacity import NPlusOne, n_plus_one
from vmgrid.agents.cluster.jobs.members import Member
from vmgrid.agents.cluster.operator import dry_run
from vmgrid.agents.cluster.operator.parts import ClusterParts
from vmgrid.agents.cluster.rules.holding import held_vms
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.agents.cluster.state.solver_view import memory_fraction, to_model
from vmgrid.agents.cluster.state.state import ClusterSnapshot, NodeView
from vmgrid.agents.errors import InvalidArgument, NotFound
from vmgrid.agents.model import VmUsage
from vmgrid.solver.plan import Action, ActionKind

PLACING = (ActionKind.MIGRATE, ActionKind.BOOT_VM, ActionKind.RESUME)
"""Actions that put a VM where it is."""


@dataclass(frozen=True)
class LastAction:
    """The journal's latest action that placed the VM."""

    plan_id: str
    origin: str
    action: Action
    state: ActionState
    message: str
    at_unix_s: float


@dataclass(frozen=True)
class RuleStanding:
    """A rule that names the VM, and whether it holds now."""

    rule: Rule
    state: str
    """holds, violated or impossible."""
    reason: str


@dataclass(frozen=True)
class Explanation:
    vm_uuid: str
    vm_name: str
    node: str
    text: str
    last_action: LastAction | None
    rules: tuple[RuleStanding, ...]
    next: str


def resolve_vm(snapshot: ClusterSnapshot, vm: str) -> tuple[str, VmUsage]:
    """(node, VM) by uuid or by name; NotFound names it, InvalidArgument an ambiguous name."""
    if not vm:
        raise InvalidArgument("no VM given; name a VM by uuid or name (see vmgridctl vms)")
    by_name = []
    for node, usage in snapshot.vms():
        if usage.uuid == vm:
            return node, usage
        if usage.name == vm:
            by_name.append((node, usage))
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        uuids = ", ".join(u.uuid for _, u in by_name)
        raise InvalidArgument(f"VM name {vm!r} is ambiguous ({uuids}); give its uuid")
    raise NotFound(f"VM {vm!r} is not known to cluster {snapshot.cluster_id!r}")


def rule_standings(
    snapshot: ClusterSnapshot,
    vm_uuid: str,
    rules: Sequence[Rule],
    impossible: Mapping[str, str],
) -> tuple[RuleStanding, ...]:
    """Rules whose scope names the VM, and whether each holds, is violated or was reported
    impossible (with the decider's reason)."""
    model = to_model(snapshot)
    out = []
    for rule in rules:
        if vm_uuid not in rule.constraint.vms_in_scope():
            continue
        if rule.rule_id in impossible:
            out.append(RuleStanding(rule, "impossible", impossible[rule.rule_id]))
        elif rule.constraint.is_satisfied(model, model):
            out.append(RuleStanding(rule, "holds", ""))
        else:
            out.append(RuleStanding(rule, "violated", f"{rule.constraint.label()} does not hold"))
    return tuple(out)


def next_move(
    snapshot: ClusterSnapshot,
    view: NodeView,
    vm: VmUsage,
    config: ControlConfig,
    pending: Sequence[tuple[str, Sequence[Action]]],
    preview: Callable[[], Decision] | None = None,
) -> str:
    """What would move the VM next: a plan waiting for it, a trigger holding now (with what
    the decision would do about it now, when `preview` runs it dry), or the thresholds its
    node would have to cross (with the headroom left)."""
    for plan_id, actions in pending:
        for action in actions:
            if action.subject == vm.uuid and action.kind is ActionKind.MIGRATE:
                return f"plan {plan_id} waits for approval and would move it to {action.dst}: {action.reason}"
    if view.draining:
        draining = [v.node_id for v in snapshot.nodes if v.draining]
        hold = held_vms(snapshot.rules, to_model(snapshot), draining).get(vm.uuid)
        if hold is not None:
            return (
                f"{view.node_id} is in maintenance, but it stays: {hold.reason}; the drain "
                f"fallback ({config.drain_fallback.value}) applies to it"
            )
        return (
            f"{view.node_id} is in maintenance: the drain moves it off as soon as a node has room"
        )
    trigger = find_trigger(snapshot, config)
    if trigger is not None and view.node_id in trigger.nodes:
        verb = "relieve" if trigger.kind is TriggerKind.OVERLOAD else "empty"
        text = f"the loop's {trigger.kind.value} trigger holds now ({trigger.reason})"
        if preview is None:
            return f"{text}: the next decision cycle may {verb} {view.node_id}"
        return f"{text}; {_dry_run(preview(), vm)}"
    if view.usage is None:
        return f"{view.node_id} has not reported yet: nothing can be decided about it"
    cpu = view.usage.cpu_used_millicores / max(1, view.capacity.cpu_millicores)
    band = config.operator_policy
    memory = memory_fraction(view)
    text = (
        f"{view.node_id} is at cpu {cpu:.0%}, memory {memory:.0%}; the loop moves VMs off it "
        f"above the band (cpu {band.cpu_high:.0%} or memory {band.memory_high:.0%}) held for "
        f"{config.hold_s:g} s ({max(0.0, min(band.cpu_high - cpu, band.memory_high - memory)):.0%}"
        " of headroom left)"
    )
    if config.pressure_trigger > 0:
        pressure = cpu_pressure(view.usage)
        shown = f"{pressure:.0f} %" if pressure >= 0 else "not reported"
        text += f" or CPU pressure above {config.pressure_trigger:g} % (now {shown})"
    text += (
        f", and may empty it for consolidation below cpu {band.cpu_low:.0%} and memory "
        f"{band.memory_low:.0%}"
    )
    if below_band(band, cpu, memory):
        text += (
            f": it is below now, so a consolidation may move this VM once held {config.hold_s:g} s"
        )
    return text


def _dry_run(decision: Decision, vm: VmUsage) -> str:
    """What the decision, run dry on the same snapshot, does about this VM."""
    actions = decision.plan.actions if decision.plan is not None else ()
    mine = [a for a in actions if a.subject == vm.uuid and not a.kind.on_node]
    if mine:
        return f"decided now, it would {mine[0].kind.value} it: {mine[0].reason}"
    if actions:
        return f"decided now, it would move {len(actions)} other VM(s), not this one"
    return f"decided now, it would move nothing ({decision.summary})"


def _clock(at_unix_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at_unix_s))


def explain(
    snapshot: ClusterSnapshot,
    vm: str,
    last: tuple[PlanRecord, ActionRecord, float] | None,
    config: ControlConfig,
    pending: Sequence[tuple[str, Sequence[Action]]] = (),
    rules: Sequence[Rule] | None = None,
    impossible: Mapping[str, str] | None = None,
    preview: Callable[[], Decision] | None = None,
) -> Explanation:
    """The explanation of `vm` (uuid or name) on `snapshot` (see the module docstring);
    `rules` defaults to the snapshot's (kept) rules."""
    node, usage = resolve_vm(snapshot, vm)
    view = snapshot.node(node)
    name = usage.name or usage.uuid
    sentences = [f"{name} is {usage.state.value} on {node} ({node_figures(view)})."]
    last_action = None
    if last is not None:
        plan, record, at = last
        action = record.action
        last_action = LastAction(
            plan.plan_id, plan.origin, action, record.state, record.message, at
        )
        state = record.state.value
        how = f"{action.kind.value} {action.src or '-'} -> {action.dst or '-'}"
        sentences.append(
            f"Last placed by plan {plan.plan_id} ({plan.origin}, {how}, {state}) at "
            f"{_clock(at)}: {action.reason}."
        )
    else:
        sentences.append(
            f"The journal records no plan that placed it: it was on {node} when the manager "
            "first saw it."
        )
    standings = rule_standings(
        snapshot, usage.uuid, snapshot.rules if rules is None else rules, impossible or {}
    )
    if standings:
        listed = "; ".join(
            f"{s.rule.rule_id} {s.rule.constraint.label()} ({s.state})" for s in standings
        )
        sentences.append(f"Rules that name it: {listed}.")
    else:
        sentences.append("No rule names it.")
    nxt = next_move(snapshot, view, usage, config, pending, preview)
    sentences.append(f"Next: {nxt}.")
    return Explanation(usage.uuid, name, node, " ".join(sentences), last_action, standings, nxt)


class Insight:
    """Explanations and the N+1 view over a running cluster manager's parts."""

    def __init__(self, runtime: ClusterParts) -> None:
        self._runtime = runtime
        self.members: Callable[[], Sequence[Member]] = lambda: ()
        """HA VMs (job members); the runtime points this at its member store."""

    async def explain(self, vm: str) -> Explanation:
        """Read on the manager's loop, explained in a thread: a trigger holding on the VM's
        node is answered by a dry run of the decision (with a copy of the loop's policy, whose
        memory stays untouched), which may take the solver's time."""
        runtime = self._runtime
        state = runtime.manager.state
        snapshot = state.snapshot()
        _, usage = resolve_vm(snapshot, vm)
        last = runtime.journal.last_vm_action(usage.uuid, PLACING)
        pending = [
            (rec.plan_id, rec.decision.plan.actions if rec.decision.plan else ())
            for rec in runtime.loop.pending.values()
        ]
        rules, impossible = state.rules.rules(), dict(state.rules.impossible)
        config, policy = runtime.loop.config, copy.deepcopy(runtime.loop.policy)

        def preview() -> Decision:
            return explained(snapshot, dry_run.propose(snapshot, config, policy=policy), config)

        return await asyncio.to_thread(
            explain, snapshot, vm, last, config, pending, rules, impossible, preview
        )

    async def n_plus_one(self) -> NPlusOne:
        """Computed in a thread on a snapshot of its own (a large cluster takes seconds: see
        docs/control.md), so the manager's loop keeps ingesting reports."""
        snapshot = self._runtime.manager.state.snapshot()
        members = list(self.members())
        return await asyncio.to_thread(n_plus_one, snapshot, members)
