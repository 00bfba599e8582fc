"""spread: the running VMs on pairwise distinct nodes.

Continuous: a member never moves onto a node where another member is present or arriving; the
planner asks `admits_arrival` before every arrival.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from vmgrid.solver.constraints.base import (
    BOTH,
    Constraint,
    PlanView,
    has_vars,
    post_each_node,
    register,
    running_hosts,
)
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class Spread(Constraint):
    vms: tuple[str, ...]
    continuous: bool = True
    kind = "spread"
    semantics = BOTH

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        hosts = list(running_hosts(dst, self.vms).values())
        return len(hosts) == len(set(hosts))

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        if vm not in self.vms:
            return True
        return not any(m in self.vms for m in view.present(node) if m != vm)

    def repair_scope(self, src: Model) -> set[str]:
        hosts = running_hosts(src, self.vms)
        count = Counter(hosts.values())
        return {v for v, h in hosts.items() if count[h] > 1}

    def post(self, ctx: PostContext) -> None:
        def at_most_one(node: str, lits: list) -> None:
            if len(lits) > 1 and has_vars(lits):
                ctx.cp.add(sum(lits) <= 1).only_enforce_if(ctx.enforce(self))

        post_each_node(ctx, self.vms, at_most_one)
