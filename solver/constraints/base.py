"""The constraint plugin contract and the registry of plugins by name.

A plugin is a frozen dataclass with two faces that must agree:
- `post(ctx)`: add itself to a CP-SAT model through a `PostContext`, every constraint enforced by
  `ctx.enforce(self)` so that infeasibility can be traced back to it;
- `is_satisfied(src, dst)`: a pure check of a destination configuration, used by tests, by the
  heuristics and as an independent cross-check of the solver.
Optional hooks feed the cheap filters that run before any variable exists: `allowed` (per-VM
node whitelist), `repair_scope` (VMs that must be free to repair a violation), and the state
hooks of the state constraints.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar, TypeVar

from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model, NodeState, VMState
from vmgrid.v1.errors import VmgridError


class ConstraintError(VmgridError, ValueError):
    """A constraint that cannot be built: unknown name or bad arguments."""


class Constraint(ABC):
    """A placement or state rule on the destination configuration (and, if continuous, the plan)."""

    kind: ClassVar[str]
    continuous: bool = False

    @abstractmethod
    def is_satisfied(self, src: Model, dst: Model) -> bool:
        """Does `dst` (reached from `src`) respect the constraint?"""

    @abstractmethod
    def post(self, ctx: PostContext) -> None:
        """Add the constraint to the CP-SAT model of `ctx`."""

    def vms_in_scope(self) -> tuple[str, ...]:
        return tuple(getattr(self, "vms", ()))

    def nodes_in_scope(self) -> tuple[str, ...]:
        return tuple(getattr(self, "nodes", ()))

    def allowed(self, src: Model) -> Mapping[str, frozenset[str]] | None:
        """Per VM, the only nodes it may end on (None: no such unary restriction)."""
        return None

    def forbidden_nodes(self) -> frozenset[str]:
        """Nodes that no VM may move onto (quarantine) or end on (offline)."""
        return frozenset()

    def fixed_vms(self, src: Model) -> frozenset[str]:
        """VMs that must not move at all (root, quarantine)."""
        return frozenset()

    def vm_states(self) -> Mapping[str, VMState]:
        """Destination states imposed on VMs (running, ready, sleeping)."""
        return {}

    def node_states(self) -> Mapping[str, NodeState]:
        """Destination states imposed on nodes (online, offline)."""
        return {}

    def repair_scope(self, src: Model) -> set[str]:
        """VMs to free so the solver can repair a violation in `src` (empty when satisfied)."""
        if self.is_satisfied(src, src):
            return set()
        scope = {v for v in self.vms_in_scope() if v in src.vms}
        for node in self.nodes_in_scope():
            scope.update(src.hosted(node))
        return scope

    def label(self) -> str:
        """A short name for explanations: kind and the first elements it covers."""
        parts = list(self.vms_in_scope()) or list(self.nodes_in_scope())
        shown = ",".join(parts[:4]) + (",..." if len(parts) > 4 else "")
        return f"{self.kind}({shown})"


C = TypeVar("C", bound=type[Constraint])
REGISTRY: dict[str, type[Constraint]] = {}


def register(cls: C) -> C:
    """Class decorator: make a plugin available by its `kind` name."""
    REGISTRY[cls.kind] = cls
    return cls


def running_hosts(model: Model, vms: Iterable[str]) -> dict[str, str]:
    """VM -> host for the VMs of `vms` that run in `model`."""
    out = {}
    for name in vms:
        vm = model.vms.get(name)
        if vm is not None and vm.running and vm.host is not None:
            out[name] = vm.host
    return out


def post_each_node(ctx: PostContext, vms: Iterable[str], body: Callable[[str, list], None]) -> None:
    """Call `body(node, literals)` for every node where some of `vms` may end running."""
    per_node: dict[str, list] = {}
    for vm in vms:
        for node, lit in ctx.place(vm).items():
            per_node.setdefault(node, []).append(lit)
    for node, lits in per_node.items():
        body(node, lits)


def has_vars(lits: Iterable[object]) -> bool:
    return any(not isinstance(x, int) for x in lits)
