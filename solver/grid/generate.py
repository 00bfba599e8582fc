"""Seeded synthetic grids for the benchmark and tests: topology plus cluster summaries.

Clusters hang off a ring of core routers (some dual-homed), with random bandwidths, latencies
and measured utilisation. Most clusters are moderately loaded, some overloaded, a few nearly idle
and willing to be consolidated; a share of VMs form communicating groups, some split across two
clusters. Usage is exactly the sum of the VMs' demands. Same seed, same grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
from vmgrid.solver.grid.errors import GridInputError
from vmgrid.solver.grid.model import ClusterSummary, GridVm, Resources, VmGroup
from vmgrid.solver.grid.topology import Topology

NODE_CAPACITY = Resources(cpu_millicores=64_000, memory_mib=262_144, network_mbps=25_000)
"""Capacity of one generated compute node."""


@dataclass(frozen=True)
class GeneratedGrid:
    topology: Topology
    summaries: tuple[ClusterSummary, ...]

    @property
    def vm_count(self) -> int:
        return sum(len(s.vms) for s in self.summaries)


@dataclass(frozen=True)
class GridShape:
    """Size and mix of a generated grid."""

    clusters: int = 10
    nodes_per_cluster: int = 10
    vms_per_node: int = 10
    overloaded_fraction: float = 0.1
    idle_fraction: float = 0.05
    grouped_fraction: float = 0.05
    split_groups: int = 0
    """Groups with members in two clusters; defaults to one per ten clusters when 0."""

    def __post_init__(self) -> None:
        for name in ("clusters", "nodes_per_cluster", "vms_per_node"):
            if getattr(self, name) < 1:
                raise GridInputError(f"{name} {getattr(self, name)} must be at least 1")
        if self.clusters < 2:
            raise GridInputError(f"clusters {self.clusters} must be at least 2 for a grid")


def generate_grid(shape: GridShape, seed: int = 0) -> GeneratedGrid:
    rng = np.random.default_rng(seed)
    ids = [f"c{i:03d}" for i in range(shape.clusters)]
    topology = _topology(ids, rng)
    kinds = rng.permutation(
        ["over"] * round(shape.clusters * shape.overloaded_fraction)
        + ["idle"] * round(shape.clusters * shape.idle_fraction)
        + ["normal"] * shape.clusters
    )[: shape.clusters]
    clusters = [_cluster(cid, str(kind), shape, rng) for cid, kind in zip(ids, kinds, strict=True)]
    _split_groups(clusters, shape.split_groups or max(1, shape.clusters // 10), rng)
    summaries = tuple(
        ClusterSummary(
            id=cid,
            capacity=capacity,
            usage=usage,
            vms=tuple(vms),
            groups=tuple(VmGroup(g, tuple(m), t) for g, (m, t) in groups.items()),
            allow_consolidation=allow,
        )
        for cid, capacity, usage, vms, groups, allow in clusters
    )
    return GeneratedGrid(topology, summaries)


def _topology(ids: list[str], rng: np.random.Generator) -> Topology:
    graph = nx.Graph()
    routers = [f"r{i}" for i in range(max(2, math.ceil(len(ids) / 25)))]
    for router in routers:
        graph.add_node(router, kind="router")
    for i, router in enumerate(routers):
        for other in routers[i + 1 :] if len(routers) <= 4 else [routers[(i + 1) % len(routers)]]:
            graph.add_edge(router, other, **_link(rng, 100_000, (2.0, 20.0), 0.5))
    for cid in ids:
        graph.add_node(cid, kind="cluster")
        homes = rng.choice(len(routers), size=2 if rng.random() < 0.3 else 1, replace=False)
        for home in homes:
            bandwidth = int(rng.choice([10_000, 25_000, 40_000]))
            graph.add_edge(cid, routers[int(home)], **_link(rng, bandwidth, (0.5, 5.0), 0.6))
    return Topology.from_graph(graph, ids)


def _link(
    rng: np.random.Generator, bandwidth: int, latency: tuple[float, float], max_util: float
) -> dict[str, object]:
    return {
        "bandwidth_mbps": bandwidth,
        "latency_ms": round(float(rng.uniform(*latency)), 2),
        "utilisation": round(float(rng.uniform(0.0, max_util)), 3),
    }


_Cluster = tuple[str, Resources, Resources, list[GridVm], dict[str, tuple[list[str], int]], bool]


def _cluster(cid: str, kind: str, shape: GridShape, rng: np.random.Generator) -> _Cluster:
    nodes = shape.nodes_per_cluster
    capacity = Resources(*(c * nodes for c in NODE_CAPACITY.as_tuple()))
    if kind == "idle":
        load = rng.uniform(0.05, 0.2, 3)
    else:
        load = rng.uniform(0.35, 0.7, 3)
        if kind == "over":
            hot = rng.random(3) < 0.5
            hot[rng.integers(3)] = True
            load[hot] = rng.uniform(0.88, 0.98, int(hot.sum()))
    count = nodes * shape.vms_per_node
    weights = rng.uniform(0.3, 1.7, (count, 3))
    weights /= weights.mean(axis=0)
    per_vm = np.array(capacity.as_tuple(), dtype=np.float64) * load / count
    demand = np.maximum(1, np.floor(weights * per_vm)).astype(np.int64)
    dirty = rng.integers(0, 200, count)
    vms = [
        GridVm(f"{cid}-vm{j}", Resources(int(d[0]), int(d[1]), int(d[2])), int(dirty[j]))
        for j, d in enumerate(demand.tolist())
    ]
    usage = Resources(*(int(x) for x in demand.sum(axis=0)))
    groups: dict[str, tuple[list[str], int]] = {}
    grouped = int(count * shape.grouped_fraction)
    j = 0
    while j + 2 <= grouped:
        size = int(rng.integers(2, 5))
        members = [vm.id for vm in vms[j : j + size]]
        groups[f"{cid}-g{len(groups)}"] = (members, int(rng.integers(10, 500)))
        j += size
    allow = kind == "idle" or rng.random() < 0.3
    return (cid, capacity, usage, vms, groups, allow)


def _split_groups(clusters: list[_Cluster], count: int, rng: np.random.Generator) -> None:
    """Make ``count`` groups with two members in each of two clusters (from ungrouped VMs)."""
    for k in range(count):
        pair = rng.choice(len(clusters), size=2, replace=False)
        traffic = int(rng.integers(200, 800))
        for index in pair:
            _, _, _, vms, groups, _ = clusters[int(index)]
            taken = {m for members, _ in groups.values() for m in members}
            free = [vm.id for vm in vms[::-1] if vm.id not in taken][:2]
            groups[f"split-{k}"] = (free, traffic)
