"""The demo's Prometheus endpoints: one /metrics per component, each on a free loopback port.

The coordinator and the cluster managers run in the demo's process, so their endpoints are
served here; the agents are processes that serve their own (``SimCluster.start(metrics=True)``)
and report the URL through ``--metrics-url-file``. ``urls`` is what the state file lists.
"""

from __future__ import annotations

from vmgrid.agents.cluster.service.metrics import ClusterMetrics
from vmgrid.agents.cluster.service.runtime import ClusterRuntime
from vmgrid.agents.metrics_http import MetricsEndpoint
from vmgrid.coordinator.metrics import CoordinatorMetrics
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.demo.simcluster import SimCluster

LOOPBACK_ANY_PORT = "127.0.0.1:0"


class DemoMetrics:
    """Collects the demo's metrics endpoints; ``stop()`` closes the in-process ones."""

    def __init__(self) -> None:
        self._endpoints: list[MetricsEndpoint] = []
        self.urls: list[str] = []

    def add_coordinator(self, server: CoordinatorServer) -> None:
        metrics = CoordinatorMetrics(server.coordinator)
        self._serve(MetricsEndpoint(metrics.registry, LOOPBACK_ANY_PORT, "vmgrid-coordinator"))

    def add_cluster(self, runtime: ClusterRuntime) -> None:
        metrics = ClusterMetrics(runtime.manager)
        metrics.attach_runtime(runtime)
        self._serve(MetricsEndpoint(metrics.registry, LOOPBACK_ANY_PORT, "vmgrid-cluster"))

    async def add_agents(self, cluster: SimCluster) -> None:
        """The URLs of a SimCluster started with ``metrics=True`` (waits for its agents)."""
        self.urls.extend(await cluster.metrics_urls())

    def _serve(self, endpoint: MetricsEndpoint) -> None:
        self._endpoints.append(endpoint)
        self.urls.append(endpoint.url)

    def stop(self) -> None:
        for endpoint in self._endpoints:
            endpoint.stop()
        self._endpoints.clear()
