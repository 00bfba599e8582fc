"""Proven lower bounds of the migrations objective, from the prepared problem alone."""

from __future__ import annotations

from vmgrid.solver.heuristics import Placer
from vmgrid.solver.model import NodeState, VMState
from vmgrid.solver.problem import Prepared


def migrations_lower_bound(prep: Prepared) -> int:
    """VMs that cannot stay (their host goes offline or is not allowed for them) + per
    overloaded node, the fewest VMs whose departure makes it fit on its worst resource."""
    running = {
        v: str(prep.src.vms[v].host)
        for v, s in prep.vm_state.items()
        if s is VMState.RUNNING and prep.src.vms[v].running
    }
    must = {v for v, h in running.items() if not _may_stay(prep, v, h)}
    stay = {v: h for v, h in running.items() if v not in must}
    placer = Placer(prep, stay)
    by_node: dict[str, list[str]] = {}
    for v, h in stay.items():
        by_node.setdefault(h, []).append(v)
    need = {
        node: max(
            _fewest_to_remove(
                [prep.demand[v].get(rc, 0) for v in by_node.get(node, ())],
                int(placer.load[placer.index[node], r] - placer.cap[placer.index[node], r]),
            )
            for r, rc in enumerate(placer.res)
        )
        for node in by_node
    }
    return len(must) + sum(need.values()) + _group_extra(prep, placer, by_node, need)


def _group_extra(
    prep: Prepared, placer: Placer, by_node: dict[str, list[str]], need: dict[str, int]
) -> int:
    """What `resourceCapacity` groups add to the per-node counts: a group over its amount
    must lose the fewest VMs whose departure gets it under; that count replaces the group's
    per-node counts when larger. Groups are taken disjoint, largest gain first, so that no VM
    is counted twice."""
    gains: list[tuple[int, frozenset[str]]] = []
    for c, idx, r in placer.rcaps:
        nodes = frozenset(placer.nodes[int(i)] for i in idx)
        excess = int(placer.load[idx, r].sum()) - c.amount
        sizes = [prep.demand[v].get(c.rc, 0) for n in nodes for v in by_node.get(n, ())]
        gain = _fewest_to_remove(sizes, excess) - sum(need.get(n, 0) for n in nodes)
        if gain > 0:
            gains.append((gain, nodes))
    taken: set[str] = set()
    extra = 0
    for gain, nodes in sorted(gains, key=lambda g: -g[0]):
        if not nodes & taken:
            taken |= nodes
            extra += gain
    return extra


def _fewest_to_remove(sizes: list[int], excess: int) -> int:
    """Fewest items of `sizes` whose total reaches `excess` (largest first is optimal)."""
    removed = 0
    for count, size in enumerate(sorted(sizes, reverse=True)):
        if removed >= excess:
            return count
        removed += size
    return len(sizes)


def _may_stay(prep: Prepared, vm: str, host: str) -> bool:
    if prep.node_state[host] is not NodeState.ONLINE:
        return False
    allowed = prep.allowed.get(vm)
    return allowed is None or host in allowed
