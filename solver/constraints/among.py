"""among: the running VMs all within one group of nodes among `parts`.

Continuous: a VM already running in a group stays in that group (a cheap filter here, and the
planner never pivots it outside).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

from vmgrid.solver.constraints.base import BOTH, Constraint, PlanView, register, running_hosts
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@dataclass(frozen=True)
class _Layout:
    """What every `among` over the same `parts` shares: built once, not once per rule."""

    nodes: tuple[str, ...]
    everywhere: frozenset[str]
    groups: tuple[frozenset[str], ...]
    part_of: Mapping[str, int]


@lru_cache(maxsize=256)
def _layout(parts: tuple[tuple[str, ...], ...]) -> _Layout:
    part_of: dict[str, int] = {}
    for i, part in enumerate(parts):
        for n in part:
            part_of.setdefault(n, i)
    nodes = tuple(part_of)
    return _Layout(nodes, frozenset(nodes), tuple(frozenset(p) for p in parts), part_of)


@register
@dataclass(frozen=True)
class Among(Constraint):
    vms: tuple[str, ...]
    parts: tuple[tuple[str, ...], ...]
    continuous: bool = False
    kind = "among"
    semantics = BOTH

    @cached_property
    def _lay(self) -> _Layout:
        return _layout(self.parts)

    def nodes_in_scope(self) -> tuple[str, ...]:
        """The nodes of all parts (one tuple shared by the rules over the same parts)."""
        return self._lay.nodes

    def _part_of(self) -> Mapping[str, int]:
        return self._lay.part_of

    def _part_index(self, node: str | None) -> int | None:
        return None if node is None else self._part_of().get(node)

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        part_of = self._part_of()
        used = {part_of.get(h, -1) for h in running_hosts(dst, self.vms).values()}
        if len(used) > 1 or -1 in used:
            return False
        if self.continuous:
            before = running_hosts(src, self.vms)
            after = running_hosts(dst, self.vms)
            for vm, host in before.items():
                if vm in after and part_of.get(host) != part_of.get(after[vm]):
                    return False
        return True

    def allowed(self, src: Model) -> Mapping[str, frozenset[str]]:
        layout = self._lay
        out = {v: layout.everywhere for v in self.vms}
        if self.continuous:
            for vm, host in running_hosts(src, self.vms).items():
                if host in layout.part_of:
                    out[vm] = layout.groups[layout.part_of[host]]
        return out

    def plan_scope(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.vms, ()

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        """A member stays in the group it runs in; one that starts joins the others' group."""
        if vm not in self.vms:
            return True
        here = self._part_index(node)
        home = self._part_index(view.origin(vm))
        if home is not None:
            return here == home
        others = {self._part_index(n) for m in self.vms if m != vm for n in view.locations(m)}
        return here is not None and others <= {here}

    def repair_scope(self, src: Model) -> set[str]:
        if self.is_satisfied(src, src):
            return set()
        return set(self.vms)

    def post(self, ctx: PostContext) -> None:
        part_of = self._part_of()
        enforce = ctx.enforce(self)
        chosen = [ctx.cp.new_bool_var(f"among_part{i}") for i in range(len(self.parts))]
        ctx.cp.add(sum(chosen) <= 1).only_enforce_if(enforce)
        for vm in self.vms:
            for node, lit in ctx.place(vm).items():
                part = part_of.get(node)
                if part is None:
                    ctx.cp.add(lit == 0).only_enforce_if(enforce)
                else:
                    ctx.cp.add(lit <= chosen[part]).only_enforce_if(enforce)
