"""ban: the VMs must not run on the nodes (continuous: never, not even on the way)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vmgrid.solver.constraints.base import BOTH, Constraint, PlanView, register, running_hosts
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class Ban(Constraint):
    vms: tuple[str, ...]
    nodes: tuple[str, ...]
    continuous: bool = False
    kind = "ban"
    semantics = BOTH

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        banned = set(self.nodes)
        return all(h not in banned for h in running_hosts(dst, self.vms).values())

    def allowed(self, src: Model) -> Mapping[str, frozenset[str]]:
        rest = frozenset(src.nodes) - set(self.nodes)
        return {v: rest for v in self.vms}

    def plan_scope(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.vms, ()

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        return vm not in self.vms or node not in self.nodes

    def repair_scope(self, src: Model) -> set[str]:
        banned = set(self.nodes)
        return {v for v, h in running_hosts(src, self.vms).items() if h in banned}

    def post(self, ctx: PostContext) -> None:
        for vm in self.vms:
            for node in self.nodes:
                lit = ctx.lit(vm, node)
                if not (isinstance(lit, int) and lit == 0):
                    ctx.cp.add(lit == 0).only_enforce_if(ctx.enforce(self))
