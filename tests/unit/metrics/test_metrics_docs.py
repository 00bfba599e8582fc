"""The dashboard and the docs name only metrics the components export."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry
from vmgrid.agents.cluster.link.manager import ClusterManager
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.metrics import ClusterMetrics
from vmgrid.agents.cluster.service.replica import ReplicaOptions
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions

ROOT = Path(__file__).parents[3]
NAME = re.compile(r"vmgrid_[a-z_]+")
SUFFIXES = ("_bucket", "_count", "_sum")


def documented() -> set[str]:
    return set(NAME.findall((ROOT / "docs" / "observability.md").read_text()))


def base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_every_metric_on_the_dashboard_is_documented() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "vmgrid-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {base(name) for expr in exprs for name in NAME.findall(expr)}
    assert used, "the dashboard queries no vmgrid metric"
    assert used - documented() == set()


def test_every_cluster_metric_is_documented() -> None:
    registry = CollectorRegistry()
    ClusterMetrics(ClusterManager(ClusterConfig(insecure=True)), registry)
    names = {s.name for family in registry.collect() for s in family.samples}
    # and those of a whole manager, replicated on etcd (none runs: nothing is called)
    replica = ReplicaOptions(endpoints=("http://127.0.0.1:9",))
    runtime = ClusterRuntime(ClusterConfig(insecure=True), RuntimeOptions(replica=replica))
    whole = ClusterMetrics(runtime.manager)
    whole.attach_runtime(runtime)
    names |= {s.name for family in whole.registry.collect() for s in family.samples}
    runtime.journal.close()
    exported = {base(n) for n in names if not n.endswith("_created")}
    assert exported - documented() == set()
