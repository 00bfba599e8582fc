"""Maintenance mode: what happens to a drained node's VMs, and how they come back.

A drain empties a node by live migration (the DRAIN trigger and the solver's `Offline`
constraint). A VM that a rule holding now keeps on the node (a gather whose members all run
there: live migration moves one VM at a time) stays, named with its rule (rules/holding.py),
while the others move. When no destination fits, a migration fails, or a rule holds a VM,
the configured fallback runs on the VMs still there: `suspend` pauses them in place, `shutdown` shuts them down, `none` leaves
them running (the drain is retried every cycle). Only `shutdown` empties the node: a paused VM
keeps its memory there (libvirt pause, not a save to disk), so after a `suspend` fallback the
node frees its CPU but still holds those VMs and must not be powered off; the loop says so. Where drained VMs came from is read back from
the plan journal, not kept in memory, so an undrain after a manager restart still moves them
home: every succeeded action of a `drain` plan leaving the node, since the last `undrain` plan
that reached it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import replace

from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.journal import ActionState, Journal
from vmgrid.agents.cluster.rules.check import arrival_refusal
from vmgrid.agents.cluster.state.gauges import DRAIN_MOVES
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.cluster.state.state import ClusterSnapshot
from vmgrid.solver.constraints import Ban, Constraint, Offline, Root
from vmgrid.solver.model import Model
from vmgrid.solver.plan import Action, ActionKind

DRAIN_ORIGIN = "drain"
UNDRAIN_ORIGIN = "undrain"
# A shutting-down VM is not one a drain still has to move: it leaves the node by itself.
_STOPPED = m.STOPPED_STATES


class DrainFallback(enum.Enum):
    """What to do with a draining node's VM that cannot be live-migrated away."""

    SUSPEND = "suspend"
    SHUTDOWN = "shutdown"
    NONE = "none"


def running_vms_on(snapshot: ClusterSnapshot, node_id: str) -> list[str]:
    """Uuids of the VMs running on `node_id` (those a drain still has to move)."""
    view = snapshot.node(node_id)
    return [vm.uuid for vm in view.vms if vm.state in DRAIN_MOVES]


def drain_constraints(
    model: Model, draining: tuple[str, ...], held: Iterable[str] = ()
) -> list[Constraint]:
    """What a drain asks of the solver: the draining nodes empty at the end (`Offline`); when
    a rule holds some of their VMs (rules/holding.py), those stay where they are and every other
    VM leaves the draining nodes and never arrives on one, not even on its way."""
    if not draining:
        return []
    stay = tuple(sorted(v for v in held if v in model.vms))
    if not stay:
        return [Offline(draining)]
    others = tuple(v for v in model.vms if v not in set(stay))
    return [Root(stay), Ban(others, draining, continuous=True)] if others else [Root(stay)]


def fallback_actions(
    snapshot: ClusterSnapshot,
    nodes: tuple[str, ...],
    fallback: DrainFallback,
    only: set[str] | None = None,
    held: Mapping[str, str] | None = None,
) -> tuple[Action, ...]:
    """Suspend or shut down the VMs still running on the draining `nodes` (those in `only`,
    when given: the ones whose migration failed); `held` says why a rule keeps a VM there."""
    if fallback is DrainFallback.NONE:
        return ()
    kind = ActionKind.SUSPEND if fallback is DrainFallback.SUSPEND else ActionKind.SHUTDOWN_VM
    actions: list[Action] = []
    for node in nodes:
        for uuid in running_vms_on(snapshot, node):
            if only is not None and uuid not in only:
                continue
            why = (held or {}).get(uuid, "no live migration possible")
            reason = f"drain of {node}: {why}, fallback {fallback.value}"
            actions.append(Action(len(actions), kind, uuid, node, None, 0, 0, reason))
    return tuple(actions)


def drained_from(journal: Journal, node_id: str) -> dict[str, ActionKind]:
    """VMs the drain of `node_id` moved, suspended or shut down, and how (oldest first)."""
    left: dict[str, ActionKind] = {}
    for plan in journal.plans():
        if plan.origin == UNDRAIN_ORIGIN and any(r.action.dst == node_id for r in plan.actions):
            left.clear()
        if plan.origin != DRAIN_ORIGIN:
            continue
        for record in plan.actions:
            action = record.action
            if record.state is ActionState.SUCCEEDED and action.src == node_id:
                left[action.subject] = action.kind
    return left


def return_actions(
    snapshot: ClusterSnapshot, node_id: str, drained: dict[str, ActionKind]
) -> tuple[Action, ...]:
    """The plan that brings drained VMs back to `node_id`, as far as they still exist."""
    where = _where(snapshot, node_id)
    actions: list[Action] = []
    for uuid, how in drained.items():
        if uuid not in where:
            continue
        host, state = where[uuid]
        reason = f"{node_id} left maintenance: back where it ran before the drain"
        step: tuple[ActionKind, str | None] | None = None
        if how is ActionKind.MIGRATE and host != node_id and state in DRAIN_MOVES:
            step = (ActionKind.MIGRATE, host)
        elif how is ActionKind.SUSPEND and host == node_id and state is m.VmState.PAUSED:
            step = (ActionKind.RESUME, node_id)
        elif how is ActionKind.SHUTDOWN_VM and host == node_id and state in _STOPPED:
            step = (ActionKind.BOOT_VM, None)
        if step is not None:
            kind, src = step
            actions.append(Action(len(actions), kind, uuid, src, node_id, 0, 0, reason))
    return tuple(actions)


def keeping_rules(
    snapshot: ClusterSnapshot, actions: tuple[Action, ...]
) -> tuple[tuple[Action, ...], tuple[str, ...]]:
    """The return `actions` whose VM may arrive home without breaking a rule that holds now,
    and why each other one stays where it is (a gathered pair drained apart, a spread partner
    that took its place): the applier would refuse them. Each arrival is checked on the
    placement now and on the one the arrivals before it leave, since they run in parallel."""
    rules = list(snapshot.rules)
    if not rules:
        return actions, ()
    now = to_model(snapshot)
    current = now
    kept: list[Action] = []
    refused: list[str] = []
    for action in actions:
        vm = now.vms.get(action.subject)
        if vm is None or action.dst is None or action.kind is ActionKind.RESUME:
            kept.append(action)
            continue
        why = arrival_refusal(rules, now, vm, action.dst) or arrival_refusal(
            rules, current, current.vms[action.subject], action.dst
        )
        if why:
            refused.append(why)
            continue
        kept.append(action)
        current = current.with_vms([current.vms[action.subject].on(action.dst)])
    renumbered = tuple(replace(a, id=i) for i, a in enumerate(kept))
    return renumbered, tuple(refused)


def unsettled(snapshot: ClusterSnapshot, node_id: str, drained: dict[str, ActionKind]) -> bool:
    """Whether the reports still disagree with the journal about a drained VM: one the drain
    migrated away that is seen on `node_id` again or nowhere (a report in flight)."""
    where = _where(snapshot, node_id)
    for uuid, how in drained.items():
        if how is ActionKind.MIGRATE and (uuid not in where or where[uuid][0] == node_id):
            return True
    return False


def _where(snapshot: ClusterSnapshot, home: str) -> dict[str, tuple[str, m.VmState]]:
    """uuid -> (node, state) of each VM's copy that counts: the active one (a live migration
    leaves the shut-off definition on its source), else the one on `home`, else any."""
    where: dict[str, tuple[str, m.VmState]] = {}
    for view in snapshot.nodes:
        for vm in view.vms:
            seen = where.get(vm.uuid)
            active = vm.state in DRAIN_MOVES or vm.state is m.VmState.PAUSED
            if seen is None or active or (view.node_id == home and seen[1] in _STOPPED):
                where[vm.uuid] = (view.node_id, vm.state)
    return where
