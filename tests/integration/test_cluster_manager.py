"""A real cluster manager on 127.0.0.1 driven by a real gRPC stream playing a node agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from vmgrid.agents import model as m
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.main import main as cluster_main
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.errors import Unavailable
from vmgrid.agents.tls import TlsFiles, channel_credentials
from vmgrid.coordinator.cli.main import main as vmgridctl
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2, node_pb2, node_pb2_grpc

FAST = {"report_period_ms": 100, "heartbeat_timeout_ms": 400}


class Agent:
    """Plays a node agent: one NodeLinkService.Connect stream, messages pushed by the test."""

    def __init__(self, channel: grpc.aio.Channel, node_id: str = "n1") -> None:
        self.node_id = node_id
        self._out: asyncio.Queue[node_pb2.NodeLinkServiceConnectRequest | None] = asyncio.Queue()
        self.call = node_pb2_grpc.NodeLinkServiceStub(channel).Connect(self._requests())
        self.sequence = 0

    async def _requests(self) -> AsyncIterator[node_pb2.NodeLinkServiceConnectRequest]:
        while (msg := await self._out.get()) is not None:
            yield msg

    def send(self, **payload: Any) -> None:
        self._out.put_nowait(node_pb2.NodeLinkServiceConnectRequest(**payload))

    async def hello(self) -> node_pb2.HelloAck:
        hello = m.NodeHello(
            m.NodeIdentity(self.node_id, "host", "test:///default", simulated=True),
            m.NodeCapacity(4000, 8 * 2**30, 10**9),
        )
        self.send(hello=codec.encode_hello(hello))
        reply = await self.recv()
        assert reply.WhichOneof("payload") == "hello_ack"
        return reply.hello_ack

    def build_report(self, *vms: m.VmUsage) -> node_pb2.NodeReport:
        self.sequence += 1
        report = m.NodeReport(time.time_ns(), self.sequence, m.HostUsage(100, 2**30, 2**33), vms)
        return codec.encode_report(report)

    def report(self, *vms: m.VmUsage) -> None:
        self.send(report=self.build_report(*vms))

    async def recv(self) -> node_pb2.NodeLinkServiceConnectResponse:
        return await asyncio.wait_for(self.call.read(), 5)  # type: ignore[return-value]

    def close(self) -> None:
        self._out.put_nowait(None)


def vm(uuid: str = "vm-1", state: m.VmState = m.VmState.RUNNING) -> m.VmUsage:
    return m.VmUsage(uuid, f"web-{uuid}", state, 1, 250, 2**28, 2**29, simulated=True)


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def next_event(events: grpc.aio.UnaryStreamCall, kind: int) -> common_pb2.Event:
    while True:
        reply = await asyncio.wait_for(events.read(), 5)
        assert reply is not grpc.aio.EOF
        if reply.event.kind == kind:
            return reply.event


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


async def start(**overrides: Any) -> ClusterServer:
    config = ClusterConfig(listen="127.0.0.1:0", insecure=True, **{**FAST, **overrides})
    server = ClusterServer(config.validate())
    await server.start()
    return server


def test_node_and_vm_appear_then_node_is_lost_and_returns() -> None:
    async def scenario() -> None:
        server = await start()
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            events = stub.WatchEvents(cluster_pb2.WatchEventsRequest())
            await events.initial_metadata()  # subscribed
            agent = Agent(channel)
            ack = await agent.hello()
            assert ack.report_period_ms == 100 and ack.heartbeat_timeout_ms == 400
            assert ack.known_node is False
            agent.report(vm("vm-1"))

            async def vm_listed() -> bool:
                reply = await stub.ListVms(cluster_pb2.ListVmsRequest())
                return [v.usage.uuid for v in reply.vms] == ["vm-1"]

            await eventually(vm_listed)
            nodes = (await stub.ListNodes(cluster_pb2.ListNodesRequest())).nodes
            assert [(n.node_id, n.status, n.vm_count) for n in nodes] == [
                ("n1", cluster_pb2.NODE_STATUS_CONNECTED, 1)
            ]
            assert (await next_event(events, common_pb2.EVENT_KIND_NODE_JOINED)).node_id == "n1"
            appeared = await next_event(events, common_pb2.EVENT_KIND_VM_APPEARED)
            assert appeared.vm_uuid == "vm-1" and appeared.simulated

            agent.close()  # heartbeats stop
            lost = await next_event(events, common_pb2.EVENT_KIND_NODE_LOST)
            assert lost.node_id == "n1"
            node = (await stub.GetNode(cluster_pb2.GetNodeRequest(node_id="n1"))).node
            assert node.status == cluster_pb2.NODE_STATUS_LOST

            again = Agent(channel)
            assert (await again.hello()).known_node is True
            await next_event(events, common_pb2.EVENT_KIND_NODE_RETURNED)
            node = (await stub.GetNode(cluster_pb2.GetNodeRequest(node_id="n1"))).node
            assert node.status == cluster_pb2.NODE_STATUS_CONNECTED
            events.cancel()
            again.close()
        await server.stop()

    run(scenario())


def test_malformed_report_gets_a_clear_error_and_the_manager_keeps_state() -> None:
    async def scenario() -> None:
        server = await start(report_period_ms=1000, heartbeat_timeout_ms=10000)
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            agent = Agent(channel)
            await agent.hello()
            agent.report(vm("good"))
            bad = agent.build_report(vm("good"), vm("bad"))
            bad.vms[1].cpu_used_millicores = -7
            agent.send(report=bad)
            reply = await agent.recv()
            assert reply.error.field == "report.vms[1].cpu_used_millicores"
            assert "negative value -7" in reply.error.message
            worse = agent.build_report(vm("good"), vm("bad"))
            worse.vms[1].state = 99
            agent.send(report=worse)
            assert "unknown VM state 99" in (await agent.recv()).error.message

            vms = (await stub.ListVms(cluster_pb2.ListVmsRequest())).vms
            assert [v.usage.uuid for v in vms] == ["good"]
            agent.report(vm("good"), vm("second"))

            async def both_listed() -> bool:
                return len((await stub.ListVms(cluster_pb2.ListVmsRequest())).vms) == 2

            await eventually(both_listed)
            stats = await stub.GetIngestStats(cluster_pb2.GetIngestStatsRequest())
            assert stats.rejected_total == 2 and stats.reports_total == 2

            nameless = Agent(channel, node_id="")
            nameless.send(hello=node_pb2.NodeHello(hostname="h"))
            assert "hello.node_id" in (await nameless.recv()).error.message
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await nameless.recv()
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "missing node id" in (err.value.details() or "")
            agent.close()
        await server.stop()

    run(scenario())


def test_send_command_is_idempotent_by_id_and_resent_after_reconnect() -> None:
    async def scenario() -> None:
        server = await start(report_period_ms=1000, heartbeat_timeout_ms=10000)
        manager = server.manager
        async with grpc.aio.insecure_channel(server.address) as channel:
            agent = Agent(channel)
            await agent.hello()
            command = m.SuspendCommand("cmd-1", "vm-1")
            waiter = asyncio.create_task(manager.send_command("n1", command, timeout_s=5))
            sent = (await agent.recv()).command
            assert codec.decode_command(sent) == command
            agent.close()  # stream breaks before the result

            again = Agent(channel)
            await again.hello()
            assert (await again.recv()).command.command_id == "cmd-1"  # resent, same id
            done = m.CommandResult("cmd-1", m.CommandState.SUCCEEDED, 1.0, "paused")
            again.send(command_result=codec.encode_command_result(done))
            assert (await waiter).state is m.CommandState.SUCCEEDED

            repeat = await manager.send_command("n1", command, timeout_s=1)
            assert repeat.message == "paused"  # cached, not sent again
            again.send(heartbeat=node_pb2.Heartbeat(sequence=1))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(again.recv(), 0.3)
            again.close()
        await server.stop()

    run(scenario())


def test_commands_to_a_fenced_node_end_at_once_and_are_never_resent() -> None:
    async def scenario() -> None:
        server = await start(report_period_ms=1000, heartbeat_timeout_ms=10000)
        manager = server.manager
        async with grpc.aio.insecure_channel(server.address) as channel:
            agent = Agent(channel)
            await agent.hello()
            command = m.MigrateCommand("cmd-m", "vm-1", "qemu+tcp://n2/system")
            waiter = asyncio.create_task(manager.send_command("n1", command, timeout_s=60))
            assert (await agent.recv()).command.command_id == "cmd-m"
            agent.close()  # the node goes silent mid-command

            assert manager.fail_pending("n1", "the node failed (fenced)") == 1
            with pytest.raises(Unavailable, match=r"cmd-m.*n1.*failed \(fenced\)"):
                await asyncio.wait_for(waiter, 1)
            assert manager.fail_pending("n1", "again") == 0

            again = Agent(channel)
            await again.hello()  # back: the failed command is not sent again
            again.send(heartbeat=node_pb2.Heartbeat(sequence=1))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(again.recv(), 0.3)
            again.close()
        await server.stop()

    run(scenario())


def test_health_serving_and_unimplemented_rpcs_name_the_feature() -> None:
    async def scenario() -> None:
        server = await start()
        async with grpc.aio.insecure_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "vmgrid.v1.ClusterService", "vmgrid.v1.NodeLinkService"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.PlanReconfiguration(cluster_pb2.PlanReconfigurationRequest())
            assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED
            assert "decision loop" in (err.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetNode(cluster_pb2.GetNodeRequest(node_id="ghost"))
            assert err.value.code() is grpc.StatusCode.NOT_FOUND
            assert "'ghost'" in (err.value.details() or "")
        await server.stop()

    run(scenario())


def test_mtls_accepts_a_signed_client_and_rejects_one_without_a_certificate(
    tmp_path: Path,
) -> None:
    assert vmgridctl(["certs", "init", "--dir", str(tmp_path)]) == 0

    async def scenario() -> None:
        server_files = TlsFiles.from_dir(tmp_path, "cluster-1")
        server = ClusterServer(
            ClusterConfig(
                listen="127.0.0.1:0",
                tls_ca_file=server_files.ca_file,
                tls_cert_file=server_files.cert_file,
                tls_key_file=server_files.key_file,
            ).validate()
        )
        await server.start()
        client = channel_credentials(TlsFiles.from_dir(tmp_path, "vmgridctl"))
        async with grpc.aio.secure_channel(server.address, client) as channel:
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            assert list((await stub.ListNodes(cluster_pb2.ListNodesRequest())).nodes) == []
        no_cert = grpc.ssl_channel_credentials(
            root_certificates=Path(server_files.ca_file).read_bytes()
        )
        async with grpc.aio.secure_channel(server.address, no_cert) as channel:
            stub = cluster_pb2_grpc.ClusterServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ListNodes(cluster_pb2.ListNodesRequest(), timeout=5)
            assert err.value.code() is grpc.StatusCode.UNAVAILABLE
        await server.stop()

    run(scenario())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--insecure", "--listen", "nowhere"], "listen: 'nowhere' is not host:port"),
        (["--insecure", "--heartbeat-timeout-ms", "10"], "heartbeat_timeout_ms: 10 must exceed"),
        ([], "tls_ca_file: not set"),
        (["--certs", "/nonexistent"], "tls_ca_file: '/nonexistent/ca.crt' is not a readable"),
    ],
)
def test_bad_config_exits_2_with_one_clear_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cluster_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vmgrid-cluster: ") and message in err and "\n" not in err


def test_bad_toml_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text("insecure = true\nheartbeat_timeout = 5\n")
    assert cluster_main(["--config", str(path)]) == 2
    assert "unknown key 'heartbeat_timeout'" in capsys.readouterr().err
