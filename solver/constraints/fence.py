"""fence: the VMs may only run on the nodes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vmgrid.solver.constraints.base import BOTH, Constraint, PlanView, register, running_hosts
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class Fence(Constraint):
    vms: tuple[str, ...]
    nodes: tuple[str, ...]
    continuous: bool = False
    kind = "fence"
    semantics = BOTH

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        ok = set(self.nodes)
        return all(h in ok for h in running_hosts(dst, self.vms).values())

    def allowed(self, src: Model) -> Mapping[str, frozenset[str]]:
        ok = frozenset(self.nodes)
        return {v: ok for v in self.vms}

    def plan_scope(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.vms, ()

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        return vm not in self.vms or node in self.nodes

    def repair_scope(self, src: Model) -> set[str]:
        ok = set(self.nodes)
        return {v for v, h in running_hosts(src, self.vms).items() if h not in ok}

    def post(self, ctx: PostContext) -> None:
        ok = set(self.nodes)
        for vm in self.vms:
            for node, lit in ctx.place(vm).items():
                if node not in ok:
                    ctx.cp.add(lit == 0).only_enforce_if(ctx.enforce(self))
