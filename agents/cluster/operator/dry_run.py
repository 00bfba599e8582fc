"""Operator planning: the decision the loop would take now, or one for an explicit objective.

Nothing here executes anything. `propose` answers `vmgridctl plan`: with no objective it is the
loop's own decision for the current trigger (so an operator sees what automation would do);
`consolidate` and `balance` ask the solver for that objective even when no threshold has been
held; `drain_nodes` plans as if those nodes were in maintenance. `placement_for` lets the solver
choose the destination of a single VM the operator wants moved.
"""

from __future__ import annotations

from dataclasses import replace

from vmgrid.agents.cluster.decide.control import (
    IN_MEMORY_PAUSE,
    ControlConfig,
    Decision,
    PolicyKind,
    Trigger,
    TriggerKind,
    decide,
)
from vmgrid.agents.cluster.decide.control import find_trigger as loop_trigger
from vmgrid.agents.cluster.decide.maintenance import drain_constraints
from vmgrid.agents.cluster.decide.policy_decider import PolicyDecider
from vmgrid.agents.cluster.rules.check import solvable
from vmgrid.agents.cluster.rules.holding import held_vms
from vmgrid.agents.cluster.state.solver_view import ViewOptions, to_model
from vmgrid.agents.cluster.state.state import ClusterSnapshot, NodeStatus
from vmgrid.agents.errors import FailedPrecondition, InvalidArgument, NotFound
from vmgrid.solver import CpsatOptions, Problem, SolveOptions, solve
from vmgrid.solver.constraints import Ban
from vmgrid.solver.plan import Action, ActionKind

OBJECTIVES = ("", "consolidate", "balance")
"""Accepted values of a dry run's objective ("" = the current trigger)."""


def with_drained(snapshot: ClusterSnapshot, nodes: tuple[str, ...]) -> ClusterSnapshot:
    """The snapshot as if `nodes` were in maintenance; NotFound names an unknown node."""
    known = {v.node_id for v in snapshot.nodes}
    for node in nodes:
        if node not in known:
            raise NotFound(f"drain node {node!r} is not in the cluster (known: {sorted(known)})")
    views = tuple(replace(v, draining=True) if v.node_id in nodes else v for v in snapshot.nodes)
    return replace(snapshot, nodes=views)


def propose(
    snapshot: ClusterSnapshot,
    config: ControlConfig,
    objective: str = "",
    drain_nodes: tuple[str, ...] = (),
    policy: PolicyDecider | None = None,
) -> Decision:
    """A decision to show (and perhaps apply); its plan is None when there is nothing to do.

    With no objective it is what the loop would decide now: `policy` is a throw-away copy of
    the loop's decider, so that previewing leaves the loop's hysteresis untouched.
    """
    if objective not in OBJECTIVES:
        raise InvalidArgument(
            f"objective {objective!r} is not accepted; use one of: consolidate, balance "
            "(or empty for the current trigger)"
        )
    snapshot = with_drained(snapshot, drain_nodes)
    live = tuple(v.node_id for v in snapshot.nodes if v.status is NodeStatus.CONNECTED)
    if objective == "consolidate":
        trigger = Trigger(TriggerKind.UNDERLOAD, live, "operator asked to consolidate")
        return decide(snapshot, trigger, replace(config, min_gain_nodes=1))
    if objective == "balance":
        return _balance(snapshot, config, live)
    found = loop_trigger(snapshot, config)
    if found is None:
        return Decision(
            Trigger(TriggerKind.OVERLOAD, (), "no trigger"),
            None,
            "nothing to do: no node overloaded, underloaded or draining for the hold time",
        )
    uses_policy = config.policy is PolicyKind.VMGRID and found.kind is not TriggerKind.DRAIN
    if uses_policy and policy is not None:
        return policy.decide(snapshot, found, config)
    return decide(snapshot, found, config)


def _balance(snapshot: ClusterSnapshot, config: ControlConfig, live: tuple[str, ...]) -> Decision:
    trigger = Trigger(TriggerKind.OVERLOAD, live, "operator asked to balance the load")
    model = to_model(snapshot, ViewOptions(migration_link=config.migration_link))
    draining = tuple(v.node_id for v in snapshot.nodes if v.draining and v.node_id in model.nodes)
    held = held_vms(snapshot.rules, model, draining)
    constraints = drain_constraints(model, draining, held) + solvable(snapshot.rules, model)
    options = SolveOptions(
        cpsat=CpsatOptions(time_limit_s=config.solver_time_limit_s), planner=IN_MEMORY_PAUSE
    )
    result = solve(Problem(model, constraints, "balance>migrations"), options)
    if result.plan is None or not result.plan.actions:
        why = "; ".join(result.conflicts) or result.status
        return Decision(trigger, None, f"nothing to balance: {why}", result.stats.as_dict())
    summary = f"balance: {result.plan.migrations} migration(s) even out node load"
    return Decision(trigger, result.plan, summary, result.stats.as_dict())


def placement_for(snapshot: ClusterSnapshot, vm_uuid: str, src: str, time_limit_s: float) -> str:
    """The node the solver picks for `vm_uuid` when it must leave `src`, moving as
    few other VMs as possible (normally none)."""
    model = to_model(snapshot, ViewOptions())
    if vm_uuid not in model.vms:
        raise FailedPrecondition(f"VM {vm_uuid} is not running, so the solver cannot place it")
    draining = tuple(v.node_id for v in snapshot.nodes if v.draining and v.node_id in model.nodes)
    constraints = [Ban((vm_uuid,), (src, *draining)), *solvable(snapshot.rules, model)]
    options = SolveOptions(cpsat=CpsatOptions(time_limit_s=time_limit_s), planner=IN_MEMORY_PAUSE)
    result = solve(Problem(model, constraints, "migrations"), options)
    moves = [
        a
        for a in (result.plan.actions if result.plan is not None else ())
        if a.kind is ActionKind.MIGRATE and a.subject == vm_uuid
    ]
    if not moves or moves[-1].dst is None:
        why = "; ".join(result.conflicts) or result.status
        raise FailedPrecondition(f"no node can take VM {vm_uuid} away from {src}: {why}")
    return moves[-1].dst


def single_migration(vm_uuid: str, src: str, dst: str, reason: str, seconds: float = 1.0) -> Action:
    """The one action of an operator's migration, lasting its estimate (whole seconds, >= 1)."""
    return Action(0, ActionKind.MIGRATE, vm_uuid, src, dst, 0, max(1, round(seconds)), reason)
