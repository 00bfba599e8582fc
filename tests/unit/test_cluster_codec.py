"""Manager-side codec: round trips and validation of agent messages."""

from __future__ import annotations

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.errors import MalformedMessage
from vmgrid.v1 import node_pb2


def make_vm(uuid: str = "vm-1", state: m.VmState = m.VmState.RUNNING) -> m.VmUsage:
    return m.VmUsage(
        uuid, f"name-{uuid}", state, 2, 1500, 512 * 2**20, 1024 * 2**20, 10, 20, 30, 40
    )


def make_report(*vms: m.VmUsage, sequence: int = 7) -> m.NodeReport:
    host = m.HostUsage(3000, 2 * 2**30, 8 * 2**30, 1000, 2000)
    return m.NodeReport(1_700_000_000_123_456_789, sequence, host, vms)


def test_report_round_trips_through_the_wire() -> None:
    report = make_report(make_vm("a"), make_vm("b", m.VmState.PAUSED))
    wire = node_pb2.NodeReport.FromString(codec.encode_report(report).SerializeToString())
    assert codec.decode_report(wire) == report


def test_hello_round_trips() -> None:
    hello = m.NodeHello(
        m.NodeIdentity("n1", "host1", "qemu+tcp://h/system", "1.0", "test", True),
        m.NodeCapacity(8000, 16 * 2**30, 10**10),
        started_at_unix_ns=5_000_000_001,
        report_period_ms=1000,
    )
    assert codec.decode_hello(codec.encode_hello(hello)) == hello


def test_hello_without_node_id_is_rejected_naming_the_field() -> None:
    with pytest.raises(MalformedMessage, match="hello.node_id: missing node id") as err:
        codec.decode_hello(node_pb2.NodeHello(hostname="h"))
    assert err.value.field == "hello.node_id"


def test_negative_vm_usage_names_the_vm_field_and_value() -> None:
    wire = codec.encode_report(make_report(make_vm("a"), make_vm("b")))
    wire.vms[1].memory_used_bytes = -5
    with pytest.raises(
        MalformedMessage, match=r"report.vms\[1\].memory_used_bytes: negative value -5"
    ):
        codec.decode_report(wire)


def test_negative_host_usage_is_rejected() -> None:
    wire = codec.encode_report(make_report())
    wire.host.cpu_used_millicores = -1
    with pytest.raises(MalformedMessage, match="report.host.cpu_used_millicores"):
        codec.decode_report(wire)


@pytest.mark.parametrize("state", [0, 42])
def test_unknown_vm_state_lists_accepted_states(state: int) -> None:
    wire = codec.encode_report(make_report(make_vm("a")))
    wire.vms[0].state = state
    with pytest.raises(MalformedMessage, match=rf"unknown VM state {state} .*VM_STATE_RUNNING"):
        codec.decode_report(wire)


def test_duplicate_vm_uuid_is_rejected() -> None:
    wire = codec.encode_report(make_report(make_vm("a"), make_vm("a")))
    with pytest.raises(MalformedMessage, match="duplicate uuid 'a'"):
        codec.decode_report(wire)


COMMANDS: list[m.Command] = [
    m.MigrateCommand("c1", "vm", "qemu+tcp://dst/system", 10**9, True, True, False),
    m.AbortMigrationCommand("c2", "vm"),
    m.SuspendCommand("c3", "vm"),
    m.ResumeCommand("c4", "vm"),
    m.CreateSnapshotCommand("c5", "vm", "s1", "before upgrade"),
    m.RevertSnapshotCommand("c6", "vm", "s1"),
    m.DeleteSnapshotCommand("c7", "vm", "s1"),
    m.ListSnapshotsCommand("c8", "vm"),
    m.SaveCommand("c9", "vm", "/var/tmp/vm.save"),
    m.RestoreCommand("c10", "/var/tmp/vm.save"),
    m.DefineCommand("c11", "<domain/>"),
    m.StartCommand("c12", "vm"),
    m.ShutdownCommand("c13", "vm"),
    m.DestroyCommand("c14", "vm"),
    m.UndefineCommand("c15", "vm"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_every_command_kind_round_trips(command: m.Command) -> None:
    wire = codec.encode_command(command)
    assert wire.command_id == command.command_id
    assert (
        codec.decode_command(node_pb2.NodeCommand.FromString(wire.SerializeToString())) == command
    )


def test_command_result_round_trips_and_knows_when_final() -> None:
    result = m.CommandResult(
        "c1", m.CommandState.SUCCEEDED, 1.0, "done", True, 100, 0, ("s1", "s2"), "vm", 12
    )
    assert codec.decode_command_result(codec.encode_command_result(result)) == result
    assert result.is_final
    assert not m.CommandResult("c1", m.CommandState.RUNNING).is_final


def test_command_result_progress_outside_unit_interval_is_rejected() -> None:
    wire = codec.encode_command_result(m.CommandResult("c1", m.CommandState.RUNNING, 0.5))
    wire.progress_fraction = 1.5
    with pytest.raises(MalformedMessage, match=r"1.5 is not in \[0, 1\]"):
        codec.decode_command_result(wire)


def test_lifecycle_event_round_trips() -> None:
    event = m.LifecycleEvent(99, m.LifecycleEventKind.MIGRATED, "vm", "web", "live", True)
    assert codec.decode_lifecycle(codec.encode_lifecycle(event)) == event
