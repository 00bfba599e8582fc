"""gather: the running VMs all on one node (continuous: at every instant, so a member only
arrives where every other running member is)."""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.solver.constraints.base import BOTH, Constraint, PlanView, register, running_hosts
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class Gather(Constraint):
    vms: tuple[str, ...]
    continuous: bool = False
    kind = "gather"
    semantics = BOTH

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        return len(set(running_hosts(dst, self.vms).values())) <= 1

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        if vm not in self.vms:
            return True
        return all(view.locations(m) <= {node} for m in self.vms if m != vm)

    def post(self, ctx: PostContext) -> None:
        nodes = sorted(ctx.nodes_of(self.vms))
        chosen = {n: ctx.cp.new_bool_var(f"gather_{n}") for n in nodes}
        enforce = ctx.enforce(self)
        ctx.cp.add(sum(chosen.values()) <= 1).only_enforce_if(enforce)
        for vm in self.vms:
            for node, lit in ctx.place(vm).items():
                ctx.cp.add(lit <= chosen[node]).only_enforce_if(enforce)
