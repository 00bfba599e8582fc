"""capacity: every online node holds its running VMs on every resource (network included).

Always in force; the model builder posts it per node with the fixed VMs folded into a constant.
Continuous capacity (at every instant of the plan) is the planner's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.solver.constraints.base import BOTH, Constraint, register
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class Capacity(Constraint):
    """`nodes` empty means every node of the model; `rc` empty means every resource (explanations
    post one per resource so that a conflict names the resource that is short)."""

    nodes: tuple[str, ...] = ()
    continuous: bool = True
    rc: str = ""
    kind = "capacity"
    semantics = BOTH

    def violations(self, dst: Model) -> list[tuple[str, str]]:
        """(node, resource) pairs over capacity, or hosting VMs while offline."""
        out = []
        for name in self.nodes or tuple(dst.nodes):
            node = dst.nodes[name]
            if not node.online and dst.running_on(name):
                out.append((name, "power"))
            out.extend((name, r) for r in dst.overloaded(name) if r == self.rc or not self.rc)
        return out

    def label(self) -> str:
        where = ",".join(self.nodes[:4]) + (",..." if len(self.nodes) > 4 else "")
        where = where or "every node"
        return f"capacity({where}: {self.rc})" if self.rc else f"capacity({where})"

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        return not self.violations(dst)

    def repair_scope(self, src: Model) -> set[str]:
        return {v for n, _ in self.violations(src) for v in src.running_on(n)}

    def post(self, ctx: PostContext) -> None:
        enforce = ctx.enforce(self)
        for name in self.nodes or tuple(ctx.src.nodes):
            node = ctx.src.nodes[name]
            entries = ctx.on_node(name)
            on = ctx.node_on.get(name, 0)
            for _vm, lit in entries:
                ctx.cp.add(lit <= on).only_enforce_if(enforce)
            for rc, cap in node.capacity.items():
                if self.rc and rc != self.rc:
                    continue
                terms = [ctx.demand[vm].get(rc, 0) * lit for vm, lit in entries]
                if terms:
                    ctx.cp.add(sum(terms) <= cap).only_enforce_if(enforce)
            extra = {r for vm, _ in entries for r in ctx.demand[vm]} - set(node.capacity)
            for rc in extra if not self.rc else extra & {self.rc}:
                terms = [ctx.demand[vm].get(rc, 0) * lit for vm, lit in entries]
                ctx.cp.add(sum(terms) <= 0).only_enforce_if(enforce)
