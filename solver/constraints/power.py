"""online / offline: the node must end powered on / off (an offline node hosts nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vmgrid.solver.constraints.base import Constraint, register
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model, NodeState


@dataclass(frozen=True)
class _Power(Constraint):
    nodes: tuple[str, ...]
    continuous: bool = False
    state = NodeState.ONLINE

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        return all(n in dst.nodes and dst.nodes[n].state is self.state for n in self.nodes)

    def node_states(self) -> Mapping[str, NodeState]:
        return {n: self.state for n in self.nodes}

    def post(self, ctx: PostContext) -> None:
        want = 1 if self.state is NodeState.ONLINE else 0
        for node in self.nodes:
            on = ctx.node_on.get(node, 0)
            ctx.cp.add(on == want).only_enforce_if(ctx.enforce(self))


@register
@dataclass(frozen=True)
class Online(_Power):
    kind = "online"
    state = NodeState.ONLINE

    def repair_scope(self, src: Model) -> set[str]:
        return set()


@register
@dataclass(frozen=True)
class Offline(_Power):
    kind = "offline"
    state = NodeState.OFFLINE

    def forbidden_nodes(self) -> frozenset[str]:
        return frozenset(self.nodes)

    def repair_scope(self, src: Model) -> set[str]:
        return {v for n in self.nodes for v in src.hosted(n)}
