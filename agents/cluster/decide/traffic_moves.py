"""Measured traffic in the vmgrid policy's moves: send a moved VM where its heavy peers are.

The policy (``vmgrid.solver.decision``) chooses which VMs move and which nodes it empties; it
reads rules only to refuse moves, so the soft ``traffic`` terms (``state/traffic.py``), which
refuse nothing, would not change its answer. This pass changes only where a moved VM goes:
to the node where more of its measured traffic will be, when that node is eligible, is no
move's source (it is not being emptied or relieved), and takes the VM within the operator
policy's band (CPU used and memory allocated, with every planned arrival and departure
counted). The number of migrations and the nodes emptied stay the policy's; a VM or a node
that a hard rule names keeps the policy's choice, and the memory and rule checks of
``plan_moves`` still run afterwards (a cluster-wide rule is checked there), so operators'
rules win.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from vmgrid.agents.cluster.state.policy_view import PolicyView, eligible_nodes
from vmgrid.agents.cluster.state.state import ClusterSnapshot
from vmgrid.agents.cluster.state.traffic import TRAFFIC_ORIGIN
from vmgrid.agents.model import VmUsage
from vmgrid.solver.decision import Move


def toward_traffic(
    snapshot: ClusterSnapshot,
    view: PolicyView,
    moves: Sequence[Move],
    cpu_high: float,
    memory_high: float,
) -> list[Move]:
    """`moves` with destinations changed toward measured traffic (see the module docstring)."""
    terms = [r for r in snapshot.rules if r.origin == TRAFFIC_ORIGIN]
    if not terms or not moves:
        return list(moves)
    peers: dict[str, dict[str, int]] = defaultdict(dict)
    for rule in terms:
        for a, b, mbit in getattr(rule.constraint, "pairs", ()):
            peers[a][b] = peers[a].get(b, 0) + mbit
            peers[b][a] = peers[b].get(a, 0) + mbit
    hard = [r for r in snapshot.rules if r.origin != TRAFFIC_ORIGIN]
    ruled_vms = {vm for r in hard for vm in r.constraint.vms_in_scope()}
    ruled_nodes = {node for r in hard for node in r.constraint.nodes_in_scope()}
    position = {node: i for i, node in enumerate(view.node_ids)}
    sources = {view.node_ids[m.source] for m in moves}
    capacity = {v.node_id: v.capacity for v in eligible_nodes(snapshot)}
    host: dict[str, str] = {}
    usage: dict[str, VmUsage] = {}
    cpu: dict[str, int] = defaultdict(int)
    memory: dict[str, int] = defaultdict(int)
    for node, vm in snapshot.vms():
        host[vm.uuid], usage[vm.uuid] = node, vm
    for m in moves:
        host[view.vm_uuids[m.vm]] = view.node_ids[m.destination]
    for uuid, node in host.items():
        cpu[node] += usage[uuid].cpu_used_millicores
        memory[node] += usage[uuid].memory_allocated_bytes

    def joined(uuid: str, node: str) -> int:
        return sum(w for peer, w in peers[uuid].items() if host.get(peer) == node)

    def fits(vm: VmUsage, node: str) -> bool:
        cap = capacity[node]
        return (
            cpu[node] + vm.cpu_used_millicores <= cpu_high * cap.cpu_millicores
            and memory[node] + vm.memory_allocated_bytes <= memory_high * cap.memory_bytes
        )

    out = []
    for m in sorted(moves, key=lambda m: -sum(peers[view.vm_uuids[m.vm]].values())):
        uuid = view.vm_uuids[m.vm]
        planned, moved = host[uuid], usage.get(uuid)
        best, gain = planned, 0
        if moved is not None and uuid in peers and uuid not in ruled_vms:
            near = {host[p] for p in peers[uuid] if p in host} - sources - ruled_nodes
            for node in sorted(near - {planned}):
                more = joined(uuid, node) - joined(uuid, planned)
                if more > gain and node in capacity and node in position and fits(moved, node):
                    best, gain = node, more
        if best != planned:
            assert moved is not None
            cpu[planned] -= moved.cpu_used_millicores
            memory[planned] -= moved.memory_allocated_bytes
            cpu[best] += moved.cpu_used_millicores
            memory[best] += moved.memory_allocated_bytes
            host[uuid] = best
            m = replace(m, destination=position[best])
        out.append(m)
    by_vm = {m.vm: m for m in out}
    return [by_vm[m.vm] for m in moves]
