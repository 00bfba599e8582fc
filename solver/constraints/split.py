"""split: VMs of different groups never share a node."""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.solver.constraints.base import BOTH, Constraint, PlanView, register, running_hosts
from vmgrid.solver.context import PostContext, any_of
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class Split(Constraint):
    groups: tuple[tuple[str, ...], ...]
    continuous: bool = False
    kind = "split"
    semantics = BOTH

    def vms_in_scope(self) -> tuple[str, ...]:
        return tuple(v for g in self.groups for v in g)

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        owner: dict[str, int] = {}
        for i, group in enumerate(self.groups):
            for host in set(running_hosts(dst, group).values()):
                if owner.setdefault(host, i) != i:
                    return False
        return True

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        mine = next((g for g in self.groups if vm in g), None)
        if mine is None:
            return True
        others = {v for g in self.groups if g is not mine for v in g}
        return not any(m in others for m in view.present(node))

    def post(self, ctx: PostContext) -> None:
        enforce = ctx.enforce(self)
        nodes = ctx.nodes_of(self.vms_in_scope())
        for node in sorted(nodes):
            present = [
                any_of(ctx, [ctx.lit(v, node) for v in g], f"split_{i}_{node}")
                for i, g in enumerate(self.groups)
            ]
            if sum(1 for p in present if not (isinstance(p, int) and p == 0)) > 1:
                ctx.cp.add(sum(present) <= 1).only_enforce_if(enforce)
