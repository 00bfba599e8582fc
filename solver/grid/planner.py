"""The inter-cluster planner: relieve overloads, gather chatty groups, consolidate, then schedule.

Phases run in that order on one ``GridState``; each decides whole units (a VM, or a group's
members in one cluster) so groups are never split by the planner. Decisions are then routed
(widest path, latency tie-break), timed (memory / rate with the dirty allowance) and scheduled so
that no link ever carries more than its free bandwidth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from vmgrid.solver.grid.config import PlannerConfig
from vmgrid.solver.grid.migration import MBIT_PER_MIB, migration_seconds
from vmgrid.solver.grid.model import (
    RESOURCE_NAMES,
    ClusterSummary,
    GridMove,
    GridPlan,
    Health,
    MoveKind,
    PlanStats,
)
from vmgrid.solver.grid.schedule import Booking, LinkScheduler, path_links
from vmgrid.solver.grid.state import GridState, Unit
from vmgrid.solver.grid.topology import Topology


def plan_grid(
    topology: Topology,
    summaries: Sequence[ClusterSummary],
    config: PlannerConfig | None = None,
) -> GridPlan:
    """Decide, route and schedule inter-cluster moves for one snapshot of the grid."""
    cfg = config or PlannerConfig()
    if not summaries:
        return GridPlan((), PlanStats(notes=("no cluster summaries",)))
    state = GridState(topology, summaries, cfg)
    overloaded, relieved, considered, unplaced = _relieve(state)
    gathered = _gather_groups(state)
    consolidated = _consolidate(state) if cfg.consolidation else 0
    moves = _schedule(state, topology)
    stats = PlanStats(
        clusters=len(state.ids),
        overloaded=overloaded,
        relieved=relieved,
        unrelieved=overloaded - relieved,
        groups_gathered=gathered,
        consolidated=consolidated,
        units_considered=considered,
        units_unplaced=unplaced,
        makespan_s=max((m.end_s for m in moves), default=0.0),
        notes=tuple(state.notes),
    )
    return GridPlan(tuple(moves), stats)


def _relieve(state: GridState) -> tuple[int, int, int, int]:
    """Shed the cheapest units of each overloaded cluster, most overloaded first."""
    cfg = state.config
    peak = state.ratios().max(axis=1)
    reachable = np.array([s.health is not Health.UNREACHABLE for s in state.summaries])
    sources = [int(i) for i in np.argsort(-peak) if peak[i] > cfg.overload_ratio]
    considered = unplaced = relieved = 0
    everyone = np.ones(len(state.ids), dtype=bool)
    for src in sources:
        if not reachable[src]:
            state.note(f"{state.ids[src]} is overloaded but unreachable: not relieved")
            continue
        worst = int(np.argmax(state.ratios()[src]))
        label = f"{state.ids[src]} {RESOURCE_NAMES[worst]} at {peak[src]:.0%}"
        units = _by_relief_cost(state, src)
        considered += len(units)
        limit = cfg.target_ratio * state.capacity[src]
        for unit in units:
            excess = state.usage[src] - limit
            if (excess <= 1e-9).all():
                break
            if not (unit.demand[excess > 0] > 0).any():
                continue
            scores = state.destination_scores(unit, state.usage, everyone)
            dst = int(np.argmin(scores))
            if not np.isfinite(scores[dst]):
                unplaced += 1
                state.note(f"no cluster has room for {_unit_name(unit)} from {state.ids[src]}")
                continue
            reason = (
                f"overload relief: {label} > {cfg.overload_ratio:.0%}; "
                f"{state.ids[dst]} has headroom"
            )
            state.apply(unit, dst, MoveKind.RELIEF, reason)
        if state.ratios()[src].max() <= cfg.overload_ratio + 1e-9:
            relieved += 1
        else:
            state.note(f"{state.ids[src]} still above {cfg.overload_ratio:.0%} after relief")
    return len(sources), relieved, considered, unplaced


def _by_relief_cost(state: GridState, src: int) -> list[Unit]:
    """Units sorted by migration cost per unit of relief on the over-target resources."""
    cfg = state.config
    units = state.units(src)
    if not units:
        return []
    excess = np.maximum(state.usage[src] - cfg.target_ratio * state.capacity[src], 0.0)
    demand = np.array([u.demand for u in units])
    relief = (np.minimum(demand, excess) / state.capacity[src]).sum(axis=1)
    memory = np.array([u.memory_mib for u in units], dtype=np.float64)
    dirty = np.array([u.dirty_rate_mbps for u in units], dtype=np.float64)
    ratio = np.minimum(dirty / cfg.max_migration_mbps, cfg.dirty_ratio_cap)
    seconds = memory * MBIT_PER_MIB / cfg.max_migration_mbps / (1.0 - ratio)
    with np.errstate(divide="ignore"):
        cost = np.where(relief > 0, seconds / relief, np.inf)
    return [units[i] for i in np.argsort(cost, kind="stable") if np.isfinite(cost[i])]


def _gather_groups(state: GridState) -> int:
    """Bring each split heavy group into the member cluster that has room, biggest part first."""
    cfg = state.config
    gathered = 0
    for group in sorted(state.groups.values(), key=lambda g: -g.traffic_mbps):
        if group.traffic_mbps < cfg.heavy_traffic_mbps or len(group.parts) < 2:
            continue
        cost = state.split_cost(group)
        hosts = sorted(group.parts, key=lambda c: (-len(group.parts[c]), state.ids[c]))
        for host in hosts:
            units = [Unit.of(c, vms, group.id) for c, vms in group.parts.items() if c != host]
            if _fits_all(state, units, host):
                reason = (
                    f"affinity: gather group {group.id} ({group.traffic_mbps} Mbit/s, split "
                    f"cost {cost:.0f} Mbit/s*ms) into {state.ids[host]}"
                )
                for unit in units:
                    state.apply(unit, host, MoveKind.AFFINITY, reason)
                gathered += 1
                break
        else:
            state.note(f"group {group.id} stays split: no member cluster has room for it all")
    return gathered


def _fits_all(state: GridState, units: Sequence[Unit], host: int) -> bool:
    cfg = state.config
    if not state.receiver[host] or state.shed[host]:
        return False
    for unit in units:
        if state.summaries[unit.cluster].health is Health.UNREACHABLE:
            return False
        if state.widths(unit.cluster)[host] < cfg.min_path_mbps:
            return False
    total = sum((u.demand for u in units), np.zeros(3))
    return bool((state.usage[host] + total <= cfg.target_ratio * state.capacity[host] + 1e-9).all())


def _consolidate(state: GridState) -> int:
    """Empty the least-loaded clusters that allow it, all of their movable units or none."""
    cfg = state.config
    peak = state.ratios().max(axis=1)
    candidates = [
        int(i)
        for i in np.argsort(peak, kind="stable")
        if peak[i] < cfg.consolidation_ratio
        and state.summaries[i].allow_consolidation
        and state.summaries[i].health is not Health.UNREACHABLE
        and not state.touched[i]
    ]
    allowed = np.ones(len(state.ids), dtype=bool)
    allowed[candidates] = False
    consolidated = 0
    for src in candidates:
        units = state.units(src)
        plan = _place_all(state, units, allowed) if units else None
        if plan is None:
            allowed[src] = True
            if units:
                state.note(f"{state.ids[src]} not consolidated: the others lack room for it")
            continue
        reason = (
            f"consolidation: empty {state.ids[src]} (busiest resource {peak[src]:.0%} "
            f"< {cfg.consolidation_ratio:.0%})"
        )
        for unit, dst in plan:
            state.apply(unit, dst, MoveKind.CONSOLIDATION, reason)
        consolidated += 1
    return consolidated


def _place_all(
    state: GridState, units: Sequence[Unit], allowed: np.ndarray
) -> list[tuple[Unit, int]] | None:
    """A destination for every unit on a scratch copy of the load, or None if one has none."""
    usage = state.usage.copy()
    placed = []
    for unit in sorted(units, key=lambda u: -u.memory_mib):
        scores = state.destination_scores(unit, usage, allowed)
        dst = int(np.argmin(scores))
        if not np.isfinite(scores[dst]):
            return None
        usage[dst] += unit.demand
        placed.append((unit, dst))
    return placed


def _schedule(state: GridState, topology: Topology) -> list[GridMove]:
    """Route, time and book every decided VM move, in decision order."""
    cfg = state.config
    scheduler = LinkScheduler(topology)
    moves = []
    for decision in state.decisions:
        src, dst = state.ids[decision.src], state.ids[decision.dst]
        path, width = state.paths.path(src, dst)
        rate = min(width, cfg.max_migration_mbps)
        links = path_links(path)
        for vm in decision.unit.vms:
            seconds = migration_seconds(
                vm.demand.memory_mib, vm.dirty_rate_mbps, rate, cfg.dirty_ratio_cap
            )
            start = scheduler.book(Booking(links, rate, seconds))
            moves.append(
                GridMove(
                    vm=vm.id,
                    src=src,
                    dst=dst,
                    path=path,
                    bottleneck_mbps=width,
                    rate_mbps=rate,
                    memory_mib=vm.demand.memory_mib,
                    est_seconds=seconds,
                    start_s=start,
                    end_s=start + seconds,
                    kind=decision.kind,
                    reason=decision.reason,
                    group_id=decision.unit.group_id,
                )
            )
    return moves


def _unit_name(unit: Unit) -> str:
    if unit.group_id is not None:
        return f"group {unit.group_id} ({len(unit.vms)} VMs)"
    return f"VM {unit.vms[0].id}"
