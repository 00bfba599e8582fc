"""The planner's working copy of the grid: per-cluster load in numpy, groups, movable units.

Built once per plan from immutable summaries; phases mutate it as they decide moves. A cluster
never receives after it has shed in decision order, so whatever order the moves execute in, no
cluster passes the target ratio: receivers only grow towards a checked total, senders only shrink.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from vmgrid.solver.grid.config import PlannerConfig
from vmgrid.solver.grid.errors import GridInputError
from vmgrid.solver.grid.migration import MBIT_PER_MIB
from vmgrid.solver.grid.model import ClusterSummary, GridVm, Health, MoveKind
from vmgrid.solver.grid.paths import PathFinder, latency_matrix
from vmgrid.solver.grid.topology import NodeKind, Topology

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Unit:
    """VMs that move together: one ungrouped VM, or a group's members in one cluster."""

    cluster: int
    vms: tuple[GridVm, ...]
    group_id: str | None
    demand: FloatArray
    memory_mib: int
    dirty_rate_mbps: int

    @classmethod
    def of(cls, cluster: int, vms: Sequence[GridVm], group_id: str | None = None) -> Unit:
        demand = np.array([vm.demand.as_tuple() for vm in vms], dtype=np.float64).sum(axis=0)
        memory = sum(vm.demand.memory_mib for vm in vms)
        dirty = max(vm.dirty_rate_mbps for vm in vms)
        return cls(cluster, tuple(vms), group_id, demand, memory, dirty)


@dataclass
class Group:
    """A communicating group across the grid: its traffic and its members per cluster."""

    id: str
    traffic_mbps: int
    parts: dict[int, list[GridVm]] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """A unit the planner decided to move, before routing and scheduling."""

    unit: Unit
    src: int
    dst: int
    kind: MoveKind
    reason: str


class GridState:
    """Load, capacity, groups and decisions of one planning run."""

    def __init__(
        self, topology: Topology, summaries: Sequence[ClusterSummary], config: PlannerConfig
    ) -> None:
        self.config = config
        self.summaries = list(summaries)
        self.ids = [s.id for s in self.summaries]
        self.index = _index_clusters(topology, self.ids)
        self.capacity = np.array([s.capacity.as_tuple() for s in summaries], dtype=np.float64)
        self.usage = np.array([s.usage.as_tuple() for s in summaries], dtype=np.float64)
        self.receiver: BoolArray = np.array([s.health is Health.HEALTHY for s in summaries])
        self.shed: BoolArray = np.zeros(len(self.ids), dtype=bool)
        self.touched: BoolArray = np.zeros(len(self.ids), dtype=bool)
        self.paths = PathFinder(topology)
        self.latency = latency_matrix(topology, self.ids)
        self.groups = _merge_groups(self.summaries)
        self.group_of = {
            vm.id: g.id for g in self.groups.values() for p in g.parts.values() for vm in p
        }
        self.moved: set[str] = set()
        self.decisions: list[Decision] = []
        self.notes: list[str] = []
        self._widths: dict[int, FloatArray] = {}

    def ratios(self) -> FloatArray:
        """Usage over capacity per cluster and resource."""
        return self.usage / self.capacity

    def widths(self, src: int) -> FloatArray:
        row = self._widths.get(src)
        if row is None:
            row = self.paths.width_row(self.ids[src], self.ids).astype(np.float64)
            self._widths[src] = row
        return row

    def units(self, cluster: int) -> list[Unit]:
        """What ``cluster`` can give away now: whole local group parts and single VMs."""
        units = []
        for group in self.groups.values():
            part = group.parts.get(cluster)
            if part:
                units.append(Unit.of(cluster, part, group.id))
        singles = [
            vm
            for vm in self.summaries[cluster].vms
            if vm.id not in self.group_of and vm.id not in self.moved
        ]
        demand = np.array([vm.demand.as_tuple() for vm in singles], dtype=np.float64)
        for row, vm in zip(demand.reshape(-1, 3), singles, strict=True):
            units.append(Unit(cluster, (vm,), None, row, vm.demand.memory_mib, vm.dirty_rate_mbps))
        return units

    def note(self, text: str) -> None:
        if len(self.notes) < self.config.max_notes:
            self.notes.append(text)

    def destination_scores(self, unit: Unit, usage: FloatArray, allowed: BoolArray) -> FloatArray:
        """Seconds-equivalent cost of sending ``unit`` to each cluster (inf where impossible)."""
        cfg = self.config
        src = unit.cluster
        width = self.widths(src)
        limit = cfg.target_ratio * self.capacity
        fits = (usage + unit.demand <= limit + 1e-9).all(axis=1)
        ok = fits & allowed & self.receiver & ~self.shed & (width >= cfg.min_path_mbps)
        ok[src] = False
        scores = np.full(len(self.ids), np.inf)
        if not ok.any():
            return scores
        rate = np.minimum(width[ok], cfg.max_migration_mbps)
        ratio = np.minimum(unit.dirty_rate_mbps / rate, cfg.dirty_ratio_cap)
        scores[ok] = unit.memory_mib * MBIT_PER_MIB / rate / (1.0 - ratio)
        if unit.group_id is not None:
            scores[ok] += cfg.affinity_seconds_per_mbps_ms * self.split_delta(unit)[ok]
        return scores

    def split_cost(self, group: Group) -> float:
        """Traffic x latency of a group's pairs that sit in different clusters (Mbit/s x ms)."""
        counts = self._counts(group)
        n = counts.sum()
        if n < 2:
            return 0.0
        pairs = n * (n - 1) / 2
        return float(group.traffic_mbps * (counts @ self.latency @ counts) / 2 / pairs)

    def split_delta(self, unit: Unit) -> FloatArray:
        """Change of the group's split cost if ``unit`` (a whole part) moved to each cluster."""
        group = self.groups[unit.group_id or ""]
        counts = self._counts(group)
        n = counts.sum()
        if n < 2:
            return np.zeros(len(self.ids))
        counts[unit.cluster] -= len(unit.vms)
        reach = self.latency @ counts
        k = len(unit.vms)
        return group.traffic_mbps / (n * (n - 1) / 2) * k * (reach - reach[unit.cluster])

    def _counts(self, group: Group) -> FloatArray:
        counts = np.zeros(len(self.ids))
        for cluster, vms in group.parts.items():
            counts[cluster] = len(vms)
        return counts

    def apply(self, unit: Unit, dst: int, kind: MoveKind, reason: str) -> None:
        demand = unit.demand
        self.usage[unit.cluster] -= demand
        self.usage[dst] += demand
        self.shed[unit.cluster] = True
        self.touched[unit.cluster] = self.touched[dst] = True
        if unit.group_id is not None:
            parts = self.groups[unit.group_id].parts
            parts.pop(unit.cluster, None)
            parts.setdefault(dst, []).extend(unit.vms)
        for vm in unit.vms:
            self.moved.add(vm.id)
        self.decisions.append(Decision(unit, unit.cluster, dst, kind, reason))


def _index_clusters(topology: Topology, ids: Sequence[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, cluster_id in enumerate(ids):
        if cluster_id in index:
            raise GridInputError(f"cluster {cluster_id!r} has two summaries; expected one each")
        graph = topology.graph
        if cluster_id not in graph or graph.nodes[cluster_id].get("kind") != NodeKind.CLUSTER.value:
            raise GridInputError(
                f"cluster summary {cluster_id!r} has no node of kind 'cluster' in the topology"
            )
        index[cluster_id] = i
    return index


def _merge_groups(summaries: Sequence[ClusterSummary]) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    placed: dict[str, str] = {}
    for i, summary in enumerate(summaries):
        if not summary.groups:
            continue
        vms = {vm.id: vm for vm in summary.vms}
        for reported in summary.groups:
            group = groups.setdefault(reported.id, Group(reported.id, reported.traffic_mbps))
            group.traffic_mbps = max(group.traffic_mbps, reported.traffic_mbps)
            for vm_id in reported.vm_ids:
                vm = vms.get(vm_id)
                if vm is None:
                    raise GridInputError(
                        f"group {reported.id!r} in cluster {summary.id!r}: VM {vm_id!r} is not "
                        "among the cluster's movable VMs"
                    )
                if vm_id in placed:
                    raise GridInputError(
                        f"VM {vm_id!r} is in groups {placed[vm_id]!r} and {reported.id!r}; "
                        "a VM belongs to at most one group"
                    )
                placed[vm_id] = reported.id
                group.parts.setdefault(i, []).append(vm)
    return groups
