"""Small builders for grid tests: topologies, VMs and cluster summaries in one line each."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import networkx as nx
from vmgrid.solver.grid import ClusterSummary, GridVm, Health, Resources, Topology, VmGroup


def star(
    clusters: Sequence[str],
    bandwidth_mbps: int = 10_000,
    latency_ms: float = 1.0,
    links: dict[str, tuple[int, float]] | None = None,
) -> Topology:
    """Clusters around one router; ``links`` overrides (bandwidth, latency) per cluster."""
    graph = nx.Graph()
    graph.add_node("core", kind="router")
    for name in clusters:
        graph.add_node(name, kind="cluster")
        bw, lat = (links or {}).get(name, (bandwidth_mbps, latency_ms))
        graph.add_edge(name, "core", bandwidth_mbps=bw, latency_ms=lat, utilisation=0.0)
    return Topology.from_graph(graph, clusters)


def vm(name: str, cpu: int = 1000, memory: int = 1024, network: int = 10, dirty: int = 0) -> GridVm:
    return GridVm(name, Resources(cpu, memory, network), dirty)


def cluster(
    name: str,
    vms: Iterable[GridVm] = (),
    capacity: tuple[int, int, int] = (10_000, 10_240, 1_000),
    groups: Iterable[VmGroup] = (),
    extra_usage: tuple[int, int, int] = (0, 0, 0),
    health: Health = Health.HEALTHY,
    allow_consolidation: bool = False,
) -> ClusterSummary:
    """A cluster whose usage is its VMs' demand plus ``extra_usage`` (pinned load)."""
    members = tuple(vms)
    usage = [sum(v.demand.as_tuple()[i] for v in members) + extra_usage[i] for i in range(3)]
    return ClusterSummary(
        id=name,
        capacity=Resources(*capacity),
        usage=Resources(*usage),
        vms=members,
        groups=tuple(groups),
        health=health,
        allow_consolidation=allow_consolidation,
    )
