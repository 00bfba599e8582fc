"""Node link codec, manager -> agent: hello acks, stream errors and commands, both ways.

Encoding a command checks it first (UnencodableCommand names the field), so that one bad
command fails its caller and never ends the stream other commands travel on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from vmgrid.agents import model as m
from vmgrid.agents.errors import MalformedMessage
from vmgrid.v1 import node_pb2

# ---- manager -> agent ---------------------------------------------------------------------


def encode_hello_ack(ack: m.HelloAck) -> node_pb2.NodeLinkServiceConnectResponse:
    """Wrap a hello ack for the stream."""
    return node_pb2.NodeLinkServiceConnectResponse(
        hello_ack=node_pb2.HelloAck(
            cluster_id=ack.cluster_id,
            manager_version=ack.manager_version,
            report_period_ms=ack.report_period_ms,
            heartbeat_timeout_ms=ack.heartbeat_timeout_ms,
            known_node=ack.known_node,
            term=ack.term,
        )
    )


def decode_hello_ack(msg: node_pb2.HelloAck) -> m.HelloAck:
    """Convert a hello ack (agent side)."""
    return m.HelloAck(
        msg.cluster_id,
        msg.manager_version,
        msg.report_period_ms,
        msg.heartbeat_timeout_ms,
        msg.known_node,
        msg.term,
    )


def decode_stream_error(msg: node_pb2.StreamError) -> m.StreamError:
    """Convert a rejection notice (agent side)."""
    return m.StreamError(msg.message, msg.field, msg.sequence)


def encode_stream_error(error: m.StreamError) -> node_pb2.NodeLinkServiceConnectResponse:
    """Wrap a rejection notice for the stream."""
    return node_pb2.NodeLinkServiceConnectResponse(
        error=node_pb2.StreamError(
            message=error.message, field=error.field, sequence=error.sequence
        )
    )


_COMMAND_FIELD: dict[type, tuple[str, type]] = {
    m.MigrateCommand: ("migrate", node_pb2.MigrateCommand),
    m.AbortMigrationCommand: ("abort_migration", node_pb2.AbortMigrationCommand),
    m.SuspendCommand: ("suspend", node_pb2.SuspendCommand),
    m.ResumeCommand: ("resume", node_pb2.ResumeCommand),
    m.CreateSnapshotCommand: ("create_snapshot", node_pb2.CreateSnapshotCommand),
    m.RevertSnapshotCommand: ("revert_snapshot", node_pb2.RevertSnapshotCommand),
    m.DeleteSnapshotCommand: ("delete_snapshot", node_pb2.DeleteSnapshotCommand),
    m.ListSnapshotsCommand: ("list_snapshots", node_pb2.ListSnapshotsCommand),
    m.SaveCommand: ("save", node_pb2.SaveCommand),
    m.RestoreCommand: ("restore", node_pb2.RestoreCommand),
    m.DefineCommand: ("define", node_pb2.DefineCommand),
    m.StartCommand: ("start", node_pb2.StartCommand),
    m.ShutdownCommand: ("shutdown", node_pb2.ShutdownCommand),
    m.DestroyCommand: ("destroy", node_pb2.DestroyCommand),
    m.UndefineCommand: ("undefine", node_pb2.UndefineCommand),
    m.PrepareDisksCommand: ("prepare_disks", node_pb2.PrepareDisksCommand),
}
_COMMAND_FROM_FIELD = {name: (domain, wire) for domain, (name, wire) in _COMMAND_FIELD.items()}


class UnencodableCommand(MalformedMessage, ValueError):
    """A command built by the manager's own code has a value its wire message cannot hold.

    Raised before anything is queued on a node's stream, so that one bad command fails its
    caller and never ends the stream the node's other commands and reports travel on.
    """


_EXPECTED_BY_CPP_TYPE = {
    FieldDescriptor.CPPTYPE_STRING: "a string",
    FieldDescriptor.CPPTYPE_BOOL: "true or false",
    FieldDescriptor.CPPTYPE_DOUBLE: "a number",
    FieldDescriptor.CPPTYPE_FLOAT: "a number",
    FieldDescriptor.CPPTYPE_ENUM: "an enum number",
    FieldDescriptor.CPPTYPE_MESSAGE: "a message",
}


def encode_command(command: m.Command) -> node_pb2.NodeCommand:
    """Convert a domain command; the wire message's fields mirror the dataclass fields.

    Raises UnencodableCommand naming the field, its value and the accepted type, instead of
    protobuf's TypeError or ValueError.
    """
    entry = _COMMAND_FIELD.get(type(command))
    if entry is None:
        accepted = ", ".join(sorted(name for name, _ in _COMMAND_FIELD.values()))
        raise UnencodableCommand(
            "command", f"{command!r} is not a node command; accepted: {accepted}"
        )
    name, wire_type = entry
    if not isinstance(command.command_id, str) or not command.command_id:
        raise UnencodableCommand(
            "command.command_id", f"{command.command_id!r} must be a non-empty string"
        )
    fields = {f: getattr(command, f) for f in command.__dataclass_fields__ if f != "command_id"}
    try:
        body = wire_type(**fields)
    except (TypeError, ValueError):
        raise _bad_command_field(command, name, wire_type, fields) from None
    return node_pb2.NodeCommand(command_id=command.command_id, **{name: body})


def _bad_command_field(
    command: m.Command, name: str, wire_type: Any, fields: dict[str, Any]
) -> UnencodableCommand:
    """The error naming the first field protobuf refuses on its own."""
    for field, value in fields.items():
        try:
            wire_type(**{field: value})
        except (TypeError, ValueError):
            descriptor = wire_type.DESCRIPTOR.fields_by_name[field]
            expected = _EXPECTED_BY_CPP_TYPE.get(descriptor.cpp_type, "an integer in range")
            return UnencodableCommand(
                f"command.{name}.{field}",
                f"{value!r} ({type(value).__name__}) must be {expected} "
                f"(command {command.command_id!r})",
            )
    return UnencodableCommand(f"command.{name}", f"cannot encode {command!r}")


def decode_command(msg: node_pb2.NodeCommand) -> m.Command:
    """Convert a wire command back to its dataclass (the agent; tests, simulated agents)."""
    kind = msg.WhichOneof("kind")
    entry = _COMMAND_FROM_FIELD.get(kind) if kind is not None else None
    if entry is None:
        accepted = ", ".join(sorted(_COMMAND_FROM_FIELD))
        raise MalformedMessage(
            "command.kind",
            f"command {msg.command_id!r} has no kind this node knows ({kind}); "
            f"accepted: {accepted}",
        )
    if not msg.command_id:
        raise MalformedMessage(
            "command.command_id", f"{kind} command has an empty command_id; an id is required"
        )
    domain_type, _ = entry
    body = getattr(msg, kind)
    names = [f.name for f in dataclasses.fields(domain_type) if f.name != "command_id"]
    fields = {name: getattr(body, name) for name in names}
    return domain_type(command_id=msg.command_id, **fields)  # type: ignore[no-any-return]


def encode_command_message(
    command: m.Command, term: int = 0
) -> node_pb2.NodeLinkServiceConnectResponse:
    """Wrap a command for the stream, with the sender's leadership term (0: single replica)."""
    wire = encode_command(command)
    wire.term = term
    return node_pb2.NodeLinkServiceConnectResponse(command=wire)


def command_term(msg: node_pb2.NodeLinkServiceConnectResponse) -> int:
    """The leadership term a command message carries (0 for any other message)."""
    return msg.command.term if msg.WhichOneof("payload") == "command" else 0
