"""Node agent metrics: a real NodeAgent on the libvirt test driver, a fresh registry, promtool."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import urllib.request

import pytest
from offline_agent import offline_agent
from prometheus_client import generate_latest
from vmgrid.agents import model
from vmgrid.agents.metrics_http import MetricsEndpoint
from vmgrid.agents.node.config import load_config
from vmgrid.agents.node.main import build_agent
from vmgrid.agents.node.main import main as agent_main
from vmgrid.agents.node.metrics import AgentMetrics, command_kind


async def scraped_after_reports() -> bytes:
    """Run an agent (its manager unreachable) until it has reported, fail one command, scrape."""
    async with offline_agent(report_period_s=0.1) as agent:
        metrics = AgentMetrics(agent, "n1")
        first = agent.last_report
        for _ in range(100):  # a report made while the metrics listen
            if agent.last_report is not first:
                break
            await asyncio.sleep(0.05)
        agent.actuators.submit(model.SuspendCommand(command_id="c1", vm_uuid="no-such-vm"))
        await agent.actuators.drain()
    return generate_latest(metrics.registry)


def test_domains_host_reports_and_commands_are_exported_and_promtool_finds_nothing() -> None:
    text = asyncio.run(scraped_after_reports())
    lines = text.decode().splitlines()
    assert 'vmgrid_agent_libvirt_up{node="n1"} 1.0' in lines
    assert any(line.startswith('vmgrid_domain_memory_usage_bytes{domain="test"') for line in lines)
    assert any(
        line.startswith('vmgrid_domain_state{domain="test",state="running"') for line in lines
    )
    assert any(line.startswith('vmgrid_node_memory_total_bytes{node="n1"}') for line in lines)
    assert 'vmgrid_agent_commands_total{kind="suspend",outcome="failed"} 1.0' in lines
    count = next(
        line for line in lines if line.startswith("vmgrid_agent_report_duration_seconds_count")
    )
    assert float(count.split()[-1]) >= 1
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
    assert (checked.stdout + checked.stderr).decode() == ""


def test_command_kinds_are_snake_case_names() -> None:
    assert command_kind(model.CreateSnapshotCommand("c", "vm", "s1")) == "create_snapshot"
    assert command_kind(model.SuspendCommand("c", "vm")) == "suspend"


def test_endpoint_on_port_zero_serves_the_registry_over_http() -> None:
    agent = build_agent(load_config(None, {"insecure": True, "node_id": "n1"}))
    endpoint = MetricsEndpoint(AgentMetrics(agent, "n1").registry, "127.0.0.1:0", "test")
    try:
        assert endpoint.port > 0
        with urllib.request.urlopen(endpoint.url, timeout=5) as response:
            body = response.read().decode()
        assert 'vmgrid_agent_libvirt_up{node="n1"} 0.0' in body  # not connected yet
    finally:
        endpoint.stop()


def test_bad_metrics_listen_stops_the_agent_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = agent_main(["--insecure", "--node-id", "n1", "--metrics-listen", "localhost"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "'localhost' is not HOST:PORT" in err[0]
