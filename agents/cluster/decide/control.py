"""The cluster manager's decision step: when to reconfigure, and into what.

Triggers are read from the snapshot's usage history, so the step itself keeps no state:
- overload: a node above the operator policy's band (``cpu_high`` or ``memory_high``) in every
  sample of the last `hold_s` seconds;
- underload: a node with VMs below the band (``cpu_low`` and ``memory_low``) for `hold_s`
  (hysteresis: the band's edges are apart, so a node freed by consolidation is not refilled and
  emptied again);
- drain: a node in maintenance that still runs VMs (see maintenance.py for the fallback).
What to do about a trigger depends on `policy`. With the default `vmgrid`, overload and
underload cycles are answered by vmgrid's DecisionPolicy, the one the PlanetLab replay runs
(`policy_decider.py`). With `solver`, and for drains under either, `decide` below gives the
solver the snapshot as a model whose capacities are cut to the band's top,
the draining nodes as `offline` constraints, and an objective per trigger. A consolidation plan
that frees fewer than `min_gain_nodes` nodes is dropped. With `power_saving`, every node a plan
empties (consolidation or drain) gets a final SHUTDOWN_NODE action after the VMs have left it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from vmgrid.agents.cluster.decide.maintenance import DrainFallback, drain_constraints
from vmgrid.agents.cluster.decide.move_limits import MoveHistory, policy_constraints, screened_plan
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.decide.triggers import Trigger as Trigger
from vmgrid.agents.cluster.decide.triggers import TriggerKind as TriggerKind
from vmgrid.agents.cluster.decide.triggers import cpu_pressure as cpu_pressure
from vmgrid.agents.cluster.decide.triggers import find_trigger as find_trigger
from vmgrid.agents.cluster.decide.triggers import trigger_from as trigger_from
from vmgrid.agents.cluster.rules.check import solvable
from vmgrid.agents.cluster.rules.holding import Hold, held_summary, held_vms
from vmgrid.agents.cluster.state.migration_estimate import MigrationLink
from vmgrid.agents.cluster.state.solver_view import ViewOptions, to_model
from vmgrid.agents.cluster.state.state import ClusterSnapshot
from vmgrid.solver import CpsatOptions, Problem, SolveOptions, solve
from vmgrid.solver.model import Model
from vmgrid.solver.plan import Action, ActionKind, Plan
from vmgrid.solver.planner import PlannerOptions

IN_MEMORY_PAUSE = PlannerOptions(suspend_across_nodes=False)
"""The cluster's agents suspend a VM by pausing it in memory, where it is: the planner must not
break a cycle by suspending a VM on one node and resuming it on another."""


class AutomationLevel(enum.Enum):
    """How much the manager may do without an operator."""

    MANUAL = "manual"
    """Every plan is a recommendation that waits for approval."""

    PARTIAL = "partial"
    """Placement of new and restarted VMs is automatic; rebalancing waits for approval."""

    AUTOMATIC = "automatic"
    """Every plan is executed at once."""


class PolicyKind(enum.Enum):
    """Which decider answers overload and underload triggers (drains always use the solver)."""

    VMGRID = "vmgrid"
    """vmgrid's DecisionPolicy (prediction, relief, consolidation, hysteresis): the default."""

    SOLVER = "solver"
    """`vmgrid.solver.solve` with an objective per trigger, capacities cut to
    the band's top (the decider before the policy existed)."""


@dataclass(frozen=True)
class ControlConfig:
    """Settings of the decision loop (TOML table ``[control]`` of the manager's config)."""

    period_s: float = 15.0
    """Time between two decision cycles (events may trigger one earlier)."""

    hold_s: float = 20.0
    """How long a node must stay over or under a threshold before the loop acts."""

    pressure_trigger: float = 0.0
    """CPU pressure (PSI ``some avg10``, percent) above which a node counts as overloaded, held
    for `hold_s` like utilisation; the decision then treats its CPU as full (see
    pressure.py). 0: off, the default: test-driver nodes report no pressure and the lab's
    nodes share one machine's, so the operator turns it on for real hosts (25 to 40 is a
    usual range: a fifth to two fifths of the time some task waits for a CPU)."""

    cooldown_s: float = 60.0
    """After a plan has run, no rebalancing for this long (migrations settle first)."""

    min_gain_nodes: int = 1
    """Consolidate only if the plan frees at least this many nodes."""

    automation: AutomationLevel = AutomationLevel.MANUAL
    """manual, partial or automatic."""

    power_saving: bool = False
    """Power freed nodes off through their configured power command."""

    wake_powered_off: bool = True
    """The manager may power on nodes it powered off (through the power-on command): the vmgrid
    policy counts them as capacity when running nodes lack room, and an undrain powers its node
    on first. Takes effect only with a power-on command (the runtime turns it off without
    one)."""

    drain_fallback: DrainFallback = DrainFallback.NONE
    """For a draining node's VM that cannot be live-migrated: suspend (pause in place: the VM
    keeps its memory on the node, which is then not empty), shutdown (empties it) or none."""

    solver_time_limit_s: float = 5.0
    """CP-SAT time limit per decision."""

    policy: PolicyKind = PolicyKind.VMGRID
    """vmgrid (DecisionPolicy) or solver (solve() per trigger) for overload and underload."""

    operator_policy: OperatorPolicy = field(default_factory=OperatorPolicy)
    """The operator's band, migration budget and minimum times (TOML table ``[policy]``, see
    operator_policy.py); settable at run time."""

    decision_process: bool = True
    """Decide in a forked child process (Linux), so a long decision does not slow the ingestion
    of reports; false: in a thread of the manager."""

    migration_link: MigrationLink | None = None
    """The driver's link (set by the runtime): plans time real migrations over it; None: 1 s."""

    def __post_init__(self) -> None:
        for name in ("period_s", "hold_s", "cooldown_s", "solver_time_limit_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"control.{name}: {getattr(self, name)!r} must be >= 0")
        if not 0.0 <= self.pressure_trigger <= 100.0:
            raise ValueError(
                f"control.pressure_trigger: {self.pressure_trigger!r} must be a percentage in "
                "[0, 100] (0: off)"
            )
        if self.min_gain_nodes < 1:
            raise ValueError(f"control.min_gain_nodes: {self.min_gain_nodes!r} must be >= 1")


@dataclass(frozen=True)
class Decision:
    """A plan the loop wants to run, and why; `plan` is None when the solver found nothing."""

    trigger: Trigger
    plan: Plan | None
    summary: str
    stats: dict[str, object] = field(default_factory=dict)
    active_nodes: tuple[int, int] | None = None
    """Nodes hosting VMs before and after the plan, when the plan's models hold only the
    nodes it touches; None: count them in the plan's models."""
    held: dict[str, str] = field(default_factory=dict)
    """Drain: VM uuid -> the rule that keeps it on its draining node (the plan moves the
    others; the drain fallback applies to these)."""


def decide(
    snapshot: ClusterSnapshot,
    trigger: Trigger,
    config: ControlConfig,
    history: MoveHistory | None = None,
) -> Decision:
    """Ask the solver for a plan answering `trigger`, within the operator policy.

    Nodes are filled to the band's top only (``cpu_high``, ``memory_high``); when the cluster
    cannot relieve an overload or empty a draining node with that headroom, the solver tries
    again with full capacity and the summary says so. A drain spreads the node's VMs: each
    target takes at most an even share of them (then half of them), before any placement is
    accepted. Rebalancing leaves VMs that moved recently where they are and does not send a
    VM back to a node it left recently; it keeps only the nodes below the band's low edge as
    nodes to empty; its plan must fit in the migration budget (move_limits.py).
    """
    policy = config.operator_policy
    past = history or MoveHistory()
    band = (policy.cpu_high, policy.memory_high)
    tries: list[tuple[tuple[float, float], int | None]] = [(band, None)]
    if trigger.kind is TriggerKind.DRAIN:
        tries = [(band, 1), (band, 2), (band, None), ((1.0, 1.0), None)]
    elif trigger.kind is TriggerKind.OVERLOAD:
        tries.append(((1.0, 1.0), None))
    result = None
    model = to_model(snapshot)
    holds = _holds(snapshot, model)  # a rebalancing leaves them too
    used: tuple[tuple[float, float], int | None] = tries[0]
    for attempt in dict.fromkeys(tries):
        (cpu, memory), spread = attempt
        model = to_model(snapshot, ViewOptions(cpu, memory, migration_link=config.migration_link))
        draining = tuple(
            v.node_id for v in snapshot.nodes if v.draining and v.node_id in model.nodes
        )
        constraints = drain_constraints(model, draining, holds)
        constraints += solvable(snapshot.rules, model)
        underload = trigger.kind is TriggerKind.UNDERLOAD
        drained = trigger.nodes if trigger.kind is TriggerKind.DRAIN else ()
        constraints += policy_constraints(snapshot, model, policy, past, underload, drained, spread)
        objective = "consolidation>migrations" if trigger.kind is TriggerKind.UNDERLOAD else "mttr"
        options = SolveOptions(
            cpsat=CpsatOptions(time_limit_s=config.solver_time_limit_s), planner=IN_MEMORY_PAUSE
        )
        result = solve(Problem(model, constraints, objective), options)
        used = attempt
        if result.plan is not None:
            break
    assert result is not None
    stats = result.stats.as_dict()
    if trigger.kind is not TriggerKind.DRAIN:
        holds = {}
    held = {vm: hold.reason for vm, hold in holds.items()}
    staying = f"; {held_summary(holds)}" if holds else ""
    if holds:
        stats["held"] = {vm: hold.rule.rule_id for vm, hold in holds.items()}
    if result.plan is None or result.dst is None:
        why = "; ".join(result.conflicts) or result.status
        summary = f"no plan for {trigger.reason}: {why}{staying}"
        return Decision(trigger, None, summary, stats, held=held)
    if trigger.kind is TriggerKind.UNDERLOAD:
        gain = len(model.used_nodes()) - len(result.dst.used_nodes())
        if gain < config.min_gain_nodes:
            return Decision(trigger, None, _no_gain(gain, config.min_gain_nodes), stats)
        summary = f"consolidate: free {gain} node(s) with {result.plan.migrations} migration(s)"
    else:
        summary = f"{trigger.kind.value}: {result.plan.migrations} migration(s) ({trigger.reason})"
        summary += staying
    if used[0] == (1.0, 1.0) and band != (1.0, 1.0):
        summary += "; above the band: the cluster has no room within it"
    plan = with_power_policy(result.plan, config.power_saving)
    if trigger.kind is not TriggerKind.DRAIN:
        relief = trigger.kind is TriggerKind.OVERLOAD
        screened = screened_plan(snapshot, plan, relief, policy, past)
        if isinstance(screened, str):
            return Decision(trigger, None, f"{summary}: waits ({screened})", stats)
        plan = screened
    if not plan.actions:
        nothing = f"nothing to do for {trigger.reason}"
        if holds:
            nothing = f"{trigger.kind.value}: no VM can move ({trigger.reason}){staying}"
        return Decision(trigger, None, nothing, stats, held=held)
    return Decision(trigger, plan, summary, stats, held=held)


def _holds(snapshot: ClusterSnapshot, model: Model) -> dict[str, Hold]:
    """The draining nodes' VMs that a rule keeps there (rules/holding.py)."""
    draining = [v.node_id for v in snapshot.nodes if v.draining]
    return held_vms(snapshot.rules, model, draining)


def with_power_policy(plan: Plan, power_saving: bool) -> Plan:
    """With power saving, nodes the plan empties are shut down last; without, none is."""
    if power_saving:
        return _with_freed_nodes_off(plan, plan.src.used_nodes(), plan.dst.used_nodes())
    return _without_node_shutdowns(plan)


def _with_freed_nodes_off(plan: Plan, used_before: list[str], used_after: list[str]) -> Plan:
    """Add a SHUTDOWN_NODE for each node the plan empties, after every action leaving it."""
    already = {a.subject for a in plan.actions if a.kind is ActionKind.SHUTDOWN_NODE}
    freed = [n for n in used_before if n not in used_after and n not in already]
    actions = list(plan.actions)
    for node in freed:
        leaving = tuple(a.id for a in plan.actions if a.src == node)
        end = max((a.end_s for a in plan.actions if a.src == node), default=0)
        reason = "power saving: the node hosts no VM any more"
        next_id = max((a.id for a in actions), default=-1) + 1
        off = Action(next_id, ActionKind.SHUTDOWN_NODE, node, node, None, end, end, reason, leaving)
        actions.append(off)
    return replace(plan, actions=tuple(actions))


def _without_node_shutdowns(plan: Plan) -> Plan:
    """Freed nodes stay on when power saving is off."""
    dropped = {a.id for a in plan.actions if a.kind is ActionKind.SHUTDOWN_NODE}
    if not dropped:
        return plan
    kept = tuple(
        replace(a, depends_on=tuple(d for d in a.depends_on if d not in dropped))
        for a in plan.actions
        if a.id not in dropped
    )
    return replace(plan, actions=kept)


def needs_approval(decision: Decision, level: AutomationLevel) -> bool:
    """Whether an operator must approve the decision's plan before it runs."""
    if level is AutomationLevel.AUTOMATIC or decision.trigger.kind is TriggerKind.DRAIN:
        return False  # a drain is the operator's own request
    if level is AutomationLevel.MANUAL or decision.plan is None:
        return True
    placement_only = {ActionKind.BOOT_VM, ActionKind.RESUME, ActionKind.BOOT_NODE}
    return any(a.kind not in placement_only for a in decision.plan.actions)


def _no_gain(gain: int, minimum: int) -> str:
    if gain == 0:
        return "consolidation would free no node"
    if gain < 0:
        return f"consolidation would free no node (the packing found uses {-gain} more)"
    return f"consolidation would free {gain} node(s), below the minimum gain of {minimum}"
