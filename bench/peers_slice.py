"""A smaller instance cut from a BtrPlace workload, for solvers that cannot take 5,000 nodes.

`slice_instance(instance, nodes)` keeps `nodes` nodes spread evenly over the node ids (so that
the nodes going offline, those coming online and the node groups of `among` keep their
proportions), the VMs they host, an even share of the ready VMs, and every constraint restricted
to what is kept: a `spread` keeps its members that remain (dropped under two), an `among` its
members and each part's remaining nodes, a `resourceCapacity` only if all its nodes remain.
"""

from __future__ import annotations

from vmgrid.solver.btrplace.instance import (
    Among,
    BtrInstance,
    Constraint,
    Offline,
    Online,
    Preserve,
    ResourceCapacity,
    Running,
    Spread,
)
from vmgrid.solver.model import Model


def _order(name: str) -> tuple[int, str]:
    return (int(name), name) if name.isdigit() else (0, name)


def _every(items: list[str], share: float) -> list[str]:
    """About `share` of `items`, evenly spaced."""
    if share >= 1:
        return items
    picked, acc = [], 0.0
    for item in items:
        acc += share
        if acc >= 1:
            picked.append(item)
            acc -= 1
    return picked


def slice_instance(instance: BtrInstance, nodes: int) -> BtrInstance:
    """`instance` cut down to about `nodes` nodes (see the module doc)."""
    if nodes < 2:
        raise ValueError(f"--slice-nodes {nodes}: keep at least 2 nodes")
    src = instance.source
    names = sorted(src.nodes, key=_order)
    if nodes >= len(names):
        return instance
    share = nodes / len(names)
    kept = set(_every(names, share))
    ready = [v for v, vm in src.vms.items() if vm.host is None]
    vms = {v for v, vm in src.vms.items() if vm.host in kept}
    vms.update(_every(sorted(ready, key=_order), share))
    model = Model({n: src.nodes[n] for n in names if n in kept}, {v: src.vms[v] for v in vms})
    constraints: list[Constraint] = []
    for c in instance.constraints:
        cut = _restrict(c, kept, vms)
        if cut is not None:
            constraints.append(cut)
    demands = {v: d for v, d in instance.demands.items() if v in vms}
    name = f"{instance.name}/slice{len(kept)}"
    return BtrInstance(name, model, demands, tuple(dict.fromkeys(constraints)), instance.objective)


def _restrict(c: Constraint, nodes: set[str], vms: set[str]) -> Constraint | None:
    if isinstance(c, Online | Offline):
        return c if c.node in nodes else None
    if isinstance(c, Running | Preserve):
        return c if c.vm in vms else None
    if isinstance(c, Spread):
        members = tuple(v for v in c.vms if v in vms)
        return Spread(members, c.continuous) if len(members) > 1 else None
    if isinstance(c, Among):
        members = tuple(v for v in c.vms if v in vms)
        parts = tuple(p & nodes for p in c.parts if p & nodes)
        return Among(members, parts, c.continuous) if members and parts else None
    if isinstance(c, ResourceCapacity):
        return c if all(n in nodes for n in c.nodes) else None
    scope_vms = set(c.vms_in_scope())
    scope_nodes = set(c.nodes_in_scope())
    return c if scope_vms <= vms and scope_nodes <= nodes else None
