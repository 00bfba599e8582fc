"""resourceCapacity, runningCapacity, maxOnline: caps on a set of nodes taken together.

The first two may be continuous (the planner never lets an arrival cross the cap); maxOnline is
discrete only, since the planner boots nodes before it shuts others down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vmgrid.solver.constraints.base import BOTH, Constraint, PlanView, register
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class ResourceCapacity(Constraint):
    """Total running consumption of resource `rc` on `nodes` stays <= `amount`."""

    nodes: tuple[str, ...]
    rc: str
    amount: int
    continuous: bool = False
    kind = "resourceCapacity"
    semantics = BOTH

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        return sum(dst.load(n, self.rc) for n in self.nodes) <= self.amount

    def excess(self, loads: Mapping[str, int]) -> int:
        """How much of `rc` must leave `nodes` (0 when within `amount`); `loads` by node."""
        return max(0, sum(loads.get(n, 0) for n in self.nodes) - self.amount)

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        if node not in self.nodes:
            return True
        need = view.demand(vm).get(self.rc, 0)
        return not need or sum(view.load(n, self.rc) for n in self.nodes) + need <= self.amount

    def repair_scope(self, src: Model) -> set[str]:
        """Nothing must move: the heuristics evict the fewest VMs, CP-SAT frees the nodes' VMs."""
        return set()

    def post(self, ctx: PostContext) -> None:
        terms = [
            ctx.demand[vm].get(self.rc, 0) * lit for n in self.nodes for vm, lit in ctx.on_node(n)
        ]
        ctx.cp.add(sum(terms) <= self.amount).only_enforce_if(ctx.enforce(self))


@register
@dataclass(frozen=True)
class RunningCapacity(Constraint):
    """At most `amount` VMs run on `nodes` together."""

    nodes: tuple[str, ...]
    amount: int
    continuous: bool = False
    kind = "runningCapacity"
    semantics = BOTH

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        return sum(len(dst.running_on(n)) for n in self.nodes) <= self.amount

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        if node not in self.nodes:
            return True
        return sum(len(view.present(n)) for n in self.nodes) + 1 <= self.amount

    def post(self, ctx: PostContext) -> None:
        lits = [lit for n in self.nodes for _, lit in ctx.on_node(n)]
        ctx.cp.add(sum(lits) <= self.amount).only_enforce_if(ctx.enforce(self))


@register
@dataclass(frozen=True)
class MaxOnline(Constraint):
    """At most `amount` of `nodes` end online."""

    nodes: tuple[str, ...]
    amount: int
    continuous: bool = False
    kind = "maxOnline"

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        return sum(1 for n in self.nodes if dst.nodes[n].online) <= self.amount

    def repair_scope(self, src: Model) -> set[str]:
        if self.is_satisfied(src, src):
            return set()
        return {v for n in self.nodes for v in src.hosted(n)}

    def post(self, ctx: PostContext) -> None:
        on = [ctx.node_on.get(n, 0) for n in self.nodes]
        ctx.cp.add(sum(on) <= self.amount).only_enforce_if(ctx.enforce(self))
