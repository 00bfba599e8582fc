"""N+1: could the cluster lose any one node and restart its HA VMs on the others?

For each connected node in turn, the check takes the cluster as it is now without that node
(its VMs gone with it) and places its job members, highest HA priority first, exactly as the
HA monitor would after a failure (`ha.restart_target`: memory first, rules kept if any node
allows it, most free memory). A node passes when every member finds a node with room for its
memory and CPU that keeps every rule. Pure: it reads a snapshot and the member records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from vmgrid.agents.cluster.jobs.ha import as_vm, restart_target
from vmgrid.agents.cluster.jobs.members import Member
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.cluster.state.state import ClusterSnapshot, NodeStatus
from vmgrid.agents.model import HOLDS_MEMORY_STATES
from vmgrid.solver.admission import restart_order
from vmgrid.solver.model import Model, NodeState


@dataclass(frozen=True)
class NodeLoss:
    """What losing one node would do to its HA VMs."""

    node: str
    ok: bool
    vms: int
    """HA VMs (job members) on the node."""
    unplaced: tuple[str, ...]
    """Members no other node has memory for (uuids)."""
    reason: str


@dataclass(frozen=True)
class NPlusOne:
    ok: bool
    nodes: tuple[NodeLoss, ...]


def n_plus_one(snapshot: ClusterSnapshot, members: Iterable[Member]) -> NPlusOne:
    """The N+1 check of every connected node (see the module docstring)."""
    records = {m.vm_uuid: m for m in members}
    model = to_model(snapshot)
    checks = []
    for view in snapshot.nodes:
        if view.status is not NodeStatus.CONNECTED:
            continue
        held = [
            dataclasses.replace(records[vm.uuid], node_id=view.node_id)
            for vm in view.vms
            if vm.uuid in records and vm.state in HOLDS_MEMORY_STATES
        ]
        checks.append(node_loss(model, view.node_id, held, snapshot.rules))
    return NPlusOne(all(c.ok for c in checks), tuple(checks))


def without(model: Model, node: str) -> Model:
    """`model` after `node` failed: offline, and its VMs gone."""
    lost = dataclasses.replace(model.nodes[node], state=NodeState.OFFLINE)
    nodes = {**model.nodes, node: lost}
    return Model(nodes, {n: v for n, v in model.vms.items() if v.host != node})


def node_loss(
    model: Model, node: str, held: list[Member], rules: tuple[Rule, ...] = ()
) -> NodeLoss:
    """Place `held` (the node's members) as the HA monitor would once `node` failed."""
    if not held:
        return NodeLoss(node, True, 0, (), f"{node} holds no HA VM")
    left = without(model, node)
    by_uuid = {m.vm_uuid: m for m in held}
    unplaced: list[str] = []
    problems: list[str] = []
    targets: dict[str, int] = {}
    for vm in restart_order(as_vm(m) for m in held):
        member = by_uuid[vm.name]
        placement = restart_target(left, rules, member)
        if placement.node is None:
            unplaced.append(member.vm_uuid)
            problems.append(f"no node has {member.memory_mib} MiB free for {member.name}")
            continue
        if placement.broken:
            broken = ", ".join(r.rule_id for r in placement.broken)
            problems.append(f"{member.name} on {placement.node} would break {broken}")
        if placement.cpu_short:
            problems.append(
                f"{member.name} on {placement.node} would lack CPU "
                f"({member.cpu_millicores / 1000:.1f} cores)"
            )
        targets[placement.node] = targets.get(placement.node, 0) + 1
        left = left.with_vms([as_vm(member).on(placement.node)])
    where = ", ".join(f"{n} ({k})" for n, k in sorted(targets.items()))
    if not problems:
        return NodeLoss(node, True, len(held), (), f"its {len(held)} HA VM(s) restart on {where}")
    return NodeLoss(node, False, len(held), tuple(unplaced), "; ".join(problems))
