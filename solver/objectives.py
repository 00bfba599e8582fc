"""Objectives by name, combined lexicographically (``a>b``) or weighted (``a+3*b``).

- ``migrations``: number of VMs that leave their host (Entropy's VMRP with unit costs).
- ``memory``: moved memory in MiB (migrations weighted by memory).
- ``mttr``: BtrPlace's MinMTTR proxy: sum of the moved VMs' migration durations.
- ``consolidation``: number of online nodes (Entropy's VMPP).
- ``balance``: sum over resources of the highest node load, in per-mille of capacity.
Network affinity costs (Mbit/s of split pairs) are always added at the lowest priority.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ortools.sat.python import cp_model
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import MEMORY
from vmgrid.v1.errors import VmgridError


class ObjectiveError(VmgridError, ValueError):
    """An objective expression that names no known objective."""


@dataclass(frozen=True)
class Term:
    expr: cp_model.LinearExprT
    upper: int
    """An upper bound of `expr`, used to scale lexicographic weights."""


def _moves(ctx: PostContext, weight: Callable[[str], int]) -> Term:
    terms, upper = [], 0
    for vm, row in ctx.placement.items():
        host = ctx.src.vms[vm].host
        if not ctx.is_free(vm) or host is None or not ctx.src.vms[vm].running:
            continue
        w = weight(vm)
        stay = row.get(host, 0)
        terms.append(w * (1 - stay))
        upper += w
    return Term(sum(terms), upper)


def migrations(ctx: PostContext) -> Term:
    return _moves(ctx, lambda vm: 1)


def memory(ctx: PostContext) -> Term:
    return _moves(ctx, lambda vm: max(1, ctx.src.vms[vm].need(MEMORY)))


def mttr(ctx: PostContext) -> Term:
    return _moves(ctx, lambda vm: ctx.src.vms[vm].duration_s("migrate"))


def consolidation(ctx: PostContext) -> Term:
    return Term(sum(ctx.node_on.values()), len(ctx.node_on))


def balance(ctx: PostContext) -> Term:
    parts = []
    for rc in ctx.src.resources:
        peak = ctx.cp.new_int_var(0, 1000, f"peak_{rc}")
        for name, node in ctx.src.nodes.items():
            cap = node.cap(rc)
            entries = ctx.on_node(name)
            if cap <= 0 or not entries:
                continue
            load = sum(ctx.demand[vm].get(rc, 0) * lit for vm, lit in entries)
            ctx.cp.add(1000 * load <= peak * cap)
        parts.append(peak)
    return Term(sum(parts), 1000 * len(parts))


OBJECTIVES: dict[str, Callable[[PostContext], Term]] = {
    "migrations": migrations,
    "memory": memory,
    "mttr": mttr,
    "consolidation": consolidation,
    "balance": balance,
}


def parse(spec: str) -> list[list[tuple[int, str]]]:
    """``"consolidation>2*mttr+balance"`` -> [[(1, consolidation)], [(2, mttr), (1, balance)]]."""
    levels = []
    for level in spec.split(">"):
        terms = []
        for part in level.split("+"):
            m = re.fullmatch(r"\s*(?:(\d+)\s*\*\s*)?([A-Za-z_]+)\s*", part)
            if m is None or m.group(2) not in OBJECTIVES:
                raise ObjectiveError(
                    f"bad objective {part.strip()!r} in {spec!r}; "
                    f"use names from {', '.join(OBJECTIVES)} joined by '>' or '+' (e.g. 2*mttr)"
                )
            terms.append((int(m.group(1) or 1), m.group(2)))
        levels.append(terms)
    return levels


def post_objective(ctx: PostContext, spec: str) -> None:
    """Minimise `spec`; lexicographic levels become weights larger than the levels below."""
    levels = [[(w, OBJECTIVES[name](ctx)) for w, name in level] for level in parse(spec)]
    affinity = sum(w * e for e, w in ctx.costs) if ctx.costs else 0
    affinity_upper = sum(w for _, w in ctx.costs)
    total: Any = affinity
    scale = affinity_upper + 1
    for level in reversed(levels):
        expr = sum(w * t.expr for w, t in level)
        upper = sum(w * t.upper for w, t in level)
        total = scale * expr + total
        scale *= upper + 1
    ctx.cp.minimize(total)
