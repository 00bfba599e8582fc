"""The constraint plugin contract and the registry of plugins by name.

A plugin is a frozen dataclass with two faces that must agree:
- `post(ctx)`: add itself to a CP-SAT model through a `PostContext`, every constraint enforced by
  `ctx.enforce(self)` so that infeasibility can be traced back to it;
- `is_satisfied(src, dst)`: a pure check of a destination configuration, used by tests, by the
  heuristics and as an independent cross-check of the solver.
Optional hooks feed the cheap filters that run before any variable exists: `allowed` (per-VM
node whitelist), `repair_scope` (VMs that must be free to repair a violation), and the state
hooks of the state constraints.

Semantics are part of the contract: `semantics` says whether a plugin holds on the final
configuration only (``discrete``) and/or at every instant of the plan (``continuous``). A
continuous plugin answers the planner's `admits_arrival` / `admits_departure` for every VM that
arrives on or leaves a node while the plan runs (migrations, boots, resumes, pivots, suspends);
`continuous=True` on a plugin that does not support it is refused at construction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import ClassVar, Protocol, TypeVar

from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model, NodeState, VMState
from vmgrid.v1.errors import VmgridError


class ConstraintError(VmgridError, ValueError):
    """A constraint that cannot be built: unknown name or bad arguments."""


DISCRETE = "discrete"
CONTINUOUS = "continuous"
BOTH: frozenset[str] = frozenset({DISCRETE, CONTINUOUS})


class PlanView(Protocol):
    """What a continuous rule sees of a plan while it is being built, at the current instant.

    A VM in transit is present on both its source and its destination; loads count the
    destination's new demand from an arrival's start and the source's old one until it ends.
    """

    def present(self, node: str) -> AbstractSet[str]:
        """Running VMs on `node` now, arriving ones included."""

    def load(self, node: str, rc: str) -> int:
        """Consumption of `rc` on `node` now, arriving VMs included."""

    def demand(self, vm: str) -> Mapping[str, int]:
        """What `vm` consumes where it arrives (its new demand)."""

    def origin(self, vm: str) -> str | None:
        """The node `vm` runs on in the source (None when it does not run there)."""

    def locations(self, vm: str) -> AbstractSet[str]:
        """Nodes where `vm` is present now (two while it migrates)."""


class Constraint(ABC):
    """A placement or state rule on the destination configuration (and, if continuous, the plan)."""

    kind: ClassVar[str]
    semantics: ClassVar[frozenset[str]] = frozenset({DISCRETE})
    """``discrete`` and/or ``continuous``: what `continuous` may be set to."""
    continuous: bool = False

    def __post_init__(self) -> None:
        wanted = CONTINUOUS if self.continuous else DISCRETE
        if wanted not in self.semantics:
            offered = " and ".join(sorted(self.semantics))
            raise ConstraintError(
                f"{self.label()}: continuous={self.continuous} is not supported; "
                f"{self.kind} has {offered} semantics only"
            )

    @abstractmethod
    def is_satisfied(self, src: Model, dst: Model) -> bool:
        """Does `dst` (reached from `src`) respect the constraint?"""

    @abstractmethod
    def post(self, ctx: PostContext) -> None:
        """Add the constraint to the CP-SAT model of `ctx`."""

    def admits_arrival(self, view: PlanView, vm: str, node: str) -> bool:
        """Continuous rules: may `vm` start arriving on `node` now? (asked for every arrival)"""
        return True

    def admits_departure(self, view: PlanView, vm: str, node: str) -> bool:
        """Continuous rules: may `vm` start leaving `node` now?"""
        return True

    def plan_scope(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(VMs, nodes) whose arrivals and departures this rule's hooks must see; None: every
        arrival and departure (a rule such as lonely, which also restricts VMs outside it)."""
        return self.vms_in_scope(), self.nodes_in_scope()

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
        """A short name for explanations: kind and the VMs it covers (else its nodes), then its
        nodes when it has both, and the resource and amount of a resource rule."""
        vms, nodes = list(self.vms_in_scope()), list(self.nodes_in_scope())
        shown = _first(vms or nodes)
        if vms and nodes:
            shown += f"; nodes {_first(nodes)}"
        rc, amount = getattr(self, "rc", None), getattr(self, "amount", None)
        if rc:
            shown += f": {rc}" + (f" {self._bound} {amount}" if amount is not None else "")
        elif amount is not None:
            shown += f": {self._bound} {amount}"
        return f"{self.kind}({shown})"

    _bound: ClassVar[str] = "<="


def _first(names: list[str]) -> str:
    return ",".join(names[:4]) + (",..." if len(names) > 4 else "")


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
