"""Malformed traffic on the node link hurts only its sender, never the manager or other agents.

A real ClusterServer on 127.0.0.1 and real gRPC streams playing agents: a report before the
hello, a negative figure, an unknown VM state from one agent while another keeps reporting,
and a wrongly typed command from the manager's own side, which must fail its caller and leave
the stream (and the commands behind it) working.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import grpc
import grpc.aio
import pytest
from node_link_harness import StreamAgent
from vmgrid.agents import model as m
from vmgrid.agents.cluster.service.config import ClusterConfig
from vmgrid.agents.cluster.service.server import ClusterServer
from vmgrid.agents.common import node_codec as codec
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, node_pb2


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"{check.__name__} never held"
        await asyncio.sleep(0.02)


def run(scenario: Callable[[ClusterServer, grpc.aio.Channel], Awaitable[None]]) -> None:
    async def main() -> None:
        config = ClusterConfig(
            listen="127.0.0.1:0", insecure=True, report_period_ms=1000, heartbeat_timeout_ms=10_000
        )
        server = ClusterServer(config.validate())
        await server.start()
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                await scenario(server, channel)
        finally:
            await server.stop(grace_s=0)

    asyncio.run(asyncio.wait_for(main(), 30))


async def vms_by_node(channel: grpc.aio.Channel) -> dict[str, list[str]]:
    stub = cluster_pb2_grpc.ClusterServiceStub(channel)
    reply = await stub.ListVms(cluster_pb2.ListVmsRequest())
    placed: dict[str, list[str]] = {}
    for vm in reply.vms:
        placed.setdefault(vm.node_id, []).append(vm.usage.uuid)
    return {node: sorted(uuids) for node, uuids in placed.items()}


def test_report_before_hello_is_refused_naming_the_payload_and_others_keep_going() -> None:
    async def scenario(server: ClusterServer, channel: grpc.aio.Channel) -> None:
        good = StreamAgent(channel, "good")
        await good.hello()
        good.report("g1")
        rude = StreamAgent(channel, "rude")
        rude.report("r1")  # no hello first
        error = (await rude.recv()).error
        assert error.field == "payload"
        assert "first message is report; it must be a hello" in error.message
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await rude.recv()
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT

        good.report("g1", "g2")

        async def good_reports_still_land() -> bool:
            return await vms_by_node(channel) == {"good": ["g1", "g2"]}

        await eventually(good_reports_still_land)
        assert "rude" not in {view.node_id for view in server.manager.state.views()}
        good.close()

    run(scenario)


def test_bad_figures_from_one_agent_leave_its_state_and_the_other_agents_untouched() -> None:
    async def scenario(server: ClusterServer, channel: grpc.aio.Channel) -> None:
        first, second = StreamAgent(channel, "first"), StreamAgent(channel, "second")
        await first.hello()
        await second.hello()
        first.report("a1")
        second.report("b1")

        async def both_listed() -> bool:
            return await vms_by_node(channel) == {"first": ["a1"], "second": ["b1"]}

        await eventually(both_listed)
        negative = first.report_msg("a1", "a2")
        negative.host.memory_used_bytes = -1
        first.send(report=negative)
        error = (await first.recv()).error
        assert error.field == "report.host.memory_used_bytes" and "-1" in error.message
        unknown = first.report_msg("a1", "a2")
        unknown.vms[0].state = 42  # type: ignore[assignment]
        first.send(report=unknown)
        error = (await first.recv()).error
        assert error.field == "report.vms[0].state" and "unknown VM state 42" in error.message
        bad_mac = first.report_msg("a1", "a2")
        bad_mac.traffic.available = True
        bad_mac.traffic.window_ms = 1000
        bad_mac.traffic.flows.add(src_mac="zz", dst_mac="52:54:00:00:00:01", bytes_per_second=1)
        first.send(report=bad_mac)
        error = (await first.recv()).error
        assert error.field == "report.traffic.flows[0].src_mac" and "'zz'" in error.message

        second.report("b1", "b2")
        first.send(heartbeat=node_pb2.Heartbeat(sequence=1))  # its stream is still open

        async def second_moved_on_first_kept() -> bool:
            return await vms_by_node(channel) == {"first": ["a1"], "second": ["b1", "b2"]}

        await eventually(second_moved_on_first_kept)
        first.report("a1", "a2")  # a good report after bad ones is taken as usual

        async def first_recovered() -> bool:
            return (await vms_by_node(channel)).get("first") == ["a1", "a2"]

        await eventually(first_recovered)
        first.close()
        second.close()

    run(scenario)


def test_wrongly_typed_command_fails_its_caller_and_the_stream_carries_the_next_one() -> None:
    async def scenario(server: ClusterServer, channel: grpc.aio.Channel) -> None:
        agent = StreamAgent(channel, "n1")
        await agent.hello()
        bad = m.MigrateCommand("cmd-bad", "vm-1", "qemu:///x", bandwidth_cap_bps="fast")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"command\.migrate\.bandwidth_cap_bps: 'fast'"):
            await server.manager.send_command("n1", bad, timeout_s=5)

        good = m.SuspendCommand("cmd-good", "vm-1")
        waiter = asyncio.create_task(server.manager.send_command("n1", good, timeout_s=5))
        sent = (await agent.recv()).command
        assert codec.decode_command(sent) == good  # the bad one never reached the stream
        done = m.CommandResult("cmd-good", m.CommandState.SUCCEEDED, 1.0, "paused")
        agent.send(command_result=codec.encode_command_result(done))
        assert (await waiter).state is m.CommandState.SUCCEEDED
        agent.close()

    run(scenario)
