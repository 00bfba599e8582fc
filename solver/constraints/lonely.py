"""lonely: the VMs never share a node with a VM outside the set (continuous: not even while
VMs move, so a member never arrives beside a non-member and a non-member never arrives beside a
member)."""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.solver.constraints.base import BOTH, Constraint, PlanView, register, running_hosts
from vmgrid.solver.context import PostContext, any_of
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class Lonely(Constraint):
    vms: tuple[str, ...]
    continuous: bool = False
    kind = "lonely"
    semantics = BOTH

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        members = set(self.vms)
        for host in set(running_hosts(dst, self.vms).values()):
            if any(v not in members for v in dst.running_on(host)):
                return False
        return True

    def plan_scope(self) -> None:
        return None

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        members = set(self.vms)
        inside = vm in members
        return all((m in members) == inside for m in view.present(node) if m != vm)

    def repair_scope(self, src: Model) -> set[str]:
        if self.is_satisfied(src, src):
            return set()
        scope = set(self.vms)
        for host in set(running_hosts(src, self.vms).values()):
            scope.update(src.running_on(host))
        return scope

    def post(self, ctx: PostContext) -> None:
        members = set(self.vms)
        enforce = ctx.enforce(self)
        for node in sorted(ctx.nodes_of(self.vms)):
            here = any_of(ctx, [ctx.lit(v, node) for v in self.vms], f"lonely_{node}")
            for vm, lit in ctx.on_node(node):
                if vm not in members:
                    ctx.cp.add(lit + here <= 1).only_enforce_if(enforce)
