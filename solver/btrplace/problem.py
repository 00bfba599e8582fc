"""Turn a `BtrInstance` into the solver's `Problem`, one solver plugin per BtrPlace constraint."""

from __future__ import annotations

from vmgrid.solver import constraints as plugins
from vmgrid.solver.btrplace.instance import (
    Among,
    BtrInstance,
    Constraint,
    Offline,
    Online,
    Preserve,
    ResourceCapacity,
    Running,
    Spread,
)
from vmgrid.solver.btrplace.reader import BtrPlaceError
from vmgrid.solver.problem import OBJECTIVES as SOLVER_OBJECTIVES
from vmgrid.solver.problem import Problem

OBJECTIVES = {"minimizeMTTR": "mttr"}


def to_plugin(c: Constraint, groups: dict[frozenset[str], tuple[str, ...]]) -> plugins.Constraint:
    """The solver plugin that enforces `c`; `groups` caches node groups shared by `among`s."""
    if isinstance(c, plugins.Constraint):
        return c
    if isinstance(c, Online):
        return plugins.Online((c.node,))
    if isinstance(c, Offline):
        return plugins.Offline((c.node,))
    if isinstance(c, Running):
        return plugins.Running((c.vm,))
    if isinstance(c, Preserve):
        return plugins.Preserve(c.vm, c.resource, c.amount)
    if isinstance(c, Spread):
        return plugins.Spread(c.vms, c.continuous)
    if isinstance(c, Among):
        parts = tuple(groups.get(p) or groups.setdefault(p, tuple(sorted(p))) for p in c.parts)
        return plugins.Among(c.vms, parts, c.continuous)
    if isinstance(c, ResourceCapacity):
        return plugins.ResourceCapacity(c.nodes, c.resource, c.amount, c.continuous)
    raise BtrPlaceError(f"constraint {c!r}: no solver plugin for it")


def to_problem(instance: BtrInstance) -> Problem:
    """The solver problem for `instance`; BtrPlace's ``minimizeMTTR`` maps to ``mttr``.

    A solver objective name (``consolidation``...) passes through, for generated instances.
    """
    objective = OBJECTIVES.get(instance.objective, instance.objective)
    if objective not in SOLVER_OBJECTIVES:
        objective = "mttr"
    groups: dict[frozenset[str], tuple[str, ...]] = {}
    plugins_ = tuple(to_plugin(c, groups) for c in instance.constraints)
    return Problem(instance.source, plugins_, objective)
