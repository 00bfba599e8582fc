"""The pure part of a decision cycle: from a snapshot to what the loop should start.

`think` reads a snapshot and the loop's standing requests (a node to bring VMs back to, VMs a
drain could not move, whether rebalancing is cooling down) and returns a `Thought`. It writes
nothing but the policy decider's hysteresis memory, and it returns the decider it used, so the
same function can run in a thread of the manager or in a forked child (see forked.py), whose
copy of the decider then replaces the parent's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vmgrid.agents.cluster.decide.control import (
    ControlConfig,
    Decision,
    PolicyKind,
    Trigger,
    TriggerKind,
    decide,
    find_trigger,
    trigger_from,
)
from vmgrid.agents.cluster.decide.maintenance import (
    DrainFallback,
    fallback_actions,
    keeping_rules,
    return_actions,
    running_vms_on,
    unsettled,
)
from vmgrid.agents.cluster.decide.move_limits import MoveHistory
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider
from vmgrid.agents.cluster.decide.pressure import as_full, pressured_nodes
from vmgrid.agents.cluster.decide.reasons import explained
from vmgrid.agents.cluster.state.quiet import QuietBand
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.cluster.state.state import ClusterSnapshot, ClusterState, NodeStatus
from vmgrid.solver.plan import Action, ActionKind, Plan


@dataclass(frozen=True)
class CycleRequest:
    """What the loop asks of one cycle besides watching for triggers."""

    returning: str | None = None
    """A node that left maintenance: bring back the VMs in `drained`."""
    drained: tuple[tuple[str, ActionKind], ...] = ()
    """(VM uuid, how it left) for the VMs the journal says were drained from `returning`."""
    drain_failed: frozenset[str] = frozenset()
    """VMs whose drain migration did not happen: they get the drain fallback."""
    cooling_down: bool = False
    """A plan ended less than the cooldown ago: no rebalancing (drains still run)."""
    history: MoveHistory = MoveHistory()
    """Recent migrations (the journal's): budgets and minimum times are counted on them."""


@dataclass(frozen=True)
class Thought:
    """The cycle's conclusion."""

    decision: Decision | None = None
    run_now: bool = False
    """The operator asked for this (drain fallback, undrain): start it without approval."""
    unsettled: bool = False
    """Undrain: reports do not show yet where the drained VMs are; look again later."""
    used_drain_failed: bool = False
    """The drain fallback was decided for `drain_failed`; the loop may forget them."""
    decider: PolicyDecider | None = None
    """The policy decider after this cycle (set when the vmgrid policy decided)."""
    awaits_power_on: bool = False
    """Undrain of a powered-off node that vmgrid cannot power on: retry once it is back."""


def think(
    snapshot: ClusterSnapshot,
    request: CycleRequest,
    decider: PolicyDecider,
    config: ControlConfig,
    trigger: Trigger | None = None,
) -> Thought:
    """One cycle's conclusion on `snapshot` (see the module docstring), each action of its
    plan explained in words and figures (reasons.py). `trigger`: the one found on the same
    state's gauges (think_on_state), not looked for again."""
    thought = _conclude(snapshot, request, decider, config, trigger)
    if thought.decision is None:
        return thought
    return replace(thought, decision=explained(snapshot, thought.decision, config))


def nothing_to_trigger(state: ClusterState, request: CycleRequest, config: ControlConfig) -> bool:
    """The cycle can end in the manager, with an empty Thought: no node to bring VMs back to
    and no node that can trigger (state/quiet.py: exact when it says so), so neither a
    snapshot nor a decision process is needed. Each fork of a large manager costs it a fault
    for every page it writes afterwards; a cluster in its band now forks none."""
    if request.returning is not None:
        return False
    return not state.may_trigger(quiet_band(config), config.hold_s)


def quiet_band(config: ControlConfig) -> QuietBand:
    """What the trigger compares a node's samples with, under `config` (state/quiet.py)."""
    band = config.operator_policy
    return QuietBand(band.cpu_low, band.cpu_high, band.memory_high, config.pressure_trigger)


def think_on_state(
    state: ClusterState,
    request: CycleRequest,
    decider: PolicyDecider,
    config: ControlConfig,
) -> Thought:
    """`think` on the state itself, for a process whose copy of it no longer changes (a
    forked decision process). A cycle with nothing to do (no node to bring VMs back to, no
    trigger on the nodes' gauges) ends before the snapshot is taken: the snapshot builds
    every VM's object (at 5,000 nodes of 20 VMs, most of a 4 s child's life)."""
    trigger = None
    if request.returning is None:
        trigger = trigger_from(state.gauges(), state.node_histories(copy=False), config)
        if trigger is None:
            return Thought()
    snapshot = state.snapshot(copy_history=False, built_vms=False)
    return think(snapshot, request, decider, config, trigger)


def _conclude(
    snapshot: ClusterSnapshot,
    request: CycleRequest,
    decider: PolicyDecider,
    config: ControlConfig,
    known: Trigger | None = None,
) -> Thought:
    if request.returning is not None:
        return _return_home(snapshot, request.returning, dict(request.drained), config)
    trigger = known or find_trigger(snapshot, config)
    if trigger is None:
        return Thought()
    draining = trigger.kind is TriggerKind.DRAIN
    if not draining and request.cooling_down:
        return Thought()
    used = draining and bool(request.drain_failed)
    if used:
        stuck = fallback_actions(
            snapshot, trigger.nodes, config.drain_fallback, set(request.drain_failed)
        )
        if stuck:
            decision = _fallback(snapshot, trigger, stuck, config, "VM(s) that did not migrate")
            return Thought(decision, run_now=True, used_drain_failed=True)
    decision, policy_decider = _decided(snapshot, trigger, decider, config, request)
    if decision.plan is None and draining:
        stuck = fallback_actions(snapshot, trigger.nodes, config.drain_fallback, held=decision.held)
        if stuck:
            decision = _fallback(snapshot, trigger, stuck, config, "VM(s)", decision)
        elif _only_held(snapshot, trigger, decision) and not request.cooling_down:
            other = find_trigger(snapshot, config, drains=False)
            if other is not None:  # the drain can do no more: rebalancing goes on meanwhile
                rebalance, policy_decider = _decided(snapshot, other, decider, config, request)
                if rebalance.plan is not None:
                    summary = f"{rebalance.summary}; meanwhile {decision.summary}"
                    decision = replace(rebalance, summary=summary)
    elif draining and decision.held:
        held = fallback_actions(
            snapshot, trigger.nodes, config.drain_fallback, set(decision.held), decision.held
        )
        if held:
            decision = _with_held_fallback(decision, held, config)
    return Thought(decision, used_drain_failed=used, decider=policy_decider)


def _decided(
    snapshot: ClusterSnapshot,
    trigger: Trigger,
    decider: PolicyDecider,
    config: ControlConfig,
    request: CycleRequest,
) -> tuple[Decision, PolicyDecider | None]:
    """The decision on `trigger`, and the policy decider when it was the one deciding."""
    seen = as_full(snapshot, pressured_nodes(snapshot, trigger, config))
    if trigger.kind is TriggerKind.DRAIN or config.policy is PolicyKind.SOLVER:
        return decide(seen, trigger, config, request.history), None
    return decider.decide(seen, trigger, config, request.history), decider


def _only_held(snapshot: ClusterSnapshot, trigger: Trigger, decision: Decision) -> bool:
    """Whether every VM still running on the draining nodes is one a rule keeps there."""
    left = {vm for node in trigger.nodes for vm in running_vms_on(snapshot, node)}
    return bool(left) and left <= set(decision.held)


def _with_held_fallback(
    decision: Decision, held: tuple[Action, ...], config: ControlConfig
) -> Decision:
    """The drain's plan with the fallback, beside its migrations, for the VMs a rule keeps on
    the draining node (they would only be found there again next cycle)."""
    assert decision.plan is not None
    first = max((a.id for a in decision.plan.actions), default=-1) + 1
    extra = tuple(replace(a, id=first + i) for i, a in enumerate(held))
    plan = replace(decision.plan, actions=(*decision.plan.actions, *extra))
    fallback = config.drain_fallback
    summary = f"{decision.summary}; drain fallback: {fallback.value} {len(held)} VM(s) held by "
    summary += "a rule" + _not_empty(fallback, decision.trigger.nodes)
    return replace(decision, plan=plan, summary=summary)


def _fallback(
    snapshot: ClusterSnapshot,
    trigger: Trigger,
    stuck: tuple[Action, ...],
    config: ControlConfig,
    what: str,
    failed: Decision | None = None,
) -> Decision:
    """The drain fallback for `stuck` VMs, after the solver's `failed` decision if any."""
    fallback = config.drain_fallback
    summary = f"drain fallback: {fallback.value} {len(stuck)} {what}"
    summary += _not_empty(fallback, trigger.nodes)
    if failed is None:
        return Decision(trigger, _plan(snapshot, stuck), summary)
    return Decision(trigger, _plan(snapshot, stuck), f"{failed.summary}; {summary}", failed.stats)


def _return_home(
    snapshot: ClusterSnapshot, node: str, drained: dict[str, ActionKind], config: ControlConfig
) -> Thought:
    actions, refused = keeping_rules(snapshot, return_actions(snapshot, node, drained))
    trigger = Trigger(TriggerKind.UNDRAIN, (node,), f"{node} left maintenance")
    staying = f"; {len(refused)} stay where they are: {'; '.join(refused)}" if refused else ""
    if not actions:
        if refused:
            return Thought(Decision(trigger, None, f"undrain {node}: no VM goes back{staying}"))
        # Reports lag the journal: a VM the drain moved may still show on its old node,
        # or on none, for a report period. The loop looks again until the reports agree.
        return Thought(unsettled=unsettled(snapshot, node, drained))
    summary = f"undrain {node}: {len(actions)} VM(s) go back{staying}"
    if snapshot.node(node).status is NodeStatus.POWERED_OFF:
        if not config.wake_powered_off:
            why = (
                "it is powered off and vmgrid may not power it on (no power_on_command, or "
                "wake_powered_off = false): power it on by hand; its VMs go back once its agent "
                "is connected"
            )
            return Thought(Decision(trigger, None, f"undrain {node}: {why}"), awaits_power_on=True)
        summary = f"undrain {node}: power it on, then {len(actions)} VM(s) go back{staying}"
        actions = _after_boot(node, actions)
    return Thought(Decision(trigger, _plan(snapshot, actions), summary), run_now=True)


def _after_boot(node: str, actions: tuple[Action, ...]) -> tuple[Action, ...]:
    """A BOOT_NODE for `node` first, and every other action after it."""
    boot = Action(0, ActionKind.BOOT_NODE, node, None, node, 0, 0, f"{node} left maintenance")
    later = tuple(
        replace(a, id=a.id + 1, depends_on=(0, *(d + 1 for d in a.depends_on))) for a in actions
    )
    return (boot, *later)


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
