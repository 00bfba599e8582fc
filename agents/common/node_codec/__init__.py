"""The node link's one codec: node.proto messages <-> vmgrid.agents.model, for both sides.

The cluster manager decodes hellos, reports, heartbeats, lifecycle events and command results
and encodes hello acks, commands and stream errors; the node agent does the reverse, through
the envelope functions here (``hello_to_wire``, ``response_from_wire``...), which wrap the same
encoders and decoders. ClusterService reuses the VM-state and command-result parts. Import this
package; ``reports`` holds the agent -> manager messages, ``columns`` the reports' columnar
form (with the ingest hot path, ``ReportDecoder``) and ``commands`` the manager -> agent ones. Decoding validates: every
rejected value raises MalformedMessage naming the field path and what is accepted.
"""

from __future__ import annotations

import dataclasses

from vmgrid.agents import model as m
from vmgrid.agents.common.node_codec.columns import ReportDecoder as ReportDecoder
from vmgrid.agents.common.node_codec.columns import ReportEncoder as ReportEncoder
from vmgrid.agents.common.node_codec.columns import columns_of as columns_of
from vmgrid.agents.common.node_codec.columns import decode_report as decode_report
from vmgrid.agents.common.node_codec.columns import decode_report_rows as decode_report_rows
from vmgrid.agents.common.node_codec.commands import (
    UnencodableCommand as UnencodableCommand,
)
from vmgrid.agents.common.node_codec.commands import (
    command_term as command_term,
)
from vmgrid.agents.common.node_codec.commands import (
    decode_command as decode_command,
)
from vmgrid.agents.common.node_codec.commands import (
    decode_hello_ack as decode_hello_ack,
)
from vmgrid.agents.common.node_codec.commands import (
    decode_stream_error as decode_stream_error,
)
from vmgrid.agents.common.node_codec.commands import (
    encode_command as encode_command,
)
from vmgrid.agents.common.node_codec.commands import (
    encode_command_message as encode_command_message,
)
from vmgrid.agents.common.node_codec.commands import (
    encode_hello_ack as encode_hello_ack,
)
from vmgrid.agents.common.node_codec.commands import (
    encode_stream_error as encode_stream_error,
)
from vmgrid.agents.common.node_codec.pressure import decode_pressure as decode_pressure
from vmgrid.agents.common.node_codec.pressure import encode_pressure as encode_pressure
from vmgrid.agents.common.node_codec.reports import (
    decode_command_result as decode_command_result,
)
from vmgrid.agents.common.node_codec.reports import decode_heartbeat as decode_heartbeat
from vmgrid.agents.common.node_codec.reports import decode_hello as decode_hello
from vmgrid.agents.common.node_codec.reports import decode_lifecycle as decode_lifecycle
from vmgrid.agents.common.node_codec.reports import (
    encode_command_result as encode_command_result,
)
from vmgrid.agents.common.node_codec.reports import encode_heartbeat as encode_heartbeat
from vmgrid.agents.common.node_codec.reports import encode_hello as encode_hello
from vmgrid.agents.common.node_codec.reports import encode_host_usage as encode_host_usage
from vmgrid.agents.common.node_codec.reports import encode_lifecycle as encode_lifecycle
from vmgrid.agents.common.node_codec.reports import encode_report as encode_report
from vmgrid.agents.common.node_codec.reports import encode_vm_usage as encode_vm_usage
from vmgrid.agents.common.node_codec.reports import set_timestamp_ns as set_timestamp_ns
from vmgrid.agents.common.node_codec.reports import vm_state_from_wire as vm_state_from_wire
from vmgrid.agents.common.node_codec.reports import vm_state_to_wire as vm_state_to_wire
from vmgrid.v1 import node_pb2

# ---- the agent's envelopes: one stream message each way ----------------------------------

Request = node_pb2.NodeLinkServiceConnectRequest
Response = node_pb2.NodeLinkServiceConnectResponse
Incoming = m.HelloAck | m.Command | m.StreamError


def hello_to_wire(hello: m.NodeHello) -> Request:
    return Request(hello=encode_hello(hello))


def report_to_wire(report: m.NodeReport, encoder: ReportEncoder | None = None) -> Request:
    """A report in columns; a stream's own `encoder` lists the VMs only when they change."""
    return Request(report=(encoder or ReportEncoder()).encode(report))


def heartbeat_to_wire(beat: m.Heartbeat, degraded_reason: str = "") -> Request:
    """A heartbeat; ``degraded_reason`` (or the beat's own) says why reports are paused."""
    if degraded_reason:
        beat = dataclasses.replace(beat, degraded_reason=degraded_reason)
    return Request(heartbeat=encode_heartbeat(beat))


def lifecycle_to_wire(event: m.LifecycleEvent) -> Request:
    return Request(lifecycle=encode_lifecycle(event))


def result_to_wire(result: m.CommandResult) -> Request:
    return Request(command_result=encode_command_result(result))


hello_from_wire = decode_hello
report_from_wire = decode_report
heartbeat_from_wire = decode_heartbeat
lifecycle_from_wire = decode_lifecycle
result_from_wire = decode_command_result
command_to_wire = encode_command_message
command_from_wire = decode_command
hello_ack_to_wire = encode_hello_ack
hello_ack_from_wire = decode_hello_ack
stream_error_to_wire = encode_stream_error
stream_error_from_wire = decode_stream_error


def response_from_wire(wire: Response) -> Incoming | None:
    """Decode what the manager sent; None for an empty message (ignored)."""
    which = wire.WhichOneof("payload")
    if which == "hello_ack":
        return decode_hello_ack(wire.hello_ack)
    if which == "command":
        return decode_command(wire.command)
    if which == "error":
        return decode_stream_error(wire.error)
    return None
