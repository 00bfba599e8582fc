"""A real Prometheus server scraping a real agent, cluster manager and coordinator.

Debian's ``prometheus`` runs with deploy/prometheus/prometheus.yml rendered with the real ports
and a 1 s scrape interval; the test asks its HTTP API that every target is up and that series
of each component exist. The agent is a separate process (``--metrics-listen``); the manager
(with its grid uplink) and the coordinator run in the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from vmgrid.agents.cluster.decide.operator_policy import OperatorPolicy
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.metrics import ClusterMetrics
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.metrics_http import MetricsEndpoint
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.metrics import CoordinatorMetrics
from vmgrid.coordinator.server import CoordinatorServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
TOPOLOGY = ROOT / "tests" / "data" / "coordinator" / "topology-three.graphml"
PROMETHEUS = "/usr/bin/prometheus"
DEFAULT_TARGETS = {
    "vmgrid-agent": "127.0.0.1:9710",
    "vmgrid-cluster": "127.0.0.1:9711",
    "vmgrid-coordinator": "127.0.0.1:9712",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_config(targets: dict[str, str], path: Path) -> Path:
    """The deployable config with the real targets and a 1 s scrape interval."""
    text = SCRAPE_CONFIG.read_text()
    for job, default in DEFAULT_TARGETS.items():
        assert default in text, f"{SCRAPE_CONFIG} no longer lists {default} for {job}"
        text = text.replace(default, targets[job])
    text = text.replace("scrape_interval: 15s", "scrape_interval: 1s")
    text = text.replace("evaluation_interval: 15s", "evaluation_interval: 1s")
    path.write_text(text)
    shutil.copy(SCRAPE_CONFIG.parent / "alerts.yml", path.parent / "alerts.yml")
    return path


def api(base: str, path: str, **query: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]


async def until(check: Any, what: str, timeout_s: float = 60.0) -> Any:
    """Poll ``check()`` in a thread until it returns a truthy value; fail naming ``what``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(OSError, KeyError, ValueError):
            last = await asyncio.to_thread(check)
            if last:
                return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what} not reached within {timeout_s} s (last: {last!r})")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextlib.asynccontextmanager
async def grid(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """Coordinator, manager with uplink and agent, each with its /metrics; yields targets."""
    coordinator = CoordinatorServer(
        CoordinatorConfig(
            listen="127.0.0.1:0",
            insecure=True,
            topology_file=str(TOPOLOGY),
            state_db=":memory:",
            summary_period_s=0.5,
            cluster_timeout_s=10.0,
        ).validate()
    )
    coord_metrics = MetricsEndpoint(
        CoordinatorMetrics(coordinator.coordinator).registry, "127.0.0.1:0", "coordinator"
    )
    await coordinator.start()
    cluster = ClusterRuntime(
        ClusterConfig(cluster_id="c1", listen="127.0.0.1:0", insecure=True, report_period_ms=500),
        RuntimeOptions(decisions=False, coordinator=coordinator.address, summary_period_s=0.5),
    )
    metrics = ClusterMetrics(cluster.manager)
    metrics.attach_runtime(cluster)
    cluster_metrics = MetricsEndpoint(metrics.registry, "127.0.0.1:0", "cluster")
    await cluster.start()
    agent_port = free_port()
    command = [
        sys.executable, "-m", "vmgrid.agents.node.main", "--insecure",
        "--manager", cluster.address, "--node-id", "n1", "--libvirt-uri", "test:///default",
        "--period", "0.5", "--metrics-listen", f"127.0.0.1:{agent_port}",
    ]  # fmt: skip
    with (tmp_path / "agent.log").open("wb") as log:
        agent = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        yield {
            "vmgrid-agent": f"127.0.0.1:{agent_port}",
            "vmgrid-cluster": cluster_metrics.address,
            "vmgrid-coordinator": coord_metrics.address,
        }
    finally:
        stop_process(agent)
        await cluster.stop(grace_s=0)
        cluster_metrics.stop()
        await coordinator.stop(grace_s=0)
        coord_metrics.stop()


@contextlib.contextmanager
def prometheus(config: Path, tmp_path: Path) -> Any:
    port = free_port()
    command = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with (tmp_path / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def test_prometheus_scrapes_every_component_and_finds_their_series(tmp_path: Path) -> None:
    if not os.access(PROMETHEUS, os.X_OK) or shutil.which("promtool") is None:
        pytest.skip("Debian's prometheus package is not installed (make install)")

    async def scenario() -> None:
        async with grid(tmp_path) as targets:
            config = render_config(targets, tmp_path / "prometheus.yml")
            with prometheus(config, tmp_path) as base:

                def all_up() -> bool:
                    active = api(base, "/api/v1/targets")["activeTargets"]
                    health = {t["labels"]["job"]: t["health"] for t in active}
                    return health == {job: "up" for job in targets}

                await until(all_up, "every target up")

                def value(query: str) -> float | None:
                    result = api(base, "/api/v1/query", query=query)["result"]
                    return float(result[0]["value"][1]) if result else None

                def equals(query: str, expected: float) -> bool:
                    return value(query) == expected

                await until(lambda: equals('vmgrid_cluster_nodes{status="connected"}', 1), "node")
                await until(lambda: equals("vmgrid_cluster_connected_agents", 1), "agent stream")
                await until(lambda: equals('vmgrid_grid_clusters{state="connected"}', 1), "cluster")
                await until(
                    lambda: (value('vmgrid_grid_summaries_received_total{cluster="c1"}') or 0) > 0,
                    "summaries received",
                )
                await until(
                    lambda: (value('vmgrid_domain_memory_usage_bytes{domain="test"}') or 0) > 0,
                    "domain memory from the agent",
                )
                await until(lambda: equals('vmgrid_agent_libvirt_up{node="n1"}', 1), "libvirt up")
                await until(
                    lambda: value("vmgrid_grid_link_utilisation_ratio") is not None, "links"
                )
                assert value('sum(up{job=~"vmgrid-.*"})') == 3
                # the overload alert's match of each node to its manager's band holds on the
                # labels a real scrape gives, and every alert rule evaluates without error
                high = value('vmgrid_cluster_policy_band_ratio{resource="cpu",edge="high"}')
                assert high == OperatorPolicy().cpu_high
                matched = (
                    "vmgrid_cluster_node_cpu_capacity_cores > on(job, instance) group_left() "
                    'vmgrid_cluster_policy_band_ratio{resource="cpu",edge="high"}'
                )
                capacity = value("vmgrid_cluster_node_cpu_capacity_cores")
                assert capacity is not None and value(matched) == capacity

                alerts = (SCRAPE_CONFIG.parent / "alerts.yml").read_text().count("- alert: ")

                def rules_evaluated() -> bool:
                    groups = api(base, "/api/v1/rules")["groups"]
                    health = [r.get("health") for g in groups for r in g["rules"]]
                    return len(health) == alerts and set(health) == {"ok"}

                await until(rules_evaluated, "every alert rule evaluated without error")

    asyncio.run(asyncio.wait_for(scenario(), 150))
