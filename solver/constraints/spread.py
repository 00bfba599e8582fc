"""spread: the running VMs on pairwise distinct nodes.

Continuous: a member never moves onto a node where another member is present or arriving; the
planner enforces that ordering (`vmgrid.solver.planner`), the final state is checked here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from vmgrid.solver.constraints.base import (
    Constraint,
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

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        hosts = list(running_hosts(dst, self.vms).values())
        return len(hosts) == len(set(hosts))

    def repair_scope(self, src: Model) -> set[str]:
        hosts = running_hosts(src, self.vms)
        count = Counter(hosts.values())
        return {v for v, h in hosts.items() if count[h] > 1}

    def post(self, ctx: PostContext) -> None:
        def at_most_one(node: str, lits: list) -> None:
            if len(lits) > 1 and has_vars(lits):
                ctx.cp.add(sum(lits) <= 1).only_enforce_if(ctx.enforce(self))

        post_each_node(ctx, self.vms, at_most_one)
