"""Operators forget a node (ClusterService.ForgetNode, DELETE /nodes/{id}, `vmgridctl nodes
forget`) or a cluster (CoordinatorService.ForgetCluster, `vmgridctl clusters forget`): refused
while it is connected or holds VMs; otherwise a node leaves the state, its history and the
journal, a cluster the registry and its database, and the grid moves waiting for it fail. The
roles allowed are checked in test_roles (a node's certificate may call neither)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
import pytest
from node_link_harness import StreamAgent
from vmgrid.agents import grid_model as gm
from vmgrid.agents.cluster.act.journal import Journal
from vmgrid.agents.cluster.decide.control import AutomationLevel, ControlConfig
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.runtime import ClusterRuntime, RuntimeOptions
from vmgrid.agents.cluster.state.events import EventKind
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.coordinator.cli.main import main as vmgridctl
from vmgrid.coordinator.config import CoordinatorConfig
from vmgrid.coordinator.moves import Phase, PlanStatus
from vmgrid.coordinator.registry import Registry
from vmgrid.coordinator.server import CoordinatorServer
from vmgrid.coordinator.web.launch import serve_cluster_dashboard, serve_coordinator_dashboard
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, coordinator_pb2, coordinator_pb2_grpc


def runtime_for(journal: Path) -> ClusterRuntime:
    control = ControlConfig(automation=AutomationLevel.MANUAL, period_s=3600.0)
    config = ClusterConfig(
        cluster_id="forget",
        listen="127.0.0.1:0",
        insecure=True,
        report_period_ms=100,
        heartbeat_timeout_ms=400,
    )
    return ClusterRuntime(config, RuntimeOptions(control=control, journal_path=str(journal)))


@contextlib.asynccontextmanager
async def running(journal: Path) -> AsyncIterator[ClusterRuntime]:
    runtime = runtime_for(journal)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop(grace_s=0)


async def until(check: object, what: str, timeout_s: float = 10.0) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


async def connect(channel: grpc.aio.Channel, node_id: str, *vms: str) -> StreamAgent:
    agent = StreamAgent(channel, node_id)
    await agent.hello()
    agent.report(*vms)
    return agent


async def forget(stub: cluster_pb2_grpc.ClusterServiceStub, node_id: str) -> tuple[str, str]:
    """(status name, details) of ForgetNode."""
    try:
        await stub.ForgetNode(cluster_pb2.ForgetNodeRequest(node_id=node_id), timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc.code().name, exc.details() or ""
    return "OK", ""


def test_forget_node_refuses_a_connected_node_and_one_with_vms_then_forgets(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with (
            running(tmp_path / "journal.sqlite") as runtime,
            grpc.aio.insecure_channel(runtime.address) as channel,
        ):
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            state = runtime.manager.state
            full = await connect(channel, "full", "vm-a")
            empty = await connect(channel, "empty")
            await until(lambda: state.view("full").vms and state.view("empty").usage, "reports")
            assert await forget(stub, "empty") == (
                "FAILED_PRECONDITION",
                "node 'empty' is connected; stop its agent first",
            )
            full.close()  # ends both streams; the nodes go lost after 0.4 s
            empty.close()
            await until(
                lambda: (
                    state.node_status("full") is NodeStatus.LOST
                    and state.node_status("empty") is NodeStatus.LOST
                ),
                "both nodes lost",
            )
            code, details = await forget(stub, "full")
            assert code == "FAILED_PRECONDITION" and "holds 1 VM(s) (vm-a)" in details
            events = runtime.manager.bus.subscribe(lambda e: e.kind is EventKind.NODE_FORGOTTEN)
            assert await forget(stub, "empty") == ("OK", "")
            assert (await asyncio.wait_for(events.get(), 5)).node_id == "empty"
            listed = await stub.ListNodes(cluster_pb2.ListNodesRequest(), timeout=5)
            assert [n.node_id for n in listed.nodes] == ["full"]
            assert (await forget(stub, "empty"))[0] == "NOT_FOUND"
            # The agent of a forgotten node may come back: it joins as a new node.
            again = await connect(channel, "empty")
            await until(lambda: "empty" in state.node_ids(), "rejoined")
            again.close()

    asyncio.run(scenario())


def test_a_forgotten_powered_off_node_leaves_the_journal(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"

    async def scenario() -> None:
        async with (
            running(journal) as runtime,
            grpc.aio.insecure_channel(runtime.address) as channel,
        ):
            state = runtime.manager.state
            agent = await connect(channel, "sleeper")
            await until(lambda: state.view("sleeper").usage is not None, "report")
            agent.close()
            await until(lambda: runtime.manager.session_count == 0, "stream closed")
            state.mark_powered_off("sleeper")  # what the manager does once it powered it off
            assert [n for n, _, _ in runtime.journal.powered_off_nodes()] == ["sleeper"]
            runtime.operator.vms.forget("sleeper")
            assert runtime.journal.powered_off_nodes() == []
        async with running(journal) as restarted:
            assert restarted.manager.state.node_ids() == []

    asyncio.run(scenario())
    assert Journal(str(journal)).powered_off_nodes() == []


def test_vmgridctl_nodes_forget_and_delete_nodes_id(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            running(tmp_path / "journal.sqlite") as runtime,
            grpc.aio.insecure_channel(runtime.address) as channel,
        ):
            state = runtime.manager.state
            agents = [await connect(channel, node) for node in ("a", "b", "c")]
            await until(lambda: all(state.view(n).usage for n in "abc"), "reports")
            ctl = ["--cluster", runtime.address, "--insecure"]
            refused = await asyncio.to_thread(vmgridctl, ["nodes", "forget", "a", *ctl])
            assert refused == 5  # not possible in the current state
            for agent in agents[:2]:
                agent.close()
            await until(
                lambda: {state.node_status(n) for n in "ab"} == {NodeStatus.LOST}, "a, b lost"
            )
            assert await asyncio.to_thread(vmgridctl, ["nodes", "forget", "a", *ctl]) == 0
            assert "a" not in state.node_ids()
            dashboard = await serve_cluster_dashboard(runtime, "127.0.0.1:0", "", tmp_path)
            try:
                api = dashboard.url + "api/v1/nodes/"
                operator = {"Authorization": f"Bearer {dashboard.tokens.operator}"}
                reader = {"Authorization": f"Bearer {dashboard.tokens.read}"}
                async with aiohttp.ClientSession() as http:
                    async with http.delete(api + "b", headers=reader) as reply:
                        assert reply.status == 403
                    async with http.delete(api + "c", headers=operator) as reply:
                        body = await reply.json()
                        assert reply.status == 409 and "connected" in body["error"]["message"]
                    async with http.delete(api + "b", headers=operator) as reply:
                        assert (reply.status, await reply.json()) == (
                            200,
                            {"node": "b", "forgotten": True},
                        )
                    async with http.delete(api + "b", headers=operator) as reply:
                        assert reply.status == 404
            finally:
                await dashboard.stop()
            assert state.node_ids() == ["c"]
            agents[2].close()

    asyncio.run(scenario())


@pytest.mark.parametrize("argv", [["nodes", "forget"], ["clusters", "forget"]])
def test_forget_without_an_id_is_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert vmgridctl([*argv, "--insecure"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give the id" in err


# ---- the coordinator: clusters forget ------------------------------------------------------


def _hello(cluster_id: str) -> gm.ClusterHello:
    return gm.ClusterHello(cluster_id, gm.Capacity(4000, 8 * 2**30, 10**9), endpoint="e:1")


def _summary(*vm_uuids: str) -> gm.ClusterSummary:
    vms = tuple(gm.VmDemand(u, u, "n1", 500, 2**30) for u in vm_uuids)
    used = gm.Capacity(500 * len(vms), 2**30 * len(vms), 0)
    return gm.ClusterSummary(1, time.time_ns(), gm.Capacity(4000, 8 * 2**30, 10**9), used, vms)


async def forget_cluster(
    stub: coordinator_pb2_grpc.CoordinatorServiceStub, cluster_id: str
) -> tuple[str, str, list[str]]:
    """(status name, details, failed move ids) of ForgetCluster."""
    try:
        reply = await stub.ForgetCluster(
            coordinator_pb2.ForgetClusterRequest(cluster_id=cluster_id), timeout=5
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code().name, exc.details() or "", []
    return "OK", "", list(reply.failed_move_ids)


async def http_forget(server: CoordinatorServer, cluster_id: str) -> tuple[int, object]:
    """DELETE /clusters/{id} on the coordinator's dashboard: (status, failed moves or '')."""
    dashboard = await serve_coordinator_dashboard(
        server.coordinator,
        "127.0.0.1:0",
        "",
        Path(server.config.state_db).parent,
        mover=server.mover,
    )
    try:
        operator = {"Authorization": f"Bearer {dashboard.tokens.operator}"}
        async with (
            aiohttp.ClientSession() as http,
            http.delete(f"{dashboard.url}api/v1/clusters/{cluster_id}", headers=operator) as reply,
        ):
            body = await reply.json()
            return reply.status, body.get("failed_moves", "")
    finally:
        await dashboard.stop()


def test_forget_cluster_refusals_then_removal_fails_its_pending_moves(tmp_path: Path) -> None:
    db = tmp_path / "grid.sqlite"
    config = CoordinatorConfig(
        listen="127.0.0.1:0",
        insecure=True,
        state_db=str(db),
        cluster_timeout_s=0.5,
        summary_period_s=0.1,
    ).validate()

    async def scenario() -> None:
        server = CoordinatorServer(config)
        await server.start()
        coordinator = server.coordinator
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
                src, gone, full, idle = (
                    coordinator.open_session(_hello(c)) for c in ("src", "gone", "full", "idle")
                )
                coordinator.handle_summary(src, _summary("vm-1"))
                coordinator.handle_summary(gone, _summary())
                coordinator.handle_summary(full, _summary("vm-2"))
                coordinator.handle_summary(idle, _summary())
                code, details, _ = await forget_cluster(stub, "gone")
                assert code == "FAILED_PRECONDITION" and "connected" in details
                for session in (gone, full, idle):
                    coordinator.close_session(session)
                lost = {gm.ClusterState.LOST}
                await until(
                    lambda: (
                        {coordinator.registry.get(c).state for c in ("gone", "full", "idle")}
                        == lost
                    ),
                    "clusters lost",
                )
                assert await http_forget(server, "idle") == (200, [])
                code, details, _ = await forget_cluster(stub, "full")
                assert code == "FAILED_PRECONDITION" and "held VMs" in details
                # A move to the lost cluster waits for it for ever, unless it is forgotten.
                plan_id = server.mover.migrate_vm("vm-1", "gone")
                await asyncio.sleep(0.2)
                assert server.mover.moves(plan_id)[0].phase is Phase.PENDING
                code, _, failed = await forget_cluster(stub, "gone")
                assert (code, failed) == ("OK", [f"{plan_id}-m0"])
                assert await asyncio.wait_for(server.mover.wait(plan_id), 10) is PlanStatus.FAILED
                move = server.mover.moves(plan_id)[0]
                assert move.failed and "'gone' was forgotten" in move.message
                listed = await stub.ListClusters(coordinator_pb2.ListClustersRequest(), timeout=5)
                assert sorted(c.cluster_id for c in listed.clusters) == ["full", "src"]
                assert (await forget_cluster(stub, "gone"))[0] == "NOT_FOUND"
                assert await http_forget(server, "gone") == (404, "")
                assert await http_forget(server, "full") == (409, "")
        finally:
            await server.stop(0)
        reopened = Registry(str(db))
        assert [r.cluster_id for r in reopened.records()] == ["full", "src"]
        reopened.close()

    asyncio.run(scenario())
