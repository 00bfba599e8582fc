"""Cluster manager metrics against a fresh registry and a real ClusterManager (no gRPC)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry
from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.executor import ExecutionEvent
from vmgrid.agents.cluster.act.journal import ActionState
from vmgrid.agents.cluster.decide.control import Decision, Trigger, TriggerKind
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.metrics import ClusterMetrics
from vmgrid.agents.cluster.service.runtime import ClusterRuntime
from vmgrid.solver.constraints import Spread
from vmgrid.solver.plan import Action, ActionKind

GIB = 2**30
SamplesOf = Callable[[CollectorRegistry], dict[tuple[str, tuple[tuple[str, str], ...]], float]]


def hello(node_id: str) -> m.NodeHello:
    return m.NodeHello(
        m.NodeIdentity(node_id, f"{node_id}.lab", ""), m.NodeCapacity(8000, 16 * GIB, 10**10)
    )


def vm(uuid: str, state: m.VmState) -> m.VmUsage:
    return m.VmUsage(uuid, f"vm-{uuid}", state, 2, 1500, GIB, GIB)


def report(sequence: int, *vms: m.VmUsage) -> m.NodeReport:
    return m.NodeReport(1, sequence, m.HostUsage(2500, 4 * GIB, 16 * GIB), vms)


def cluster() -> ClusterManager:
    manager = ClusterManager(ClusterConfig(insecure=True))
    return manager


def test_nodes_vms_and_node_load_are_read_from_the_state_at_scrape_time(samples: SamplesOf) -> None:
    manager = cluster()
    metrics = ClusterMetrics(manager)
    n1, n2 = manager.open_session(hello("n1")), manager.open_session(hello("n2"))
    manager.handle_report(n1, report(1, vm("a", m.VmState.RUNNING), vm("b", m.VmState.PAUSED)))
    manager.handle_report(n2, report(1, vm("c", m.VmState.RUNNING)))
    got = samples(metrics.registry)
    assert got[("vmgrid_cluster_nodes", (("status", "connected"),))] == 2
    assert got[("vmgrid_cluster_nodes", (("status", "lost"),))] == 0
    assert got[("vmgrid_cluster_vms", (("state", "running"),))] == 2
    assert got[("vmgrid_cluster_vms", (("state", "paused"),))] == 1
    assert got[("vmgrid_cluster_connected_agents", ())] == 2
    assert got[("vmgrid_cluster_node_cpu_used_cores", (("node", "n1"),))] == 2.5
    assert got[("vmgrid_cluster_node_cpu_capacity_cores", (("node", "n1"),))] == 8
    assert got[("vmgrid_cluster_node_memory_used_bytes", (("node", "n2"),))] == 4 * GIB
    assert got[("vmgrid_cluster_node_vms", (("node", "n1"),))] == 2
    assert got[("vmgrid_cluster_ingest_reports_total", ())] == 2
    assert got[("vmgrid_cluster_ingest_latency_seconds_count", ())] == 2
    manager.close_session(n2)
    assert samples(metrics.registry)[("vmgrid_cluster_connected_agents", ())] == 1


def test_rules_are_counted_as_holding_violated_or_impossible(samples: SamplesOf) -> None:
    manager = cluster()
    metrics = ClusterMetrics(manager)
    n1, n2 = manager.open_session(hello("n1")), manager.open_session(hello("n2"))
    manager.handle_report(n1, report(1, vm("a", m.VmState.RUNNING), vm("b", m.VmState.RUNNING)))
    manager.handle_report(n2, report(1, vm("c", m.VmState.RUNNING)))
    rules = manager.state.rules
    rules.add("ab", Spread(("a", "b")))
    rules.add("ac", Spread(("a", "c")))
    rules.add("bc", Spread(("b", "c")))

    def counts() -> list[float]:
        got = samples(metrics.registry)
        return [
            got[("vmgrid_cluster_rules", (("state", s),))]
            for s in ("holds", "violated", "impossible")
        ]

    assert counts() == [2, 1, 0]
    manager.state.report_impossible("ab", "no node left")
    assert counts() == [2, 0, 1]


def test_decisions_plan_actions_and_migrations_in_flight_are_counted(samples: SamplesOf) -> None:
    runtime = ClusterRuntime(ClusterConfig(insecure=True, listen="127.0.0.1:0"))
    metrics = ClusterMetrics(runtime.manager)
    metrics.attach_runtime(runtime)
    trigger = Trigger(TriggerKind.OVERLOAD, ("n1",), "n1 above 85 %")
    for listener in runtime.loop.decision_listeners:
        listener(Decision(trigger, None, "no plan"), 0.2)
    move = Action(1, ActionKind.MIGRATE, "a", "n1", "n2", 0, 4, "relieve n1")
    runtime.executor.add_listener(lambda event: None)  # other listeners keep working
    emit = runtime.executor._on_event
    emit(ExecutionEvent("p1", move, ActionState.RUNNING))
    assert samples(metrics.registry)[("vmgrid_cluster_migrations_in_flight", ())] == 1
    emit(ExecutionEvent("p1", move, ActionState.SUCCEEDED, simulated=True))
    got = samples(metrics.registry)
    assert got[("vmgrid_cluster_migrations_in_flight", ())] == 0
    key = (("outcome", "succeeded"), ("type", "migrate"))
    assert got[("vmgrid_cluster_plan_actions_total", key)] == 1
    decided = (("outcome", "no_plan"), ("trigger", "overload"))
    assert got[("vmgrid_cluster_decisions_total", decided)] == 1
    assert got[("vmgrid_cluster_solve_duration_seconds_count", ())] == 1
    assert got[("vmgrid_cluster_pending_approvals", ())] == 0
    assert got[("vmgrid_cluster_leading", ())] == 1  # a single replica always may act
    assert got[("vmgrid_cluster_leader_term", ())] == 0
    runtime.journal.close()


def test_promtool_finds_nothing_in_the_cluster_exposition(
    promtool_problems: Callable[[CollectorRegistry], str],
) -> None:
    manager = cluster()
    metrics = ClusterMetrics(manager)
    session = manager.open_session(hello("n1"))
    manager.handle_report(session, report(1, vm("a", m.VmState.RUNNING)))
    assert promtool_problems(metrics.registry) == ""


def test_ingest_latency_histogram_is_read_from_the_recorder_at_scrape_time(
    samples: SamplesOf,
) -> None:
    manager = cluster()
    metrics = ClusterMetrics(manager)
    for latency_ms in (0.2, 0.7, 3.0, 40.0, 9000.0):
        manager.ingest.record(latency_ms, 20)
    manager.ingest.read(reset=True)  # the benchmark's window reset leaves the totals alone
    got = samples(metrics.registry)
    bucket = "vmgrid_cluster_ingest_latency_seconds_bucket"
    assert got[(bucket, (("le", "0.0005"),))] == 1
    assert got[(bucket, (("le", "0.001"),))] == 2
    assert got[(bucket, (("le", "0.005"),))] == 3
    assert got[(bucket, (("le", "0.05"),))] == 4
    assert got[(bucket, (("le", "5.0"),))] == 4
    assert got[(bucket, (("le", "+Inf"),))] == 5
    assert got[("vmgrid_cluster_ingest_latency_seconds_sum", ())] == pytest.approx(9.0439)
    assert got[("vmgrid_cluster_ingest_reports_total", ())] == 5
