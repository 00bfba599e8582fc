"""A real coordinator on 127.0.0.1 with real GridUplink clients and real gRPC streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from vmgrid.agents import grid_codec
from vmgrid.agents import grid_model as m
from vmgrid.agents.cluster.grid.uplink import GridUplink
from vmgrid.coordinator.cli.main import main as ctl_main
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.v1 import common_pb2, coordinator_pb2, coordinator_pb2_grpc, grid_pb2, grid_pb2_grpc

TOPOLOGY = Path(__file__).parent.parent / "data" / "coordinator" / "topology-three.graphml"
GIB = 2**30
CAPACITY = m.Capacity(10_000, 32 * GIB, 10**10)


def summary(cpu_used: int, vms: int, prefix: str) -> m.ClusterSummary:
    movable = tuple(
        m.VmDemand(f"{prefix}-vm{i}", f"vm{i}", "n1", 1000, GIB, 10**7) for i in range(vms)
    )
    return m.ClusterSummary(0, 0, CAPACITY, m.Capacity(cpu_used, 8 * GIB, 10**9), movable)


def config(tmp_path: Path, **overrides: object) -> CoordinatorConfig:
    values: dict[str, object] = {
        "listen": "127.0.0.1:0",
        "insecure": True,
        "topology_file": str(TOPOLOGY),
        "state_db": str(tmp_path / "grid.sqlite"),
        # Short enough for a quick "lost", long enough that a busy 2-core machine (the grid
        # planner holds the GIL while the same process serves both uplinks) loses no one else.
        "cluster_timeout_s": 3.0,
        "summary_period_s": 0.1,
    }
    values.update(overrides)
    return CoordinatorConfig(**values).validate()  # type: ignore[arg-type]


def uplink(address: str, cluster_id: str, source: m.ClusterSummary) -> GridUplink:
    hello = m.ClusterHello(cluster_id, CAPACITY, node_count=2, endpoint=f"{cluster_id}:7443")
    return GridUplink(address, None, hello, lambda: source, period_s=0.1, initial_backoff_s=0.1)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


async def clusters(stub: coordinator_pb2_grpc.CoordinatorServiceStub) -> dict[str, object]:
    reply = await stub.ListClusters(coordinator_pb2.ListClustersRequest(), timeout=5)
    return {c.cluster_id: c for c in reply.clusters}


def test_two_uplinks_register_one_is_lost_and_the_plan_relieves_the_overloaded_one(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        server = CoordinatorServer(config(tmp_path))
        address = await server.start()
        busy = uplink(address, "c1", summary(9_500, 4, "c1"))
        calm = uplink(address, "c2", summary(4_000, 1, "c2"))
        busy.start()
        calm.start()
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
                watch = stub.WatchEvents(
                    coordinator_pb2.CoordinatorServiceWatchEventsRequest(
                        kinds=[common_pb2.EVENT_KIND_CLUSTER_LOST]
                    )
                )

                async def both_reported() -> bool:
                    found = await clusters(stub)
                    return all(c in found and found[c].vm_count > 0 for c in ("c1", "c2"))  # type: ignore[attr-defined]

                await eventually(both_reported)
                found = await clusters(stub)
                assert found["c1"].connected and found["c2"].connected  # type: ignore[attr-defined]
                assert found["c1"].usage.cpu_millicores == 9_500  # type: ignore[attr-defined]
                assert busy.ack is not None and busy.ack.known_cluster

                reply = await stub.PlanGrid(coordinator_pb2.PlanGridRequest(), timeout=10)
                moves = reply.plan.moves
                assert moves, reply.plan.summary
                assert {(mv.source_cluster_id, mv.destination_cluster_id) for mv in moves} == {
                    ("c1", "c2")
                }
                assert all(mv.reason.startswith("relief") for mv in moves)
                assert list(moves[0].path_cluster_ids) == ["c1", "core", "c2"]
                assert "1 relieved" in reply.plan.summary

                topo = (await stub.GetTopology(coordinator_pb2.GetTopologyRequest())).topology
                assert {c.cluster_id for c in topo.clusters} == {"c1", "c2", "c3"}
                link = next(
                    lk for lk in topo.links if {lk.cluster_a, lk.cluster_b} == {"c1", "core"}
                )
                assert link.used_bps == 1_000_000_000 and link.bandwidth_bps == 10**10

                await calm.stop()

                async def c2_lost() -> bool:
                    return not (await clusters(stub))["c2"].connected  # type: ignore[attr-defined]

                await eventually(c2_lost)
                assert (await clusters(stub))["c1"].connected  # type: ignore[attr-defined]
                event = await asyncio.wait_for(watch.read(), 5)
                assert event.event.cluster_id == "c2"
                watch.cancel()
        finally:
            await busy.stop()
            await calm.stop()
            await server.stop()

    run(go())


def test_malformed_messages_get_clear_errors_and_the_coordinator_keeps_serving(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        server = CoordinatorServer(config(tmp_path, cluster_timeout_s=30.0))
        address = await server.start()
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                out: asyncio.Queue[grid_pb2.GridLinkServiceConnectRequest] = asyncio.Queue()

                async def requests() -> AsyncIterator[grid_pb2.GridLinkServiceConnectRequest]:
                    while True:
                        yield await out.get()

                call = grid_pb2_grpc.GridLinkServiceStub(channel).Connect(requests())
                out.put_nowait(grid_codec.hello_request(m.ClusterHello("bad-1", CAPACITY)))
                assert (await call.read()).WhichOneof("payload") == "hello_ack"
                wire = grid_codec.encode_summary(summary(100, 1, "bad"))
                wire.sequence = 1
                wire.usage.cpu_millicores = -5
                out.put_nowait(grid_pb2.GridLinkServiceConnectRequest(summary=wire))
                error = (await call.read()).error
                assert error.field == "summary.usage.cpu_millicores"
                assert "-5" in error.message

                wire.usage.cpu_millicores = 100
                out.put_nowait(grid_pb2.GridLinkServiceConnectRequest(summary=wire))
                stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)

                async def stored() -> bool:
                    return (await clusters(stub))["bad-1"].vm_count == 1  # type: ignore[attr-defined]

                await eventually(stored)
                out.put_nowait(grid_pb2.GridLinkServiceConnectRequest(summary=wire))
                stale = (await call.read()).error
                assert stale.field == "summary.sequence" and "must grow" in stale.message
                call.cancel()

                bad_hello = grid_pb2_grpc.GridLinkServiceStub(channel).Connect(
                    iter([grid_codec.hello_request(m.ClusterHello("no spaces", CAPACITY))])
                )
                reply = await bad_hello.read()
                assert reply.error.field == "hello.cluster_id"
                assert "'no spaces'" in reply.error.message
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await bad_hello.read()
                assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT

                health = health_pb2_grpc.HealthStub(channel)
                answer = await health.Check(health_pb2.HealthCheckRequest(service=""))
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.ApplyGridPlan(coordinator_pb2.ApplyGridPlanRequest(plan_id="x"))
                assert info.value.code() is grpc.StatusCode.NOT_FOUND
                assert "'x'" in (info.value.details() or "")
        finally:
            await server.stop()

    run(go())


def test_registry_survives_a_restart_and_vmgridctl_lists_clusters_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def go() -> None:
        server = CoordinatorServer(config(tmp_path))
        address = await server.start()
        link = uplink(address, "c3", summary(200, 2, "c3"))
        link.start()
        async with grpc.aio.insecure_channel(address) as channel:
            stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)

            async def reported() -> bool:
                found = await clusters(stub)
                return "c3" in found and found["c3"].vm_count == 2  # type: ignore[attr-defined]

            await eventually(reported)
        await link.stop()
        await server.stop()

        again = CoordinatorServer(config(tmp_path, listen="127.0.0.1:0"))
        address = await again.start()
        try:
            argv = ["clusters", "--insecure", "--coordinator", address, "--output", "json"]
            assert await asyncio.to_thread(ctl_main, argv) == 0
            listed = json.loads(capsys.readouterr().out)["clusters"]
            assert [c["cluster_id"] for c in listed] == ["c3"]
            assert listed[0]["vm_count"] == 2 and listed[0]["endpoint"] == "c3:7443"
            argv = ["plan", "--insecure", "--coordinator", address]
            assert await asyncio.to_thread(ctl_main, argv) == 0
            assert "dry run" in capsys.readouterr().out
        finally:
            await again.stop()

    run(go())
