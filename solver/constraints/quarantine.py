"""quarantine: no VM enters or leaves the nodes (they are being investigated), at any time."""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.solver.constraints.base import BOTH, Constraint, PlanView, register
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class Quarantine(Constraint):
    nodes: tuple[str, ...]
    continuous: bool = True
    kind = "quarantine"
    semantics = BOTH

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        closed = set(self.nodes)
        for name, vm in dst.vms.items():
            before = src.vms.get(name)
            old = before.host if before is not None else None
            if (old in closed or vm.host in closed) and old != vm.host:
                return False
        return True

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        return node not in self.nodes

    def admits_departure(self, view: PlanView, vm: str, node: str) -> bool:
        return node not in self.nodes

    def forbidden_nodes(self) -> frozenset[str]:
        return frozenset(self.nodes)

    def fixed_vms(self, src: Model) -> frozenset[str]:
        return frozenset(v for n in self.nodes for v in src.hosted(n))

    def repair_scope(self, src: Model) -> set[str]:
        return set()

    def post(self, ctx: PostContext) -> None:
        closed = set(self.nodes)
        enforce = ctx.enforce(self)
        for vm, row in ctx.placement.items():
            host = ctx.src.vms[vm].host
            for node, lit in row.items():
                if (node in closed or host in closed) and node != host:
                    ctx.cp.add(lit == 0).only_enforce_if(enforce)
