"""The grid uplink keeps a cluster reporting whatever its summaries hold: totals beyond int64
are clamped on the wire, and a summary source that raises is logged while the link goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc.aio
from vmgrid.agents import grid_model as m
from vmgrid.agents.cluster.grid.uplink import GridUplink
from vmgrid.agents.wire_limits import MAX_QUANTITY
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.v1 import coordinator_pb2, coordinator_pb2_grpc

HUGE = m.Capacity(cpu_millicores=3 * (2**63 - 1), memory_bytes=2**70, network_bps=10**9)


def test_a_cluster_with_totals_beyond_int64_stays_connected_with_clamped_figures(
    tmp_path: Path,
) -> None:
    calls = 0

    def source() -> m.ClusterSummary:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OverflowError("a summary that cannot be built")
        health = m.ClusterHealth(m.HealthState.HEALTHY, 3, 0, 0, "")
        return m.ClusterSummary(0, 0, HUGE, m.Capacity(1, 1, 1), (), health=health)

    async def go() -> None:
        config = CoordinatorConfig(
            listen="127.0.0.1:0",
            insecure=True,
            state_db=str(tmp_path / "grid.sqlite"),
            summary_period_s=0.05,
        ).validate()
        coordinator = CoordinatorServer(config)
        address = await coordinator.start()
        hello = m.ClusterHello("big", HUGE, node_count=3, endpoint="big:7443")
        uplink = GridUplink(address, None, hello, source, period_s=0.05, initial_backoff_s=0.05)
        uplink.start()
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
                for _ in range(200):
                    reply = await stub.ListClusters(coordinator_pb2.ListClustersRequest())
                    clusters = {c.cluster_id: c for c in reply.clusters}
                    if "big" in clusters and uplink.sent >= 3 and clusters["big"].connected:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"big never reported three summaries ({uplink.sent})")
                assert clusters["big"].capacity.cpu_millicores == MAX_QUANTITY
                assert clusters["big"].capacity.memory_bytes == MAX_QUANTITY
                assert uplink.connects == 1  # one stream all along
        finally:
            await uplink.stop()
            await coordinator.stop()

    asyncio.run(asyncio.wait_for(go(), 60))
