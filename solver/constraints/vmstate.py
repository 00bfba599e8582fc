"""running / ready / sleeping: the VMs must end in that state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vmgrid.solver.constraints.base import Constraint, register
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model, VMState


@dataclass(frozen=True)
class _State(Constraint):
    vms: tuple[str, ...]
    continuous: bool = False
    state = VMState.RUNNING

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        return all(v in dst.vms and dst.vms[v].state is self.state for v in self.vms)

    def vm_states(self) -> Mapping[str, VMState]:
        return {v: self.state for v in self.vms}

    def repair_scope(self, src: Model) -> set[str]:
        return {v for v in self.vms if v in src.vms and src.vms[v].state is not self.state}

    def post(self, ctx: PostContext) -> None:
        """States are decided before the model is built; a running VM gets exactly one host."""
        if self.state is not VMState.RUNNING:
            return
        for vm in self.vms:
            row = ctx.place(vm)
            ctx.cp.add(sum(row.values()) == 1).only_enforce_if(ctx.enforce(self))


@register
@dataclass(frozen=True)
class Running(_State):
    kind = "running"
    state = VMState.RUNNING


@register
@dataclass(frozen=True)
class Ready(_State):
    kind = "ready"
    state = VMState.READY


@register
@dataclass(frozen=True)
class Sleeping(_State):
    kind = "sleeping"
    state = VMState.SLEEPING
