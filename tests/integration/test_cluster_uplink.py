"""A cluster manager runtime reports to a real coordinator over the grid link."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc.aio
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.v1 import coordinator_pb2, coordinator_pb2_grpc


def test_cluster_runtime_registers_with_the_coordinator_and_reports_summaries(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        coordinator = CoordinatorServer(
            CoordinatorConfig(
                listen="127.0.0.1:0",
                insecure=True,
                state_db=str(tmp_path / "grid.sqlite"),
                summary_period_s=0.1,
            ).validate()
        )
        address = await coordinator.start()
        runtime = ClusterRuntime(
            ClusterConfig(cluster_id="rack-a", listen="127.0.0.1:0", insecure=True),
            RuntimeOptions(decisions=False, coordinator=address, summary_period_s=0.1),
        )
        await runtime.start()
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
                for _ in range(100):
                    reply = await stub.ListClusters(coordinator_pb2.ListClustersRequest())
                    if any(c.cluster_id == "rack-a" for c in reply.clusters) and (
                        runtime.uplink is not None and runtime.uplink.sent >= 2
                    ):
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("rack-a never registered with two summaries")
        finally:
            await runtime.stop(grace_s=0)
            await coordinator.stop()

    asyncio.run(asyncio.wait_for(go(), 60))
