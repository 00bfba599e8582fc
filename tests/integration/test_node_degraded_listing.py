"""An agent that cannot reach libvirt shows as degraded, with its reason, to operators.

A real agent process dials a real manager on 127.0.0.1 with a libvirt URI nobody listens on:
its heartbeats carry the reason, ListNodes and `vmgridctl nodes` show it, and the change is a
node event.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc.aio
import pytest
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.cluster.state.events import EventKind
from vmgrid.coordinator.cli.main import main as vmgridctl
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _agent(address: str, uri: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "vmgrid.agents.node.main", "--insecure", "--manager", address]
    argv += ["--node-id", "broken", "--libvirt-uri", uri, "--heartbeat", "0.3"]
    with log.open("ab") as sink:
        return subprocess.Popen(argv, stdout=sink, stderr=sink)


async def _degraded_reason(stub: cluster_pb2_grpc.ClusterServiceStub) -> str:
    reply = await stub.ListNodes(cluster_pb2.ListNodesRequest(), timeout=5)
    return next((n.degraded_reason for n in reply.nodes if n.node_id == "broken"), "")


def test_unreachable_libvirt_shows_as_degraded_in_list_nodes_and_vmgridctl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no user config for vmgridctl
    uri = f"qemu+tcp://127.0.0.1:{_free_port()}/system"

    async def scenario() -> tuple[str, str]:
        config = ClusterConfig(listen="127.0.0.1:0", insecure=True, heartbeat_timeout_ms=10_000)
        server = ClusterServer(config)
        await server.start()
        events = server.manager.bus.subscribe(lambda e: e.kind is EventKind.NODE_DEGRADED_CHANGED)
        agent = _agent(server.address, uri, tmp_path / "agent.log")
        channel = grpc.aio.insecure_channel(server.address)
        try:
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            event = await asyncio.wait_for(events.get(), 30)
            reason = await _degraded_reason(stub)
            code = await asyncio.to_thread(
                vmgridctl, ["nodes", "--cluster", server.address, "--insecure"]
            )
            assert code == 0
            assert event.node_id == "broken" and reason in event.message
            return reason, capsys.readouterr().out
        finally:
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(timeout=20) == 0
            await channel.close()
            await server.stop(grace_s=0)

    reason, table = asyncio.run(scenario())
    assert "libvirt" in reason and uri in reason
    header, row = table.splitlines()[:2]
    assert header.split()[-1] == "DEGRADED"
    assert row.split()[0] == "broken" and "libvirt" in row
