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

from vmgrid.agents.cluster.jobs.members import Member
from vmgrid.agents.cluster.jobs.restart_placement import as_vm, restart_target
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.agents.cluster.state.solver_view import to_model
from vmgrid.agents.cluster.state.state import ClusterSnapshot, NodeStatus
from vmgrid.agents.model import HOLDS_MEMORY_STATES
from vmgrid.solver.admission import restart_order
from vmgrid.solver.model import CPU, MEMORY, NET, VM, Model, NodeState


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
    base = {n: {r: model.slack(n, r) for r in (CPU, MEMORY, NET)} for n in model.nodes}
    checks = []
    for view in snapshot.nodes:
        if view.status is not NodeStatus.CONNECTED:
            continue
        held = [
            dataclasses.replace(records[vm.uuid], node_id=view.node_id)
            for vm in view.vms
            if vm.uuid in records and vm.state in HOLDS_MEMORY_STATES
        ]
        checks.append(node_loss(model, view.node_id, held, snapshot.rules, base))
    return NPlusOne(all(c.ok for c in checks), tuple(checks))


def without(model: Model, node: str) -> Model:
    """`model` after `node` failed: offline, and its VMs gone."""
    lost = dataclasses.replace(model.nodes[node], state=NodeState.OFFLINE)
    nodes = {**model.nodes, node: lost}
    return Model(nodes, {n: v for n, v in model.vms.items() if v.host != node})


class _Lost:
    """The cluster after one node failed, as its members are placed one by one: room is kept
    as running totals (other nodes' room does not change when a node fails), and the model
    without the node, which rule checks need, is built only when a rule is involved."""

    def __init__(self, model: Model, node: str, base: dict[str, dict[str, int]]) -> None:
        self.model, self.node, self.base = model, node, base
        self.used: dict[tuple[str, str], int] = {}
        self.placed: list[VM] = []
        self._left: Model | None = None

    def slack(self, node: str, resource: str) -> int:
        if node == self.node:
            return 0
        return self.base[node][resource] - self.used.get((node, resource), 0)

    def rules_model(self) -> Model:
        if self._left is None:
            self._left = without(self.model, self.node)
        if self.placed:
            self._left, self.placed = self._left.with_vms(self.placed), []
        return self._left

    def place(self, member: Member, node: str) -> None:
        vm = as_vm(member).on(node)
        for resource in (CPU, MEMORY, NET):
            key = (node, resource)
            self.used[key] = self.used.get(key, 0) + vm.need(resource)
        self.placed.append(vm)


class _RuleIndex:
    """The rules that may involve one VM: those naming it, and those naming nodes or no VM
    (what `involving` keeps), so the HA placement does not scan every rule per member."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.by_vm: dict[str, list[Rule]] = {}
        self.wide: list[Rule] = []
        for rule in rules:
            vms = rule.constraint.vms_in_scope()
            if not vms or rule.constraint.nodes_in_scope():
                self.wide.append(rule)
                continue
            for vm in vms:
                self.by_vm.setdefault(vm, []).append(rule)

    def of(self, vm_uuid: str) -> list[Rule]:
        return self.by_vm.get(vm_uuid, []) + self.wide


def node_loss(
    model: Model,
    node: str,
    held: list[Member],
    rules: tuple[Rule, ...] = (),
    base: dict[str, dict[str, int]] | None = None,
) -> NodeLoss:
    """Place `held` (the node's members) as the HA monitor would once `node` failed."""
    if not held:
        return NodeLoss(node, True, 0, (), f"{node} holds no HA VM")
    if base is None:
        base = {n: {r: model.slack(n, r) for r in (CPU, MEMORY, NET)} for n in model.nodes}
    lost = _Lost(model, node, base)
    relevant = _RuleIndex(rules)
    by_uuid = {m.vm_uuid: m for m in held}
    unplaced: list[str] = []
    problems: list[str] = []
    targets: dict[str, int] = {}
    for vm in restart_order(as_vm(m) for m in held):
        member = by_uuid[vm.name]
        placement = restart_target(
            model, relevant.of(member.vm_uuid), member, lost.slack, lost.rules_model
        )
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
        lost.place(member, placement.node)
    where = ", ".join(f"{n} ({k})" for n, k in sorted(targets.items()))
    if not problems:
        return NodeLoss(node, True, len(held), (), f"its {len(held)} HA VM(s) restart on {where}")
    return NodeLoss(node, False, len(held), tuple(unplaced), "; ".join(problems))
