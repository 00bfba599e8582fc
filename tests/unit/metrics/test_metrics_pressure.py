"""Node pressure (PSI) gauges, against a fresh registry and a real ClusterManager."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from vmgrid.agents import model as m
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.metrics import ClusterMetrics
from vmgrid.agents.node.metrics import pressure_metrics

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


def test_the_agent_exports_host_and_domain_pressure_it_reads(samples: SamplesOf) -> None:
    vm = m.VmUsage("u1", "web-1", m.VmState.RUNNING, 1, 500, GIB, GIB)
    report = m.NodeReport(
        1, 1, m.HostUsage(500, GIB, 4 * GIB, pressure=HOT), (vm,), (m.VmPressure("u1", HOT),)
    )

    class One(Collector):
        def collect(self) -> Iterator[Metric]:
            yield from pressure_metrics("n1", report)

    registry = CollectorRegistry()
    registry.register(One())
    got = samples(registry)
    assert (
        got[
            (
                "vmgrid_node_pressure_avg10_percent",
                (("line", "some"), ("node", "n1"), ("resource", "cpu")),
            )
        ]
        == 62.5
    )
    domain = (("domain", "web-1"), ("line", "full"), ("resource", "cpu"), ("uuid", "u1"))
    assert got[("vmgrid_domain_pressure_avg10_percent", domain)] == 3.0
    assert not any("memory" in dict(labels).values() for _, labels in got)  # unavailable


def test_a_test_driver_agent_exports_no_pressure_series(samples: SamplesOf) -> None:
    report = m.NodeReport(1, 1, m.HostUsage(500, GIB, 4 * GIB))

    class One(Collector):
        def collect(self) -> Iterator[Metric]:
            yield from pressure_metrics("n1", report)

    registry = CollectorRegistry()
    registry.register(One())
    assert not any("pressure" in name for name, _ in samples(registry))
