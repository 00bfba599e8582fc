"""Node link codec, agent -> manager: hellos, reports, heartbeats, lifecycle events and
command results, both ways, plus the VM-state and command-state tables.

Decoding validates: every rejected value raises MalformedMessage naming the field path and
what is accepted. Reports are decoded by ``columns.ReportDecoder`` (the manager's ingest hot
path), which hands reports in the per-VM form to ``decode_row_report`` here.
"""

from __future__ import annotations

from typing import Any

from vmgrid.agents import model as m
from vmgrid.agents.common.node_codec.migration_job import decode_migration_job, encode_migration_job
from vmgrid.agents.common.node_codec.pressure import (
    decode_pressure,
    decode_vm_pressure,
    encode_pressure,
    encode_vm_pressure,
)
from vmgrid.agents.common.node_codec.report_errors import (
    HOST_INT_FIELDS,
    bad_vm,
    duplicate_vm,
    out_of_range,
)
from vmgrid.agents.common.node_codec.traffic import decode_traffic, encode_traffic
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.report_rows import ReportRows, VmRow
from vmgrid.agents.traffic import TrafficMatrix
from vmgrid.agents.wire_limits import (
    MAX_CAPACITY,
    MAX_ID_CHARS,
    MAX_ITEMS,
    MAX_TEXT_CHARS,
    MAX_UNIX_SECONDS,
    check_length,
    check_range,
    check_unix_ns,
    string_limit,
)
from vmgrid.v1 import common_pb2, node_pb2

_VM_STATE_FROM_WIRE: dict[int, m.VmState] = {
    common_pb2.VM_STATE_RUNNING: m.VmState.RUNNING,
    common_pb2.VM_STATE_BLOCKED: m.VmState.BLOCKED,
    common_pb2.VM_STATE_PAUSED: m.VmState.PAUSED,
    common_pb2.VM_STATE_SHUTTING_DOWN: m.VmState.SHUTTING_DOWN,
    common_pb2.VM_STATE_SHUT_OFF: m.VmState.SHUT_OFF,
    common_pb2.VM_STATE_CRASHED: m.VmState.CRASHED,
    common_pb2.VM_STATE_PM_SUSPENDED: m.VmState.PM_SUSPENDED,
    common_pb2.VM_STATE_DEFINED: m.VmState.DEFINED,
    common_pb2.VM_STATE_MIGRATING: m.VmState.MIGRATING,
}
_VM_STATE_TO_WIRE: dict[m.VmState, Any] = {
    state: wire for wire, state in _VM_STATE_FROM_WIRE.items()
}
_ACCEPTED_VM_STATES = ", ".join(common_pb2.VmState.Name(w) for w in _VM_STATE_FROM_WIRE)

_COMMAND_STATE_FROM_WIRE: dict[int, m.CommandState] = {
    common_pb2.COMMAND_STATE_ACCEPTED: m.CommandState.ACCEPTED,
    common_pb2.COMMAND_STATE_RUNNING: m.CommandState.RUNNING,
    common_pb2.COMMAND_STATE_SUCCEEDED: m.CommandState.SUCCEEDED,
    common_pb2.COMMAND_STATE_FAILED: m.CommandState.FAILED,
}
_COMMAND_STATE_TO_WIRE: dict[m.CommandState, Any] = {
    state: wire for wire, state in _COMMAND_STATE_FROM_WIRE.items()
}

_LIFECYCLE_FROM_WIRE: dict[int, m.LifecycleEventKind] = {
    node_pb2.LIFECYCLE_EVENT_KIND_STARTED: m.LifecycleEventKind.STARTED,
    node_pb2.LIFECYCLE_EVENT_KIND_STOPPED: m.LifecycleEventKind.STOPPED,
    node_pb2.LIFECYCLE_EVENT_KIND_SUSPENDED: m.LifecycleEventKind.SUSPENDED,
    node_pb2.LIFECYCLE_EVENT_KIND_RESUMED: m.LifecycleEventKind.RESUMED,
    node_pb2.LIFECYCLE_EVENT_KIND_MIGRATED: m.LifecycleEventKind.MIGRATED,
    node_pb2.LIFECYCLE_EVENT_KIND_DEFINED: m.LifecycleEventKind.DEFINED,
    node_pb2.LIFECYCLE_EVENT_KIND_UNDEFINED: m.LifecycleEventKind.UNDEFINED,
}
_LIFECYCLE_TO_WIRE: dict[m.LifecycleEventKind, Any] = {
    kind: wire for wire, kind in _LIFECYCLE_FROM_WIRE.items()
}

_NO_PRESSURE = m.NO_PRESSURE


def _ns(timestamp: object, path: str = "sent_at") -> int:
    """Unix nanoseconds of a Timestamp between 1970 and 2100; MalformedMessage otherwise."""
    seconds, nanos = timestamp.seconds, timestamp.nanos  # type: ignore[attr-defined]
    if 0 <= seconds <= MAX_UNIX_SECONDS and 0 <= nanos < 1_000_000_000:
        return seconds * 1_000_000_000 + nanos  # type: ignore[no-any-return]
    return check_unix_ns(path, seconds, nanos)


def set_timestamp_ns(timestamp: object, unix_ns: int) -> None:
    timestamp.seconds, timestamp.nanos = divmod(unix_ns, 1_000_000_000)  # type: ignore[attr-defined]


# ---- agent -> manager ---------------------------------------------------------------------


def decode_hello(msg: node_pb2.NodeHello) -> m.NodeHello:
    """Validate and convert a hello; node_id is required and capacity must be positive."""
    if not msg.node_id.strip():
        raise MalformedMessage("hello.node_id", "missing node id; a non-empty string is required")
    for name in ("node_id", "hostname", "migration_uri", "agent_version", "hypervisor_kind"):
        check_length(f"hello.{name}", getattr(msg, name), string_limit(name))
    check_length("hello.peer_uri", msg.peer_uri, string_limit("peer_uri"))
    cap = msg.capacity
    for name in ("cpu_millicores", "memory_bytes", "nic_bandwidth_bps"):
        value = getattr(cap, name)
        if value < 0:
            raise MalformedMessage(f"hello.capacity.{name}", f"negative value {value}")
        if value > MAX_CAPACITY:
            raise MalformedMessage(
                f"hello.capacity.{name}",
                f"{value} is above the largest capacity accepted, {MAX_CAPACITY} (2**50)",
            )
    if not 0 <= msg.report_period_ms <= 86_400_000:
        raise MalformedMessage(
            "hello.report_period_ms", f"{msg.report_period_ms} is not in [0, 86400000]"
        )
    return m.NodeHello(
        identity=m.NodeIdentity(
            node_id=msg.node_id,
            hostname=msg.hostname,
            migration_uri=msg.migration_uri,
            agent_version=msg.agent_version,
            hypervisor_kind=msg.hypervisor_kind,
            simulated=msg.simulated,
            peer_uri=msg.peer_uri,
        ),
        capacity=m.NodeCapacity(cap.cpu_millicores, cap.memory_bytes, cap.nic_bandwidth_bps),
        started_at_unix_ns=_ns(msg.started_at, "hello.started_at"),
        report_period_ms=msg.report_period_ms,
    )


def decode_host(h: node_pb2.HostUsage) -> m.HostUsage:
    """Validate and convert a report's host usage (``report.host``)."""
    host = m.HostUsage(
        h.cpu_used_millicores,
        h.memory_used_bytes,
        h.memory_total_bytes,
        h.net_rx_bytes_per_second,
        h.net_tx_bytes_per_second,
        decode_pressure("report.host.pressure", h.pressure)
        if h.HasField("pressure")
        else _NO_PRESSURE,
    )
    host_figures = (
        host.cpu_used_millicores,
        host.memory_used_bytes,
        host.memory_total_bytes,
        host.net_rx_bytes_per_second,
        host.net_tx_bytes_per_second,
    )
    if min(host_figures) < 0 or max(host_figures) > MAX_CAPACITY:
        raise out_of_range("report.host", h, HOST_INT_FIELDS)
    return host


def decode_row_report(msg: node_pb2.NodeReport) -> ReportRows:
    """Validate and convert a report whose VMs come one message each (``vms``, as agents
    before #17 send them): each wire field is read once, one sign check per VM, and no object
    is built per VM but its row. Reports in columns: ``columns.ReportDecoder``."""
    host = decode_host(msg.host)
    if len(msg.vms) > MAX_ITEMS:
        raise MalformedMessage("report.vms", f"{len(msg.vms)} VMs; at most {MAX_ITEMS}")
    top, longest = MAX_CAPACITY, MAX_ID_CHARS
    sent = _ns(msg.sent_at, "report.sent_at")
    states = _VM_STATE_FROM_WIRE
    rows: list[VmRow] = []
    uuids: list[str] = []
    vm_states: list[m.VmState] = []
    samples: list[int] = []
    for v in msg.vms:
        uuid = v.uuid
        state = states.get(v.state)
        vcpus, cpu = v.vcpus, v.cpu_used_millicores
        mem_used, mem_alloc = v.memory_used_bytes, v.memory_allocated_bytes
        rx, tx = v.net_rx_bytes_per_second, v.net_tx_bytes_per_second
        rd, wr = v.disk_read_bytes_per_second, v.disk_write_bytes_per_second
        res, dirty = v.memory_resident_bytes, v.memory_dirty_bytes_per_second
        dset = v.memory_dirty_set_bytes
        ored = vcpus | cpu | mem_used | mem_alloc | rx | tx | rd | wr | res | dirty | dset
        figures = (vcpus, cpu, mem_used, mem_alloc, rx, tx, rd, wr)
        if (
            state is None
            or not uuid
            or ored < 0
            or (ored > top and max(*figures, res, dirty, dset) > top)
            or len(uuid) > longest
            or len(v.name) > longest
        ):
            raise bad_vm(len(rows), v, states, _ACCEPTED_VM_STATES)
        rows.append((uuid, v.name, state, *figures, v.simulated, res, dirty, dset))
        uuids.append(uuid)
        vm_states.append(state)
        samples += (sent, cpu, mem_used, rx, tx)
    if len(set(uuids)) != len(uuids):
        raise duplicate_vm(uuids)
    pressure, traffic = decode_report_extras(msg)
    vms = tuple(uuids), tuple(vm_states), tuple(rows)
    return ReportRows(sent, msg.sequence, host, *vms, samples, pressure, traffic)


def decode_report_extras(
    msg: node_pb2.NodeReport,
) -> tuple[tuple[m.VmPressure, ...], TrafficMatrix | None]:
    """A report's VM pressure and traffic, both forms."""
    pressure = decode_vm_pressure(msg.vm_pressure) if msg.vm_pressure else ()
    traffic = decode_traffic("report.traffic", msg.traffic) if msg.HasField("traffic") else None
    return pressure, traffic


def encode_heartbeat(beat: m.Heartbeat) -> node_pb2.Heartbeat:
    """Convert a heartbeat (the inverse of decode_heartbeat)."""
    reason = beat.degraded_reason[:MAX_TEXT_CHARS]  # a long libvirt error must not cut the link
    msg = node_pb2.Heartbeat(sequence=beat.sequence, degraded_reason=reason)
    set_timestamp_ns(msg.sent_at, beat.sent_at_unix_ns)
    return msg


def decode_heartbeat(msg: node_pb2.Heartbeat) -> m.Heartbeat:
    """Convert a heartbeat (with why the agent is degraded, empty when healthy)."""
    check_length("heartbeat.degraded_reason", msg.degraded_reason, string_limit("degraded_reason"))
    return m.Heartbeat(_ns(msg.sent_at, "heartbeat.sent_at"), msg.sequence, msg.degraded_reason)


def decode_lifecycle(msg: node_pb2.LifecycleEvent) -> m.LifecycleEvent:
    """Validate and convert a lifecycle event."""
    kind = _LIFECYCLE_FROM_WIRE.get(msg.kind)
    if kind is None:
        accepted = ", ".join(node_pb2.LifecycleEventKind.Name(k) for k in _LIFECYCLE_FROM_WIRE)
        raise MalformedMessage("lifecycle.kind", f"unknown kind {msg.kind}; accepted: {accepted}")
    if not msg.vm_uuid:
        raise MalformedMessage("lifecycle.vm_uuid", "missing VM uuid")
    for name in ("vm_uuid", "vm_name", "detail"):
        check_length(f"lifecycle.{name}", getattr(msg, name), string_limit(name))
    return m.LifecycleEvent(
        _ns(msg.at, "lifecycle.at"), kind, msg.vm_uuid, msg.vm_name, msg.detail, msg.simulated
    )


def decode_command_result(msg: node_pb2.CommandResult) -> m.CommandResult:
    """Validate and convert a command result."""
    if not msg.command_id:
        raise MalformedMessage("command_result.command_id", "missing command id")
    for name in ("command_id", "message", "vm_uuid"):
        check_length(f"command_result.{name}", getattr(msg, name), string_limit(name))
    if len(msg.snapshot_names) > MAX_ITEMS:
        raise MalformedMessage(
            "command_result.snapshot_names", f"{len(msg.snapshot_names)} names; at most {MAX_ITEMS}"
        )
    for name in ("data_processed_bytes", "data_remaining_bytes"):
        check_range(f"command_result.{name}", getattr(msg, name), 0, MAX_CAPACITY)
    state = _COMMAND_STATE_FROM_WIRE.get(msg.state)
    if state is None:
        raise MalformedMessage(
            "command_result.state",
            f"unknown command state {msg.state}; accepted: ACCEPTED, RUNNING, SUCCEEDED, FAILED",
        )
    if not 0.0 <= msg.progress_fraction <= 1.0:
        raise MalformedMessage(
            "command_result.progress_fraction", f"{msg.progress_fraction} is not in [0, 1]"
        )
    return m.CommandResult(
        command_id=msg.command_id,
        state=state,
        progress_fraction=msg.progress_fraction,
        message=msg.message,
        simulated=msg.simulated,
        data_processed_bytes=msg.data_processed_bytes,
        data_remaining_bytes=msg.data_remaining_bytes,
        snapshot_names=tuple(msg.snapshot_names),
        vm_uuid=msg.vm_uuid,
        updated_at_unix_ns=_ns(msg.updated_at, "command_result.updated_at"),
        migration_job=decode_migration_job(msg),
    )


def encode_command_result(result: m.CommandResult) -> node_pb2.CommandResult:
    """Convert a command result (ClusterService responses, tests)."""
    msg = node_pb2.CommandResult(
        command_id=result.command_id,
        state=_COMMAND_STATE_TO_WIRE[result.state],
        progress_fraction=result.progress_fraction,
        message=result.message[:MAX_TEXT_CHARS],
        simulated=result.simulated,
        data_processed_bytes=result.data_processed_bytes,
        data_remaining_bytes=result.data_remaining_bytes,
        snapshot_names=list(result.snapshot_names),
        vm_uuid=result.vm_uuid,
    )
    if result.updated_at_unix_ns:
        set_timestamp_ns(msg.updated_at, result.updated_at_unix_ns)
    encode_migration_job(result.migration_job, msg)
    return msg


# ---- domain -> wire for reports (tests, simulated agents) and ClusterService ---------------


def encode_host_usage(usage: m.HostUsage) -> node_pb2.HostUsage:
    """Convert host usage."""
    msg = node_pb2.HostUsage(
        cpu_used_millicores=usage.cpu_used_millicores,
        memory_used_bytes=usage.memory_used_bytes,
        memory_total_bytes=usage.memory_total_bytes,
        net_rx_bytes_per_second=usage.net_rx_bytes_per_second,
        net_tx_bytes_per_second=usage.net_tx_bytes_per_second,
    )
    if usage.pressure.available:
        encode_pressure(usage.pressure, msg.pressure)
    return msg


def encode_vm_usage(vm: m.VmUsage) -> node_pb2.VmUsage:
    """Convert one VM's usage."""
    return node_pb2.VmUsage(
        uuid=vm.uuid,
        name=vm.name,
        state=_VM_STATE_TO_WIRE[vm.state],
        vcpus=vm.vcpus,
        cpu_used_millicores=vm.cpu_used_millicores,
        memory_used_bytes=vm.memory_used_bytes,
        memory_allocated_bytes=vm.memory_allocated_bytes,
        net_rx_bytes_per_second=vm.net_rx_bytes_per_second,
        net_tx_bytes_per_second=vm.net_tx_bytes_per_second,
        disk_read_bytes_per_second=vm.disk_read_bytes_per_second,
        disk_write_bytes_per_second=vm.disk_write_bytes_per_second,
        simulated=vm.simulated,
        memory_resident_bytes=vm.memory_resident_bytes,
        memory_dirty_bytes_per_second=vm.memory_dirty_bytes_per_second,
        memory_dirty_set_bytes=vm.memory_dirty_set_bytes,
    )


def encode_report(report: m.NodeReport) -> node_pb2.NodeReport:
    """Convert a report (the inverse of decode_report)."""
    msg = node_pb2.NodeReport(
        sequence=report.sequence,
        host=encode_host_usage(report.host),
        vms=[encode_vm_usage(vm) for vm in report.vms],
    )
    encode_vm_pressure(report.vm_pressure, msg.vm_pressure)
    if report.traffic is not None:
        encode_traffic(report.traffic, msg.traffic)
    set_timestamp_ns(msg.sent_at, report.sent_at_unix_ns)
    return msg


def encode_hello(hello: m.NodeHello) -> node_pb2.NodeHello:
    """Convert a hello (the inverse of decode_hello)."""
    ident, cap = hello.identity, hello.capacity
    msg = node_pb2.NodeHello(
        node_id=ident.node_id,
        hostname=ident.hostname,
        migration_uri=ident.migration_uri,
        agent_version=ident.agent_version,
        hypervisor_kind=ident.hypervisor_kind,
        simulated=ident.simulated,
        peer_uri=ident.peer_uri,
        capacity=node_pb2.NodeCapacity(
            cpu_millicores=cap.cpu_millicores,
            memory_bytes=cap.memory_bytes,
            nic_bandwidth_bps=cap.nic_bandwidth_bps,
        ),
        report_period_ms=hello.report_period_ms,
    )
    set_timestamp_ns(msg.started_at, hello.started_at_unix_ns)
    return msg


def encode_lifecycle(event: m.LifecycleEvent) -> node_pb2.LifecycleEvent:
    """Convert a lifecycle event (the inverse of decode_lifecycle)."""
    msg = node_pb2.LifecycleEvent(
        kind=_LIFECYCLE_TO_WIRE[event.kind],
        vm_uuid=event.vm_uuid,
        vm_name=event.vm_name,
        detail=event.detail[:MAX_TEXT_CHARS],
        simulated=event.simulated,
    )
    set_timestamp_ns(msg.at, event.at_unix_ns)
    return msg


def vm_state_to_wire(state: m.VmState) -> Any:
    """Wire enum value of a VM state."""
    return _VM_STATE_TO_WIRE[state]


def vm_state_from_wire(value: int) -> m.VmState:
    """Domain VM state of a wire enum value (filters in ListVms)."""
    state = _VM_STATE_FROM_WIRE.get(value)
    if state is None:
        raise MalformedMessage(
            "states", f"unknown VM state {value}; accepted: {_ACCEPTED_VM_STATES}"
        )
    return state
