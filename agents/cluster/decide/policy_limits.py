"""The vmgrid policy's moves under the operator policy (move_limits.screen), and relief that
does not send a VM back where it came from.

- A consolidation empties only nodes below the band's bottom, all or nothing.
- Relief of a *held* overload (the loop's OVERLOAD trigger names the node) may break the
  minimum times; the policy also relieves nodes that are above the band but not for the hold
  time (in an underload cycle, say): such relief keeps every limit, since nothing needs it yet.
- A held relief that would move a VM back to a node it left less than ``return_after_s`` ago
  goes to another node with room within the band if there is one (the policy does not know
  where VMs came from); only when none has room does it go back, and its reason says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from vmgrid.agents.cluster.decide.control import ControlConfig
from vmgrid.agents.cluster.decide.move_limits import MoveHistory, Proposal, screen
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy, below_band
from vmgrid.agents.cluster.state.gauges import held_bytes
from vmgrid.agents.cluster.state.policy_view import PolicyView
from vmgrid.agents.cluster.state.solver_view import memory_fraction
from vmgrid.agents.cluster.state.state import ClusterSnapshot, NodeStatus, NodeView
from vmgrid.solver.decision import Move


def within_policy(
    snapshot: ClusterSnapshot,
    view: PolicyView,
    moves: Sequence[Move],
    config: ControlConfig,
    history: MoveHistory | None,
    held: set[str],
) -> tuple[list[Move], tuple[str, ...], dict[str, str]]:
    """The moves the operator policy allows, why the others wait, and the notes of relief
    moves that break a minimum time (VM uuid -> text for the action's reason). `held`: the
    nodes the loop's overload trigger names."""
    if not moves:
        return [], (), {}
    band = config.operator_policy
    past = history or MoveHistory()
    nodes = {v.node_id: v for v in snapshot.nodes}
    moves = _away_from_where_they_left(snapshot, view, moves, band, past, held)
    names = _names(nodes, view, moves)
    waiting: list[str] = []
    proposals: list[Proposal] = []
    by_vm: dict[str, Move] = {}
    for m in moves:
        src, dst = view.node_ids[m.source], view.node_ids[m.destination]
        uuid = view.vm_uuids[m.vm]
        cpu, memory = _fractions(nodes[src])
        relief = m.reason == "overload"
        if not relief and not below_band(band, cpu, memory):
            waiting.append(f"{src} is within the band: not emptied")
            continue
        needed = relief and src in held
        group = "" if relief else src
        name = names.get(uuid, uuid)
        proposals.append(Proposal(uuid, name, src, dst, needed, group, cpu > 1.0))
        by_vm[uuid] = m
    screened = screen(proposals, band, past)
    kept = [by_vm[p.vm] for p in screened.kept]
    return kept, (*dict.fromkeys(waiting), *screened.waiting), screened.notes


def _names(nodes: dict[str, NodeView], view: PolicyView, moves: Sequence[Move]) -> dict[str, str]:
    """uuid -> name (its uuid when it has none) of the VMs `moves` move, read on the nodes they
    leave (not on every node: a cycle at 5,000 nodes would read 100,000 VMs)."""
    moved = {view.vm_uuids[m.vm] for m in moves}
    sources = dict.fromkeys(view.node_ids[m.source] for m in moves)
    return {
        vm.uuid: vm.name or vm.uuid
        for node in sources
        for vm in nodes[node].vms
        if vm.uuid in moved
    }


def _fractions(view: NodeView) -> tuple[float, float]:
    cpu = view.usage.cpu_used_millicores if view.usage is not None else 0
    return cpu / max(1, view.capacity.cpu_millicores), memory_fraction(view)


def _away_from_where_they_left(
    snapshot: ClusterSnapshot,
    view: PolicyView,
    moves: Sequence[Move],
    band: OperatorPolicy,
    history: MoveHistory,
    held: set[str],
) -> list[Move]:
    """Held relief moves re-targeted away from nodes their VM left recently, where another
    node has room within the band (CPU as the policy sees it, memory as reported)."""
    back = [_returns_early(m, view, history, held, band) for m in moves]
    if not any(back):
        return list(moves)  # no move to re-target: the rooms below are not needed
    snap = view.snapshot
    by_id = {v.node_id: v for v in snapshot.nodes}
    cpu_room = snap.host_capacity_millicores * band.cpu_high - snap.host_load_millicores()
    memory_room = np.array(
        [
            by_id[n].capacity.memory_bytes * band.memory_high - held_bytes(by_id[n].vms)
            for n in view.node_ids
        ]
    )
    memory = {vm.uuid: vm.memory_allocated_bytes for v in snapshot.nodes for vm in v.vms}
    out: list[Move] = []
    for m, returning in zip(moves, back, strict=True):
        uuid = view.vm_uuids[m.vm]
        cpu = float(snap.vm_demand_millicores[m.vm])
        mem = float(memory.get(uuid, 0))
        target = m.destination
        if returning:
            rooms = (cpu_room, memory_room)
            target = _other_target(m, uuid, (cpu, mem), rooms, view, by_id, history, band)
        cpu_room[target] -= cpu
        memory_room[target] -= mem
        cpu_room[m.source] += cpu
        memory_room[m.source] += mem
        out.append(m if target == m.destination else replace(m, destination=target))
    return out


def _returns_early(
    m: Move, view: PolicyView, history: MoveHistory, held: set[str], band: OperatorPolicy
) -> bool:
    """Whether `m` is held relief sending its VM back to a node it left less than
    ``return_after_s`` ago."""
    if m.reason != "overload" or view.node_ids[m.source] not in held:
        return False
    left = history.left_ago(view.vm_uuids[m.vm], view.node_ids[m.destination])
    return left is not None and left < band.return_after_s


def _other_target(
    m: Move,
    uuid: str,
    need: tuple[float, float],
    rooms: tuple[np.ndarray, np.ndarray],
    view: PolicyView,
    by_id: dict[str, NodeView],
    history: MoveHistory,
    band: OperatorPolicy,
) -> int:
    """The connected node with the most CPU room that fits the VM within the band and that
    it did not leave recently; the policy's own choice when there is none."""
    cpu, mem = need
    cpu_room, memory_room = rooms
    best, best_room = m.destination, -1.0
    for host, node in enumerate(view.node_ids):
        if host in (m.source, m.destination) or by_id[node].status is not NodeStatus.CONNECTED:
            continue
        left = history.left_ago(uuid, node)
        if left is not None and left < band.return_after_s:
            continue
        if cpu_room[host] >= cpu and memory_room[host] >= mem and cpu_room[host] > best_room:
            best, best_room = host, float(cpu_room[host])
    return best
