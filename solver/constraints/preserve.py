"""preserve: the VM must get at least `amount` of resource `rc`.

The new demand replaces the VM's consumption in the destination (and may overload its current
node: BtrPlace's "load increase"). The solver applies it before any filter (`new_demand`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vmgrid.solver.constraints.base import Constraint, register
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class Preserve(Constraint):
    vm: str
    rc: str
    amount: int
    continuous: bool = False
    kind = "preserve"
    _bound = ">="

    def vms_in_scope(self) -> tuple[str, ...]:
        return (self.vm,)

    def new_demand(self, demand: Mapping[str, int]) -> dict[str, int]:
        out = dict(demand)
        out[self.rc] = max(out.get(self.rc, 0), self.amount)
        return out

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        vm = dst.vms.get(self.vm)
        return vm is None or not vm.running or vm.need(self.rc) >= self.amount

    def repair_scope(self, src: Model) -> set[str]:
        return set()

    def post(self, ctx: PostContext) -> None:
        """Nothing to add: the context's demands already include the preserved amount."""
