"""Node link codec, agent -> manager: hellos, reports, heartbeats, lifecycle events and
command results, both ways, plus the VM-state and command-state tables.

Decoding validates: every rejected value raises MalformedMessage naming the field path and
what is accepted. ``decode_report`` is on the manager's ingest hot path, so it reads each wire
field once and checks signs with one comparison per VM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from vmgrid.agents import model as m
from vmgrid.agents.common.node_codec.pressure import (
    decode_pressure,
    decode_vm_pressure,
    encode_pressure,
    encode_vm_pressure,
)
from vmgrid.agents.errors import MalformedMessage
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

_VM_INT_FIELDS = (
    "vcpus",
    "cpu_used_millicores",
    "memory_used_bytes",
    "memory_allocated_bytes",
    "net_rx_bytes_per_second",
    "net_tx_bytes_per_second",
    "disk_read_bytes_per_second",
    "disk_write_bytes_per_second",
)
_NO_PRESSURE = m.NO_PRESSURE
_HOST_INT_FIELDS = (
    "cpu_used_millicores",
    "memory_used_bytes",
    "memory_total_bytes",
    "net_rx_bytes_per_second",
    "net_tx_bytes_per_second",
)


def _ns(timestamp: object) -> int:
    return timestamp.seconds * 1_000_000_000 + timestamp.nanos  # type: ignore[attr-defined]


def set_timestamp_ns(timestamp: object, unix_ns: int) -> None:
    timestamp.seconds, timestamp.nanos = divmod(unix_ns, 1_000_000_000)  # type: ignore[attr-defined]


def _negative_field(path: str, message: object, names: Iterable[str]) -> MalformedMessage:
    for name in names:
        value = getattr(message, name)
        if value < 0:
            return MalformedMessage(f"{path}.{name}", f"negative value {value}; must be >= 0")
    return MalformedMessage(path, "negative value")  # pragma: no cover


def _make_vm_usage_constructor() -> Callable[..., m.VmUsage]:
    """A positional VmUsage constructor about 2x faster than the frozen dataclass __init__.

    It fills the slots directly (what the generated __init__ does through
    object.__setattr__); the ingest path builds tens of thousands of VmUsage per second.
    """
    new = object.__new__
    names = tuple(m.VmUsage.__dataclass_fields__)
    setters = tuple(getattr(m.VmUsage, name).__set__ for name in names)
    if len(setters) != 12:  # pragma: no cover - guards a change of VmUsage
        raise AssertionError(f"VmUsage has {len(setters)} fields; update the codec")
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11 = setters
    cls = m.VmUsage

    def build(*v: Any) -> m.VmUsage:
        vm = new(cls)
        s0(vm, v[0]), s1(vm, v[1]), s2(vm, v[2]), s3(vm, v[3]), s4(vm, v[4]), s5(vm, v[5])
        s6(vm, v[6]), s7(vm, v[7]), s8(vm, v[8]), s9(vm, v[9]), s10(vm, v[10]), s11(vm, v[11])
        return vm  # type: ignore[no-any-return]

    return build


_new_vm_usage = _make_vm_usage_constructor()


def _bad_vm(i: int, v: node_pb2.VmUsage) -> MalformedMessage:
    """The error for VM row i, which failed the one-line check in decode_report."""
    if v.state not in _VM_STATE_FROM_WIRE:
        known = v.state in common_pb2.VmState.values()
        named = f"{common_pb2.VmState.Name(v.state)} is not accepted: " if known else ""
        return MalformedMessage(
            f"report.vms[{i}].state",
            f"{named}unknown VM state {v.state} for VM {v.uuid!r}; accepted: {_ACCEPTED_VM_STATES}",
        )
    if not v.uuid:
        return MalformedMessage(f"report.vms[{i}].uuid", "missing uuid; each VM needs one")
    return _negative_field(f"report.vms[{i}]", v, _VM_INT_FIELDS)


def _duplicate_vm(vms: list[m.VmUsage]) -> MalformedMessage:
    seen: set[str] = set()
    for i, vm in enumerate(vms):
        if vm.uuid in seen:
            return MalformedMessage(
                f"report.vms[{i}].uuid", f"duplicate uuid {vm.uuid!r}; each VM needs a unique one"
            )
        seen.add(vm.uuid)
    return MalformedMessage("report.vms", "duplicate uuid")  # pragma: no cover


# ---- agent -> manager ---------------------------------------------------------------------


def decode_hello(msg: node_pb2.NodeHello) -> m.NodeHello:
    """Validate and convert a hello; node_id is required and capacity must be positive."""
    if not msg.node_id.strip():
        raise MalformedMessage("hello.node_id", "missing node id; a non-empty string is required")
    cap = msg.capacity
    for name in ("cpu_millicores", "memory_bytes", "nic_bandwidth_bps"):
        value = getattr(cap, name)
        if value < 0:
            raise MalformedMessage(f"hello.capacity.{name}", f"negative value {value}")
    if msg.report_period_ms < 0:
        raise MalformedMessage("hello.report_period_ms", f"negative value {msg.report_period_ms}")
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
        started_at_unix_ns=_ns(msg.started_at),
        report_period_ms=msg.report_period_ms,
    )


def decode_report(msg: node_pb2.NodeReport) -> m.NodeReport:
    """Validate and convert a report (hot path: one pass, one sign check per VM)."""
    h = msg.host
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
    if (
        min(
            host.cpu_used_millicores,
            host.memory_used_bytes,
            host.memory_total_bytes,
            host.net_rx_bytes_per_second,
            host.net_tx_bytes_per_second,
        )
        < 0
    ):
        raise _negative_field("report.host", h, _HOST_INT_FIELDS)
    states = _VM_STATE_FROM_WIRE
    new_vm = _new_vm_usage
    vms = []
    for i, v in enumerate(msg.vms):
        uuid = v.uuid
        state = states.get(v.state)
        vcpus, cpu = v.vcpus, v.cpu_used_millicores
        mem_used, mem_alloc = v.memory_used_bytes, v.memory_allocated_bytes
        rx, tx = v.net_rx_bytes_per_second, v.net_tx_bytes_per_second
        rd, wr = v.disk_read_bytes_per_second, v.disk_write_bytes_per_second
        if state is None or not uuid or min(vcpus, cpu, mem_used, mem_alloc, rx, tx, rd, wr) < 0:
            raise _bad_vm(i, v)
        vms.append(
            new_vm(
                uuid, v.name, state, vcpus, cpu, mem_used, mem_alloc, rx, tx, rd, wr, v.simulated
            )
        )
    if len({vm.uuid for vm in vms}) != len(vms):
        raise _duplicate_vm(vms)
    pressure = decode_vm_pressure(msg.vm_pressure) if msg.vm_pressure else ()
    return m.NodeReport(_ns(msg.sent_at), msg.sequence, host, tuple(vms), pressure)


def encode_heartbeat(beat: m.Heartbeat) -> node_pb2.Heartbeat:
    """Convert a heartbeat (the inverse of decode_heartbeat)."""
    msg = node_pb2.Heartbeat(sequence=beat.sequence, degraded_reason=beat.degraded_reason)
    set_timestamp_ns(msg.sent_at, beat.sent_at_unix_ns)
    return msg


def decode_heartbeat(msg: node_pb2.Heartbeat) -> m.Heartbeat:
    """Convert a heartbeat (with why the agent is degraded, empty when healthy)."""
    return m.Heartbeat(_ns(msg.sent_at), msg.sequence, msg.degraded_reason)


def decode_lifecycle(msg: node_pb2.LifecycleEvent) -> m.LifecycleEvent:
    """Validate and convert a lifecycle event."""
    kind = _LIFECYCLE_FROM_WIRE.get(msg.kind)
    if kind is None:
        accepted = ", ".join(node_pb2.LifecycleEventKind.Name(k) for k in _LIFECYCLE_FROM_WIRE)
        raise MalformedMessage("lifecycle.kind", f"unknown kind {msg.kind}; accepted: {accepted}")
    if not msg.vm_uuid:
        raise MalformedMessage("lifecycle.vm_uuid", "missing VM uuid")
    return m.LifecycleEvent(_ns(msg.at), kind, msg.vm_uuid, msg.vm_name, msg.detail, msg.simulated)


def decode_command_result(msg: node_pb2.CommandResult) -> m.CommandResult:
    """Validate and convert a command result."""
    if not msg.command_id:
        raise MalformedMessage("command_result.command_id", "missing command id")
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
        updated_at_unix_ns=_ns(msg.updated_at),
    )


def encode_command_result(result: m.CommandResult) -> node_pb2.CommandResult:
    """Convert a command result (ClusterService responses, tests)."""
    msg = node_pb2.CommandResult(
        command_id=result.command_id,
        state=_COMMAND_STATE_TO_WIRE[result.state],
        progress_fraction=result.progress_fraction,
        message=result.message,
        simulated=result.simulated,
        data_processed_bytes=result.data_processed_bytes,
        data_remaining_bytes=result.data_remaining_bytes,
        snapshot_names=list(result.snapshot_names),
        vm_uuid=result.vm_uuid,
    )
    if result.updated_at_unix_ns:
        set_timestamp_ns(msg.updated_at, result.updated_at_unix_ns)
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
    )


def encode_report(report: m.NodeReport) -> node_pb2.NodeReport:
    """Convert a report (the inverse of decode_report)."""
    msg = node_pb2.NodeReport(
        sequence=report.sequence,
        host=encode_host_usage(report.host),
        vms=[encode_vm_usage(vm) for vm in report.vms],
    )
    encode_vm_pressure(report.vm_pressure, msg.vm_pressure)
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
        detail=event.detail,
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
