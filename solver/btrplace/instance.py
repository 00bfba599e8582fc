"""A BtrPlace instance as vmgrid values: the source `Model`, new demands and the constraints.

BtrPlace ids are integers; vmgrid names are strings, so an id ``42`` becomes the name ``"42"``
and goes back to ``42`` on export. The constraint types mirror BtrPlace's JSON one for one, so
that the plan validator can check exactly what the file asked for, independently of how the
solver models it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from vmgrid.solver import constraints as rules
from vmgrid.solver.model import Model, Resources


@dataclass(frozen=True, slots=True)
class Online:
    """The node must end online."""

    node: str


@dataclass(frozen=True, slots=True)
class Offline:
    """The node must end offline."""

    node: str


@dataclass(frozen=True, slots=True)
class Running:
    """The VM must end running (a ready VM gets booted)."""

    vm: str


@dataclass(frozen=True, slots=True)
class Preserve:
    """The VM gets at least `amount` of `resource`: its new demand (BtrPlace's load increase)."""

    vm: str
    resource: str
    amount: int


@dataclass(frozen=True, slots=True)
class Spread:
    """Running members on distinct nodes; continuous: never co-located while moving either."""

    vms: tuple[str, ...]
    continuous: bool


@dataclass(frozen=True, slots=True)
class Among:
    """Running members all on the nodes of one part; continuous: members stay in their part."""

    vms: tuple[str, ...]
    parts: tuple[frozenset[str], ...]
    continuous: bool


@dataclass(frozen=True, slots=True)
class ResourceCapacity:
    """Total consumption of `resource` on `nodes` at most `amount` (checked at the end)."""

    nodes: tuple[str, ...]
    resource: str
    amount: int
    continuous: bool


Constraint = (
    Online | Offline | Running | Preserve | Spread | Among | ResourceCapacity | rules.Constraint
)
"""BtrPlace's benchmark vocabulary as its own values; every other kind as its solver rule."""
C = TypeVar("C")


@dataclass(frozen=True)
class BtrInstance:
    """A parsed, checked BtrPlace instance.

    `source` holds each VM's current consumption; `demands` holds its demand after the
    reconfiguration (current consumption with every `Preserve` applied). Duplicated
    constraints in the file appear once in `constraints`.
    """

    name: str
    source: Model
    demands: Mapping[str, Resources]
    constraints: tuple[Constraint, ...]
    objective: str

    def target_demand(self, vm: str) -> Resources:
        return self.demands.get(vm, self.source.vms[vm].demand)

    def of_type(self, kind: type[C]) -> list[C]:
        return [c for c in self.constraints if isinstance(c, kind)]
