"""What the alert rules compare and count, as the cluster manager exports it: the operator
policy's band (read at scrape time, so a SetPolicy shows at the next scrape), the plan
journal's SQLite errors and the replica's etcd errors (counted where they happen)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.metrics import ETCD_ERRORS, ClusterMetrics
from vmgrid.agents.cluster.service.replica import ReplicaOptions
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.common.etcd import EtcdUnavailable
from vmgrid.solver.plan import Action, ActionKind

SamplesOf = Callable[[CollectorRegistry], dict[tuple[str, tuple[tuple[str, str], ...]], float]]
BAND = "vmgrid_cluster_policy_band_ratio"


def runtime_metrics(options: RuntimeOptions | None = None) -> tuple[ClusterRuntime, ClusterMetrics]:
    runtime = ClusterRuntime(ClusterConfig(insecure=True, listen="127.0.0.1:0"), options)
    metrics = ClusterMetrics(runtime.manager)
    metrics.attach_runtime(runtime)
    return runtime, metrics


def band(got: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {
        f"{dict(labels)['resource']}_{dict(labels)['edge']}": value
        for (name, labels), value in got.items()
        if name == BAND
    }


def test_the_band_follows_the_operator_policy_at_each_scrape(samples: SamplesOf) -> None:
    runtime, metrics = runtime_metrics()
    policy = runtime.loop.config.operator_policy
    assert band(samples(metrics.registry)) == {
        "cpu_low": policy.cpu_low,
        "cpu_high": policy.cpu_high,
        "memory_low": policy.memory_low,
        "memory_high": policy.memory_high,
    }
    runtime.loop.set_operator_policy(replace(policy, cpu_high=0.65, memory_high=0.7))
    got = band(samples(metrics.registry))
    assert (got["cpu_high"], got["memory_high"]) == (0.65, 0.7)
    assert got["cpu_low"] == policy.cpu_low
    runtime.journal.close()


def test_a_failed_journal_statement_is_counted_and_raised_unchanged(samples: SamplesOf) -> None:
    runtime, metrics = runtime_metrics()
    assert samples(metrics.registry)[("vmgrid_cluster_journal_errors_total", ())] == 0
    move = Action(0, ActionKind.MIGRATE, "vm-a", "n1", "n2", 0, 5, "relieve n1")
    runtime.journal.record_plan("p1", [move])
    with pytest.raises(sqlite3.IntegrityError):
        runtime.journal.record_plan("p1", [move])  # the plan id is taken
    assert runtime.journal.plan("p1") is not None  # the first write stands
    assert samples(metrics.registry)[("vmgrid_cluster_journal_errors_total", ())] == 1
    runtime.journal.close()


def test_etcd_errors_are_exported_from_zero_and_count_each_failed_call(
    samples: SamplesOf,
) -> None:
    single, metrics = runtime_metrics()
    assert not any(name.startswith("vmgrid_cluster_etcd") for name, _ in samples(metrics.registry))
    single.journal.close()
    dead = ReplicaOptions(endpoints=("http://127.0.0.1:9",), request_timeout_s=0.5)
    runtime, metrics = runtime_metrics(RuntimeOptions(replica=dead))
    errors = {
        dict(labels)["error"]: value
        for (name, labels), value in samples(metrics.registry).items()
        if name == "vmgrid_cluster_etcd_errors_total"
    }
    assert errors == dict.fromkeys(ETCD_ERRORS, 0)
    assert runtime.replica is not None
    client = runtime.replica.client

    async def fail() -> None:
        with pytest.raises(EtcdUnavailable):
            await client.get("/x")
        await client.close()

    asyncio.run(fail())
    got = samples(metrics.registry)
    assert got[("vmgrid_cluster_etcd_errors_total", (("error", "unavailable"),))] == 1
    assert got[("vmgrid_cluster_etcd_errors_total", (("error", "fenced"),))] == 0
    runtime.journal.close()
