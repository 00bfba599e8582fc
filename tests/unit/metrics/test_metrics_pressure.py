"""Node pressure (PSI) gauges, against a fresh registry and a real ClusterManager."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry
from vmgrid.agents import model as m
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.metrics import ClusterMetrics

GIB = 2**30
HOT = m.Pressure(cpu=m.PressureStall(62.5, 3.0, 9_000_000, 400_000), io=m.PressureStall(1.5))

SamplesOf = Callable[[CollectorRegistry], dict[tuple[str, tuple[tuple[str, str], ...]], float]]


def test_prometheus_shows_node_pressure_only_where_reported(samples: SamplesOf) -> None:
    manager = ClusterManager(ClusterConfig(insecure=True))
    metrics = ClusterMetrics(manager)
    for node, pressure in (("n1", HOT), ("n2", m.NO_PRESSURE)):
        hello = m.NodeHello(m.NodeIdentity(node, node, ""), m.NodeCapacity(8000, 16 * GIB, 10**10))
        session = manager.open_session(hello)
        manager.handle_report(
            session, m.NodeReport(1, 1, m.HostUsage(2500, GIB, 16 * GIB, pressure=pressure))
        )
    got = samples(metrics.registry)
    avg10 = "vmgrid_cluster_node_pressure_avg10_percent"
    assert got[(avg10, (("line", "some"), ("node", "n1"), ("resource", "cpu")))] == 62.5
    assert got[(avg10, (("line", "full"), ("node", "n1"), ("resource", "io")))] == 0.0
    assert not any(key[0] == avg10 and ("node", "n2") in key[1] for key in got)
    assert got[("vmgrid_cluster_node_pressure_available", (("node", "n1"),))] == 1
    assert got[("vmgrid_cluster_node_pressure_available", (("node", "n2"),))] == 0
