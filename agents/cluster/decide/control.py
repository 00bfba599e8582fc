"""The cluster manager's decision step: when to reconfigure, and into what.

Triggers are read from the snapshot's usage history, so the step itself keeps no state:
- overload: a node above `overload_threshold` in every sample of the last `hold_s` seconds;
- underload: the cluster could run on at least `min_gain_nodes` fewer nodes, and some node has
  stayed below `underload_threshold` for `hold_s` (hysteresis: the two thresholds are apart, so
  a node freed by consolidation is not refilled and emptied again);
- drain: a node in maintenance that still runs VMs (see maintenance.py for the fallback).
What to do about a trigger depends on `policy`. With the default `vmgrid`, overload and
underload cycles are answered by vmgrid's DecisionPolicy, the one the PlanetLab replay runs
(`policy_decider.py`). With `solver`, and for drains under either, `decide` below gives the
solver the snapshot as a model whose capacities are cut to `target_utilisation`,
the draining nodes as `offline` constraints, and an objective per trigger. A consolidation plan
that frees fewer than `min_gain_nodes` nodes is dropped. With `power_saving`, every node a plan
empties (consolidation or drain) gets a final SHUTDOWN_NODE action after the VMs have left it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from vmgrid.agents.cluster.decide.maintenance import DrainFallback, running_vms_on
from vmgrid.agents.cluster.rules.check import solvable
from vmgrid.agents.cluster.state.solver_view import ViewOptions, memory_fraction, to_model
from vmgrid.agents.cluster.state.state import ClusterSnapshot, NodeStatus, NodeView
from vmgrid.agents.model import HostUsage
from vmgrid.solver import CpsatOptions, Problem, SolveOptions, solve
from vmgrid.solver.constraints import Constraint, Offline
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
    `target_utilisation` (the decider before the policy existed)."""


class TriggerKind(enum.Enum):
    OVERLOAD = "overload"
    UNDERLOAD = "underload"
    DRAIN = "drain"
    UNDRAIN = "undrain"


@dataclass(frozen=True)
class ControlConfig:
    """Settings of the decision loop (TOML table ``[control]`` of the manager's config)."""

    period_s: float = 15.0
    """Time between two decision cycles (events may trigger one earlier)."""

    overload_threshold: float = 0.85
    """A node above this fraction of its CPU or memory is overloaded."""

    underload_threshold: float = 0.40
    """A node below this fraction is a consolidation candidate."""

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

    target_utilisation: float = 0.80
    """The solver fills nodes to at most this fraction of CPU and memory."""

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

    max_migrations_per_cycle: int = 100
    """Most migrations one vmgrid-policy cycle plans (relief first, then whole hosts to empty);
    a large consolidation then proceeds over several cycles. 0: no limit. Drains are not
    limited."""

    decision_process: bool = True
    """Decide in a forked child process (Linux), so a long decision does not slow the ingestion
    of reports; false: in a thread of the manager."""

    def __post_init__(self) -> None:
        fractions = ("overload_threshold", "underload_threshold", "target_utilisation")
        for name in fractions:
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"control.{name}: {value!r} must be in (0, 1]")
        if self.underload_threshold >= self.overload_threshold:
            raise ValueError(
                f"control.underload_threshold ({self.underload_threshold}) must be below "
                f"overload_threshold ({self.overload_threshold})"
            )
        for name in ("period_s", "hold_s", "cooldown_s", "solver_time_limit_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"control.{name}: {getattr(self, name)!r} must be >= 0")
        if self.max_migrations_per_cycle < 0:
            raise ValueError(
                f"control.max_migrations_per_cycle: {self.max_migrations_per_cycle!r} must be "
                ">= 0 (0: no limit)"
            )
        if not 0.0 <= self.pressure_trigger <= 100.0:
            raise ValueError(
                f"control.pressure_trigger: {self.pressure_trigger!r} must be a percentage in "
                "[0, 100] (0: off)"
            )
        if self.min_gain_nodes < 1:
            raise ValueError(f"control.min_gain_nodes: {self.min_gain_nodes!r} must be >= 1")


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    nodes: tuple[str, ...]
    reason: str


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


def _held(
    snapshot: ClusterSnapshot,
    view: NodeView,
    hold_s: float,
    above: float | None,
    below: float | None,
    pressure: float = 0.0,
) -> bool:
    """True when the node has been beyond the threshold for at least `hold_s`.

    Time is measured on the node's own clock (its samples' timestamps), so clock skew between
    agent and manager does not shorten or stretch the hold time. Every sample from the newest
    one taken at least `hold_s` before the last (the anchor) up to the last must be beyond the
    threshold: counting only the samples inside the window would let a window that holds one
    or two samples (reports a little more than a period apart) pass after one period.
    With `pressure` > 0, a sample whose CPU pressure (some avg10) is above it counts as over
    `above` too; a sample without pressure figures counts by its utilisation alone.
    """
    history = snapshot.node_history.get(view.node_id, ())
    if not history:
        return False
    last = history[-1][0]
    start = last - hold_s * 1e9
    anchors = [i for i, (t, _) in enumerate(history) if t <= start]
    if not anchors:
        return False
    samples = [u for _, u in history[anchors[-1] :]]
    cap = max(1, view.capacity.cpu_millicores)
    memory = memory_fraction(view)
    fractions = [max(s.cpu_used_millicores / cap, memory) for s in samples]
    if above is not None:
        if pressure > 0:
            pairs = zip(fractions, samples, strict=True)
            return all(f > above or cpu_pressure(s) > pressure for f, s in pairs)
        return all(f > above for f in fractions)
    assert below is not None
    return all(f < below for f in fractions)


def cpu_pressure(usage: HostUsage) -> float:
    """A sample's CPU pressure (some avg10, percent); -1 when the node reports none."""
    stall = usage.pressure.cpu
    return -1.0 if stall is None else stall.some_avg10


def find_trigger(snapshot: ClusterSnapshot, config: ControlConfig) -> Trigger | None:
    """The most urgent reason to reconfigure now, or None."""
    live = [v for v in snapshot.nodes if v.status is NodeStatus.CONNECTED]
    draining = [v.node_id for v in live if v.draining and running_vms_on(snapshot, v.node_id)]
    if draining:
        return Trigger(TriggerKind.DRAIN, tuple(draining), f"nodes in maintenance: {draining}")
    threshold, pressure = config.overload_threshold, config.pressure_trigger
    hot = [v for v in live if _held(snapshot, v, config.hold_s, threshold, None, pressure)]
    if hot:
        names = tuple(v.node_id for v in hot)
        pct = int(config.overload_threshold * 100)
        also = f" or cpu pressure above {pressure:g} %" if pressure > 0 else ""
        return Trigger(
            TriggerKind.OVERLOAD,
            names,
            f"{_listed(names)} above {pct} %{also} for {config.hold_s:g} s",
        )
    cold = [
        v
        for v in live
        if v.vms and _held(snapshot, v, config.hold_s, None, config.underload_threshold)
    ]
    if cold:
        names = tuple(v.node_id for v in cold)
        pct = int(config.underload_threshold * 100)
        return Trigger(
            TriggerKind.UNDERLOAD,
            names,
            f"{_listed(names)} below {pct} % for {config.hold_s:g} s",
        )
    return None


def _listed(names: tuple[str, ...], shown: int = 5) -> str:
    """Node names for a message: the first few and how many more (a cluster has thousands)."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def decide(snapshot: ClusterSnapshot, trigger: Trigger, config: ControlConfig) -> Decision:
    """Ask the solver for a plan answering `trigger`.

    Nodes are first filled to `target_utilisation` only; when the cluster cannot hold its
    demand with that headroom, the solver tries again with full capacity, so an overload is
    still relieved as far as the cluster allows.
    """
    result = None
    for headroom in dict.fromkeys((config.target_utilisation, 1.0)):
        view = ViewOptions(cpu_headroom=headroom, memory_headroom=headroom)
        model = to_model(snapshot, view)
        draining = tuple(
            v.node_id for v in snapshot.nodes if v.draining and v.node_id in model.nodes
        )
        constraints: list[Constraint] = [Offline(draining)] if draining else []
        constraints += solvable(snapshot.rules, model)
        objective = "consolidation>migrations" if trigger.kind is TriggerKind.UNDERLOAD else "mttr"
        options = SolveOptions(
            cpsat=CpsatOptions(time_limit_s=config.solver_time_limit_s), planner=IN_MEMORY_PAUSE
        )
        result = solve(Problem(model, constraints, objective), options)
        if result.plan is not None or trigger.kind is TriggerKind.UNDERLOAD:
            break
    assert result is not None
    stats = result.stats.as_dict()
    if result.plan is None or result.dst is None:
        why = "; ".join(result.conflicts) or result.status
        return Decision(trigger, None, f"no plan for {trigger.reason}: {why}", stats)
    if trigger.kind is TriggerKind.UNDERLOAD:
        gain = len(model.used_nodes()) - len(result.dst.used_nodes())
        if gain < config.min_gain_nodes:
            return Decision(trigger, None, _no_gain(gain, config.min_gain_nodes), stats)
        summary = f"consolidate: free {gain} node(s) with {result.plan.migrations} migration(s)"
    else:
        summary = f"{trigger.kind.value}: {result.plan.migrations} migration(s) ({trigger.reason})"
    plan = with_power_policy(result.plan, config.power_saving)
    if not plan.actions:
        return Decision(trigger, None, f"nothing to do for {trigger.reason}", stats)
    return Decision(trigger, plan, summary, stats)


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
