"""among: the running VMs all within one group of nodes among `parts`.

Continuous: a VM already running in a group stays in that group (a cheap filter here, and the
planner never pivots it outside).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vmgrid.solver.constraints.base import BOTH, Constraint, PlanView, register, running_hosts
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class Among(Constraint):
    vms: tuple[str, ...]
    parts: tuple[tuple[str, ...], ...]
    continuous: bool = False
    kind = "among"
    semantics = BOTH

    def nodes_in_scope(self) -> tuple[str, ...]:
        return tuple(n for part in self.parts for n in part)

    def _part_of(self) -> dict[str, int]:
        return {n: i for i, part in enumerate(self.parts) for n in part}

    def _part_index(self, node: str | None) -> int | None:
        return next((i for i, part in enumerate(self.parts) if node in part), None)

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
        everywhere = frozenset(self.nodes_in_scope())
        out = {v: everywhere for v in self.vms}
        if self.continuous:
            part_of = self._part_of()
            for vm, host in running_hosts(src, self.vms).items():
                if host in part_of:
                    out[vm] = frozenset(self.parts[part_of[host]])
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
