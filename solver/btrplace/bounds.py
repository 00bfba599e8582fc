"""Lower bounds that say how good a reconfiguration is without solving it again.

`min_migrations` counts the migrations no plan can avoid: every VM hosted on a node that must
go offline, plus, per node that ends over capacity with the new demands, the fewest VMs whose
departure brings it back within capacity. For one resource, removing the largest VMs first is
optimal, so the count per resource is exact and their maximum over resources is a valid lower
bound for the node. A single-node ``resourceCapacity`` lowers that node's capacity.
"""

from __future__ import annotations

from collections.abc import Mapping

from vmgrid.solver.btrplace.instance import BtrInstance, Offline, ResourceCapacity


def fewest_to_remove(sizes: list[int], excess: int) -> int:
    """Fewest items of `sizes` whose total is at least `excess` (largest first)."""
    if excess <= 0:
        return 0
    removed = 0
    for count, size in enumerate(sorted(sizes, reverse=True), start=1):
        removed += size
        if removed >= excess:
            return count
    return len(sizes)


def _caps(instance: BtrInstance) -> dict[str, dict[str, int]]:
    caps = {n: dict(node.capacity) for n, node in instance.source.nodes.items()}
    for c in instance.of_type(ResourceCapacity):
        if len(c.nodes) == 1:
            cap = caps[c.nodes[0]]
            cap[c.resource] = min(cap.get(c.resource, 0), c.amount)
    return caps


def min_migrations(instance: BtrInstance) -> int:
    """A lower bound on the number of VMs any valid plan migrates."""
    src = instance.source
    leaving = {c.node for c in instance.of_type(Offline)}
    total = sum(len(src.hosted(n)) for n in leaving if src.nodes[n].online)
    caps = _caps(instance)
    for node in src.nodes:
        if node in leaving:
            continue
        running = src.running_on(node)
        demands: list[Mapping[str, int]] = [instance.target_demand(v) for v in running]
        need = 0
        for rc, cap in caps[node].items():
            sizes = [d.get(rc, 0) for d in demands]
            need = max(need, fewest_to_remove(sizes, sum(sizes) - cap))
        total += need
    return total
