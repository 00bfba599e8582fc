"""Constraint plugins, one module each, available by name in `REGISTRY`.

`make("ban", vms=("vm1",), nodes=("n1",))` builds one by BtrPlace name.
"""

from __future__ import annotations

from typing import Any

from vmgrid.solver.constraints.among import Among
from vmgrid.solver.constraints.ban import Ban
from vmgrid.solver.constraints.base import REGISTRY, Constraint, ConstraintError
from vmgrid.solver.constraints.capacity import Capacity
from vmgrid.solver.constraints.counting import MaxOnline, ResourceCapacity, RunningCapacity
from vmgrid.solver.constraints.fence import Fence
from vmgrid.solver.constraints.gather import Gather
from vmgrid.solver.constraints.lonely import Lonely
from vmgrid.solver.constraints.network import NetworkAffinity
from vmgrid.solver.constraints.power import Offline, Online
from vmgrid.solver.constraints.preserve import Preserve
from vmgrid.solver.constraints.quarantine import Quarantine
from vmgrid.solver.constraints.root import Root
from vmgrid.solver.constraints.split import Split
from vmgrid.solver.constraints.spread import Spread
from vmgrid.solver.constraints.vmstate import Ready, Running, Sleeping


def make(kind: str, **fields: Any) -> Constraint:
    """Build the constraint named `kind` (BtrPlace spelling) from keyword fields."""
    cls = REGISTRY.get(kind)
    if cls is None:
        raise ConstraintError(f"unknown constraint {kind!r}; known: {', '.join(sorted(REGISTRY))}")
    try:
        return cls(**fields)
    except TypeError as exc:
        raise ConstraintError(f"constraint {kind!r}: {exc}") from None


__all__ = [
    "REGISTRY",
    "Among",
    "Ban",
    "Capacity",
    "Constraint",
    "ConstraintError",
    "Fence",
    "Gather",
    "Lonely",
    "MaxOnline",
    "NetworkAffinity",
    "Offline",
    "Online",
    "Preserve",
    "Quarantine",
    "Ready",
    "ResourceCapacity",
    "Root",
    "Running",
    "RunningCapacity",
    "Sleeping",
    "Split",
    "Spread",
    "make",
]
