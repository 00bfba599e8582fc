"""Agent-side codec: the node link's wire messages to and from `vmgrid.agents.model` values.

The agent sends hello, reports, heartbeats, lifecycle events and command results, and
receives hello acks, commands and stream errors. Each of those has both directions here,
so that a round trip can be checked in tests and the decoding side can be reused by tools.
Enum members are matched by name (``VmState.RUNNING`` <-> ``VM_STATE_RUNNING``), so a value
added to both sides needs no code here.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp
from vmgrid.agents import model
from vmgrid.agents.errors import InvalidArgument
from vmgrid.v1 import common_pb2, node_pb2

Request = node_pb2.NodeLinkServiceConnectRequest
Response = node_pb2.NodeLinkServiceConnectResponse

_E = TypeVar("_E", bound=enum.Enum)

_COMMAND_FIELDS: dict[type[Any], str] = {
    model.MigrateCommand: "migrate",
    model.AbortMigrationCommand: "abort_migration",
    model.SuspendCommand: "suspend",
    model.ResumeCommand: "resume",
    model.CreateSnapshotCommand: "create_snapshot",
    model.RevertSnapshotCommand: "revert_snapshot",
    model.DeleteSnapshotCommand: "delete_snapshot",
    model.ListSnapshotsCommand: "list_snapshots",
    model.SaveCommand: "save",
    model.RestoreCommand: "restore",
    model.DefineCommand: "define",
    model.StartCommand: "start",
    model.ShutdownCommand: "shutdown",
    model.DestroyCommand: "destroy",
    model.UndefineCommand: "undefine",
    model.PrepareDisksCommand: "prepare_disks",
}
_COMMAND_CLASSES = {name: cls for cls, name in _COMMAND_FIELDS.items()}


def _timestamp(unix_ns: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(unix_ns)
    return stamp


def _enum_to_wire(value: enum.Enum, prefix: str) -> str:
    return f"{prefix}_{value.name}"


def _enum_from_wire(wire_enum: Any, number: int, prefix: str, domain: type[_E], where: str) -> _E:
    name = wire_enum.Name(number) if number in wire_enum.values() else str(number)
    try:
        return domain[name.removeprefix(prefix + "_")]
    except KeyError:
        accepted = ", ".join(f"{prefix}_{member.name}" for member in domain)
        raise InvalidArgument(
            f"{where}: {name} is not accepted; expected one of {accepted}"
        ) from None


def _flat(message: Any, domain: type[Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Fields that have the same name and meaning on both sides."""
    return {
        f.name: getattr(message, f.name)
        for f in dataclasses.fields(domain)
        if f.name not in skip and hasattr(message, f.name)
    }


# -- agent -> manager ----------------------------------------------------------------------


def hello_to_wire(hello: model.NodeHello) -> Request:
    ident = hello.identity
    return Request(
        hello=node_pb2.NodeHello(
            node_id=ident.node_id,
            hostname=ident.hostname,
            capacity=node_pb2.NodeCapacity(**dataclasses.asdict(hello.capacity)),
            migration_uri=ident.migration_uri,
            agent_version=ident.agent_version,
            hypervisor_kind=ident.hypervisor_kind,
            simulated=ident.simulated,
            started_at=_timestamp(hello.started_at_unix_ns),
            report_period_ms=hello.report_period_ms,
            peer_uri=ident.peer_uri,
        )
    )


def hello_from_wire(wire: node_pb2.NodeHello) -> model.NodeHello:
    return model.NodeHello(
        identity=model.NodeIdentity(**_flat(wire, model.NodeIdentity)),
        capacity=model.NodeCapacity(**_flat(wire.capacity, model.NodeCapacity)),
        started_at_unix_ns=wire.started_at.ToNanoseconds(),
        report_period_ms=wire.report_period_ms,
    )


def _vm_to_wire(vm: model.VmUsage) -> node_pb2.VmUsage:
    fields = dataclasses.asdict(vm)
    fields["state"] = _enum_to_wire(vm.state, "VM_STATE")
    return node_pb2.VmUsage(**fields)


def _vm_from_wire(wire: node_pb2.VmUsage, where: str) -> model.VmUsage:
    state = _enum_from_wire(common_pb2.VmState, wire.state, "VM_STATE", model.VmState, where)
    return model.VmUsage(state=state, **_flat(wire, model.VmUsage, skip=("state",)))


def report_to_wire(report: model.NodeReport) -> Request:
    return Request(
        report=node_pb2.NodeReport(
            sent_at=_timestamp(report.sent_at_unix_ns),
            sequence=report.sequence,
            host=node_pb2.HostUsage(**dataclasses.asdict(report.host)),
            vms=[_vm_to_wire(vm) for vm in report.vms],
        )
    )


def report_from_wire(wire: node_pb2.NodeReport) -> model.NodeReport:
    return model.NodeReport(
        sent_at_unix_ns=wire.sent_at.ToNanoseconds(),
        sequence=wire.sequence,
        host=model.HostUsage(**_flat(wire.host, model.HostUsage)),
        vms=tuple(_vm_from_wire(vm, f"report.vms[{i}].state") for i, vm in enumerate(wire.vms)),
    )


def heartbeat_to_wire(beat: model.Heartbeat, degraded_reason: str = "") -> Request:
    """A heartbeat; ``degraded_reason`` (or the beat's own) says why reports are paused."""
    return Request(
        heartbeat=node_pb2.Heartbeat(
            sent_at=_timestamp(beat.sent_at_unix_ns),
            sequence=beat.sequence,
            degraded_reason=degraded_reason or beat.degraded_reason,
        )
    )


def heartbeat_from_wire(wire: node_pb2.Heartbeat) -> model.Heartbeat:
    return model.Heartbeat(
        sent_at_unix_ns=wire.sent_at.ToNanoseconds(),
        sequence=wire.sequence,
        degraded_reason=wire.degraded_reason,
    )


def lifecycle_to_wire(event: model.LifecycleEvent) -> Request:
    return Request(
        lifecycle=node_pb2.LifecycleEvent(
            at=_timestamp(event.at_unix_ns),
            kind=_enum_to_wire(event.kind, "LIFECYCLE_EVENT_KIND"),
            vm_uuid=event.vm_uuid,
            vm_name=event.vm_name,
            detail=event.detail,
            simulated=event.simulated,
        )
    )


def lifecycle_from_wire(wire: node_pb2.LifecycleEvent) -> model.LifecycleEvent:
    kind = _enum_from_wire(
        node_pb2.LifecycleEventKind,
        wire.kind,
        "LIFECYCLE_EVENT_KIND",
        model.LifecycleEventKind,
        "lifecycle.kind",
    )
    return model.LifecycleEvent(
        at_unix_ns=wire.at.ToNanoseconds(),
        kind=kind,
        **_flat(wire, model.LifecycleEvent, skip=("kind", "at_unix_ns")),
    )


def result_to_wire(result: model.CommandResult) -> Request:
    fields = dataclasses.asdict(result)
    fields["state"] = _enum_to_wire(result.state, "COMMAND_STATE")
    fields["updated_at"] = _timestamp(fields.pop("updated_at_unix_ns"))
    fields["snapshot_names"] = list(result.snapshot_names)
    return Request(command_result=node_pb2.CommandResult(**fields))


def result_from_wire(wire: node_pb2.CommandResult) -> model.CommandResult:
    state = _enum_from_wire(
        common_pb2.CommandState, wire.state, "COMMAND_STATE", model.CommandState, "state"
    )
    fields = _flat(wire, model.CommandResult, skip=("state", "snapshot_names"))
    return model.CommandResult(
        state=state,
        snapshot_names=tuple(wire.snapshot_names),
        updated_at_unix_ns=wire.updated_at.ToNanoseconds(),
        **fields,
    )


# -- manager -> agent ----------------------------------------------------------------------


def command_to_wire(command: model.Command) -> Response:
    name = _COMMAND_FIELDS[type(command)]
    body = {k: v for k, v in dataclasses.asdict(command).items() if k != "command_id"}
    wire = node_pb2.NodeCommand(command_id=command.command_id, **{name: body})
    return Response(command=wire)


def command_from_wire(wire: node_pb2.NodeCommand) -> model.Command:
    """Decode a command; a kind this agent does not know is an InvalidArgument."""
    kind = wire.WhichOneof("kind")
    if kind is None or kind not in _COMMAND_CLASSES:
        raise InvalidArgument(f"command {wire.command_id!r} has no kind this agent knows")
    if not wire.command_id:
        raise InvalidArgument(f"{kind} command has an empty command_id; an id is required")
    cls = _COMMAND_CLASSES[kind]
    body = getattr(wire, kind)
    command: model.Command = cls(command_id=wire.command_id, **_flat(body, cls, ("command_id",)))
    return command


def hello_ack_to_wire(ack: model.HelloAck) -> Response:
    return Response(hello_ack=node_pb2.HelloAck(**dataclasses.asdict(ack)))


def hello_ack_from_wire(wire: node_pb2.HelloAck) -> model.HelloAck:
    return model.HelloAck(**_flat(wire, model.HelloAck))


def stream_error_to_wire(error: model.StreamError) -> Response:
    return Response(error=node_pb2.StreamError(**dataclasses.asdict(error)))


def stream_error_from_wire(wire: node_pb2.StreamError) -> model.StreamError:
    return model.StreamError(**_flat(wire, model.StreamError))


Incoming = model.HelloAck | model.Command | model.StreamError


def response_from_wire(wire: Response) -> Incoming | None:
    """Decode what the manager sent; None for an empty message (ignored)."""
    which = wire.WhichOneof("payload")
    if which == "hello_ack":
        return hello_ack_from_wire(wire.hello_ack)
    if which == "command":
        return command_from_wire(wire.command)
    if which == "error":
        return stream_error_from_wire(wire.error)
    return None
