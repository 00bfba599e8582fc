"""Coordinator metrics against a fresh registry and a real Coordinator (SQLite in memory)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry
from vmgrid.agents import grid_model as m
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.metrics import CoordinatorMetrics
from vmgrid.coordinator.registry import Registry
from vmgrid.coordinator.service import Coordinator
from vmgrid.solver.grid import load_topology

TOPOLOGY = Path(__file__).parents[2] / "data" / "coordinator" / "topology-three.graphml"
GIB = 2**30
CAPACITY = m.Capacity(10_000, 32 * GIB, 10**10)
SamplesOf = Callable[[CollectorRegistry], dict[tuple[str, tuple[tuple[str, str], ...]], float]]


def coordinator() -> Coordinator:
    config = CoordinatorConfig(insecure=True, state_db=":memory:", topology_file=str(TOPOLOGY))
    return Coordinator(config.validate(), Registry(":memory:"), load_topology(str(TOPOLOGY)))


def summary(sequence: int, cpu_used: int, talks_to: str = "") -> m.ClusterSummary:
    traffic = ()
    if talks_to:  # 100 Mbit/s between a VM here and one in the other cluster
        traffic = (m.InterClusterTraffic("vm-a", "vm-b", talks_to, 12_500_000),)
    movable = (m.VmDemand("vm-a", "a", "n1", 1000, GIB, 10**7),)
    usage = m.Capacity(cpu_used, 8 * GIB, 10**9)
    return m.ClusterSummary(sequence, 1, CAPACITY, usage, movable, traffic)


def test_clusters_load_links_and_summaries_are_exported(samples: SamplesOf) -> None:
    grid = coordinator()
    metrics = CoordinatorMetrics(grid)
    c1 = grid.open_session(m.ClusterHello("c1", CAPACITY, node_count=2))
    grid.open_session(m.ClusterHello("c2", CAPACITY, node_count=2))
    grid.handle_summary(c1, summary(1, 4000, talks_to="c2"))
    grid.handle_summary(c1, summary(2, 5000, talks_to="c2"))
    got = samples(metrics.registry)
    assert got[("vmgrid_grid_clusters", (("state", "connected"),))] == 2
    assert got[("vmgrid_grid_clusters", (("state", "lost"),))] == 0
    assert got[("vmgrid_grid_connected_clusters", ())] == 2
    assert got[("vmgrid_grid_summaries_received_total", (("cluster", "c1"),))] == 2
    assert got[("vmgrid_grid_cluster_cpu_used_cores", (("cluster", "c1"),))] == 5
    assert got[("vmgrid_grid_cluster_memory_capacity_bytes", (("cluster", "c1"),))] == 32 * GIB
    links = {k[1]: v for k, v in got.items() if k[0] == "vmgrid_grid_link_utilisation_ratio"}
    assert len(links) == 3
    assert any(value > 0 for value in links.values()), links  # c1 <-> c2 traffic shows
    assert all(0 <= value <= 1 for value in links.values())


def test_planned_moves_are_counted_by_route(samples: SamplesOf) -> None:
    grid = coordinator()
    metrics = CoordinatorMetrics(grid)
    for cluster_id, cpu in (("c1", 9900), ("c2", 1000), ("c3", 1000)):
        session = grid.open_session(m.ClusterHello(cluster_id, CAPACITY, node_count=2))
        grid.handle_summary(session, summary(1, cpu))
    dry_run = asyncio.run(grid.plan())
    got = samples(metrics.registry)
    assert got[("vmgrid_grid_plans_total", ())] == 1
    moved = sum(v for k, v in got.items() if k[0] == "vmgrid_grid_moves_planned_total")
    assert moved == len(dry_run.plan.moves)


def test_promtool_finds_nothing_in_the_coordinator_exposition(
    promtool_problems: Callable[[CollectorRegistry], str],
) -> None:
    grid = coordinator()
    metrics = CoordinatorMetrics(grid)
    session = grid.open_session(m.ClusterHello("c1", CAPACITY, node_count=2))
    grid.handle_summary(session, summary(1, 4000, talks_to="c2"))
    assert promtool_problems(metrics.registry) == ""
