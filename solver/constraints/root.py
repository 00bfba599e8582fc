"""root: the VMs stay on their current node (no migration)."""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.solver.constraints.base import BOTH, Constraint, PlanView, register, running_hosts
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class Root(Constraint):
    vms: tuple[str, ...]
    continuous: bool = True
    kind = "root"
    semantics = BOTH

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        after = running_hosts(dst, self.vms)
        return all(after.get(v, h) == h for v, h in running_hosts(src, self.vms).items())

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        return vm not in self.vms or view.origin(vm) is None

    def admits_departure(self, view: PlanView, vm: str, node: str) -> bool:
        return vm not in self.vms

    def fixed_vms(self, src: Model) -> frozenset[str]:
        return frozenset(v for v in self.vms if v in src.vms and src.vms[v].host is not None)

    def repair_scope(self, src: Model) -> set[str]:
        return set()

    def post(self, ctx: PostContext) -> None:
        for vm in self.vms:
            host = ctx.src.vms[vm].host if vm in ctx.src.vms else None
            for node, lit in ctx.place(vm).items():
                if host is not None and node != host:
                    ctx.cp.add(lit == 0).only_enforce_if(ctx.enforce(self))
