"""Prometheus metrics of the grid coordinator: clusters, their load, links and planned moves.

Cluster states, per-cluster capacity and usage (from the latest summaries) and link utilisation
(the topology with measured inter-cluster traffic) are read from the registry when Prometheus
scrapes. Summaries received and planned inter-cluster moves are counted as they happen. The
coordinator only plans moves (dry runs) today, so moves are counted as planned, by route.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from vmgrid.agents import grid_model as m
from vmgrid.agents.errors import VmgridError
from vmgrid.coordinator.service import Coordinator, DryRun
from vmgrid.solver.grid import GridError

log = logging.getLogger(__name__)
MBIT = 1_000_000


class CoordinatorCollector(Collector):
    """Reads one Coordinator at scrape time."""

    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    def collect(self) -> Iterator[Metric]:
        records = self._coordinator.registry.records()
        clusters = GaugeMetricFamily("vmgrid_grid_clusters", "Clusters by state.", labels=["state"])
        states = Tally(r.state.value for r in records)
        for state in m.ClusterState:
            clusters.add_metric([state.value], states[state.value])
        yield clusters
        connected = GaugeMetricFamily(
            "vmgrid_grid_connected_clusters",
            "Clusters with an open link to the coordinator.",
            value=len(self._coordinator.sessions),
        )
        yield connected
        yield from _cluster_load(records)
        yield from self._links()

    def _links(self) -> Iterator[Metric]:
        if self._coordinator.topology is None:
            return
        try:
            topology = self._coordinator.current_topology()
        except (GridError, VmgridError) as exc:  # a bad summary must not break the scrape
            log.warning("link utilisation not exported: %s", exc)
            return
        labels = ["a", "b"]
        utilisation = GaugeMetricFamily(
            "vmgrid_grid_link_utilisation_ratio",
            "Fraction of each link's bandwidth used by measured inter-cluster traffic.",
            labels=labels,
        )
        bandwidth = GaugeMetricFamily(
            "vmgrid_grid_link_bandwidth_bytes_per_second", "Bandwidth of each link.", labels=labels
        )
        for a, b in topology.links():
            data = topology.graph.edges[a, b]
            utilisation.add_metric([a, b], float(data.get("utilisation", 0.0)))
            bandwidth.add_metric([a, b], data["bandwidth_mbps"] * MBIT // 8)
        yield utilisation
        yield bandwidth


def _cluster_load(records: list[m.ClusterRecord]) -> Iterator[Metric]:
    specs = (
        ("vmgrid_grid_cluster_cpu_used_cores", "CPU in use in the cluster, in cores."),
        ("vmgrid_grid_cluster_cpu_capacity_cores", "CPU of the cluster, in cores."),
        ("vmgrid_grid_cluster_memory_used_bytes", "Memory in use in the cluster."),
        ("vmgrid_grid_cluster_memory_capacity_bytes", "Memory of the cluster."),
        ("vmgrid_grid_cluster_nodes", "Nodes of the cluster."),
    )
    families = [GaugeMetricFamily(name, doc, labels=["cluster"]) for name, doc in specs]
    for record in records:
        summary = record.summary
        if summary is None:
            continue
        values = (
            summary.usage.cpu_millicores / 1000,
            summary.capacity.cpu_millicores / 1000,
            summary.usage.memory_bytes,
            summary.capacity.memory_bytes,
            summary.health.nodes_total,
        )
        for family, value in zip(families, values, strict=True):
            family.add_metric([record.cluster_id], value)
    yield from families


class CoordinatorMetrics:
    """The coordinator's registry: the scrape-time collector plus summary and move counters."""

    def __init__(self, coordinator: Coordinator, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(CoordinatorCollector(coordinator))
        self.summaries = Counter(
            "vmgrid_grid_summaries_received",
            "Cluster summaries stored, by cluster.",
            ["cluster"],
            registry=self.registry,
        )
        self.plans = Counter(
            "vmgrid_grid_plans", "Inter-cluster plans computed.", registry=self.registry
        )
        self.moves = Counter(
            "vmgrid_grid_moves_planned",
            "Inter-cluster VM moves in computed plans, by source and destination cluster.",
            ["src", "dst"],
            registry=self.registry,
        )
        coordinator.summary_listeners.append(self._summary)
        coordinator.plan_listeners.append(self._plan)

    def _summary(self, cluster_id: str, summary: m.ClusterSummary) -> None:
        self.summaries.labels(cluster_id).inc()

    def _plan(self, dry_run: DryRun) -> None:
        self.plans.inc()
        for move in dry_run.plan.moves:
            self.moves.labels(move.src, move.dst).inc()
