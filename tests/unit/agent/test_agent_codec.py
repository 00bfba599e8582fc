"""The agent's codec: every message it sends or receives survives a trip over the wire."""

from __future__ import annotations

import pytest
from vmgrid.agents import model
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.errors import InvalidArgument
from vmgrid.v1 import node_pb2

NS = 1_700_000_000_123_456_789


def wire_trip(
    request: node_pb2.NodeLinkServiceConnectRequest,
) -> node_pb2.NodeLinkServiceConnectRequest:
    return node_pb2.NodeLinkServiceConnectRequest.FromString(request.SerializeToString())


def test_hello_round_trip() -> None:
    hello = model.NodeHello(
        identity=model.NodeIdentity("n1", "host1", "qemu+tcp://h/system", "0.1", "test", True),
        capacity=model.NodeCapacity(32_000, 64 << 30, 10_000_000_000),
        started_at_unix_ns=NS,
        report_period_ms=1000,
    )
    assert codec.hello_from_wire(wire_trip(codec.hello_to_wire(hello)).hello) == hello


def test_report_round_trip_keeps_every_vm_field() -> None:
    vm = model.VmUsage(
        "u1", "vm1", model.VmState.PAUSED, 4, 1500, 1 << 29, 1 << 30, 10, 20, 30, 40, True
    )
    report = model.NodeReport(NS, 7, model.HostUsage(2000, 3 << 30, 8 << 30, 5, 6), (vm,))
    assert codec.report_from_wire(wire_trip(codec.report_to_wire(report)).report) == report


def test_heartbeat_and_lifecycle_round_trip() -> None:
    beat = model.Heartbeat(NS, 3)
    event = model.LifecycleEvent(NS, model.LifecycleEventKind.MIGRATED, "u1", "vm1", "in", True)
    assert codec.heartbeat_from_wire(wire_trip(codec.heartbeat_to_wire(beat)).heartbeat) == beat
    assert codec.lifecycle_from_wire(wire_trip(codec.lifecycle_to_wire(event)).lifecycle) == event


def test_command_result_round_trip() -> None:
    result = model.CommandResult(
        "c1", model.CommandState.FAILED, 0.5, "no", True, 1, 2, ("s1", "s2"), "u1", NS
    )
    back = codec.result_from_wire(wire_trip(codec.result_to_wire(result)).command_result)
    assert back == result


@pytest.mark.parametrize(
    "command",
    [
        model.MigrateCommand("c1", "u1", "qemu+tcp://b/system", 8_000_000, True, True, False),
        model.StartCommand("c2", "u1"),
        model.DefineCommand("c3", "<domain/>"),
        model.RestoreCommand("c4", "/var/save/u1"),
        model.CreateSnapshotCommand("c5", "u1", "before", "text"),
    ],
)
def test_commands_round_trip(command: model.Command) -> None:
    wire = node_pb2.NodeLinkServiceConnectResponse.FromString(
        codec.command_to_wire(command).SerializeToString()
    )
    assert codec.response_from_wire(wire) == command


def test_hello_ack_and_stream_error_round_trip() -> None:
    ack = model.HelloAck("c1", "0.1", 1000, 5000, True)
    error = model.StreamError("bad cpu", "report.vms[0].cpu_used_millicores", 4)
    assert codec.response_from_wire(codec.hello_ack_to_wire(ack)) == ack
    assert codec.response_from_wire(codec.stream_error_to_wire(error)) == error


def test_command_without_kind_or_id_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="no kind"):
        codec.command_from_wire(node_pb2.NodeCommand(command_id="c1"))
    with pytest.raises(InvalidArgument, match="empty command_id"):
        codec.command_from_wire(node_pb2.NodeCommand(start=node_pb2.StartCommand(vm_uuid="u")))


def test_unspecified_vm_state_is_rejected_with_the_field() -> None:
    wire = node_pb2.NodeReport(vms=[node_pb2.VmUsage(uuid="u1")])
    with pytest.raises(InvalidArgument, match=r"report\.vms\[0\]\.state: VM_STATE_UNSPECIFIED"):
        codec.report_from_wire(wire)


def test_outbox_gives_back_what_a_dead_stream_took() -> None:
    import asyncio

    from vmgrid.agents import model
    from vmgrid.agents.node.rpc import Outbox

    async def scenario() -> None:
        outbox = Outbox()
        report = model.NodeReport(1, 1, model.HostUsage(0, 0, 1))
        result = model.CommandResult("c1", model.CommandState.SUCCEEDED)
        outbox.put(result)
        outbox.put_report(report)
        taken = await outbox.get(0.1)
        outbox.unget(taken)  # type: ignore[arg-type]
        assert await outbox.get(0.1) == result
        taken = await outbox.get(0.1)
        outbox.unget(taken)  # type: ignore[arg-type]
        assert await outbox.get(0.1) == report

    asyncio.run(scenario())


def test_a_report_put_in_order_precedes_the_result_after_it_and_drops_the_older_one() -> None:
    import asyncio

    from vmgrid.agents import model
    from vmgrid.agents.node.rpc import Outbox

    async def scenario() -> None:
        outbox = Outbox()
        before = model.NodeReport(1, 0, model.HostUsage(0, 0, 1))
        after = model.NodeReport(2, 0, model.HostUsage(5, 0, 1))
        result = model.CommandResult("c1", model.CommandState.SUCCEEDED)
        outbox.put_report(before)
        outbox.put(after)
        outbox.put(result)
        assert [await outbox.get(0.1) for _ in range(3)] == [after, result, None]
        outbox.put(after)
        outbox.put(result)
        taken = await outbox.get(0.1)
        outbox.unget(taken)  # type: ignore[arg-type]  # a reconnect keeps the order
        assert [await outbox.get(0.1) for _ in range(2)] == [after, result]

    asyncio.run(scenario())
